//! Finds this browser's WebGPU adapter and checks the GPU kernels against the CPU.

use glassbox_gpu::check::{MATMUL_CHECK_SHAPES, MatmulCheck, check_matmul};
use glassbox_gpu::matmul::MatmulKernel;
use glassbox_gpu::{AdapterPreference, AdapterSummary, GpuContext, GpuError};
use yew::prelude::*;

/// Where the check stands.
#[derive(Debug, Clone, PartialEq)]
enum CheckState {
    /// Looking for an adapter or running the kernels.
    Running,
    /// This browser has no usable WebGPU; the reason, in words.
    NoWebGpu(String),
    /// An adapter was found but the check could not run.
    Failed {
        adapter: AdapterSummary,
        error: String,
    },
    /// The check ran; each shape's comparison and the time it all took.
    Done {
        adapter: AdapterSummary,
        checks: Vec<MatmulCheck>,
        millis: f64,
    },
}

/// Shows the WebGPU adapter (or why there is none) and the result of the matmul check.
#[component]
pub(crate) fn GpuCheck() -> Html {
    let state = use_state(|| CheckState::Running);
    let run = use_state(|| 0_u64);

    {
        let state = state.clone();
        use_effect_with(*run, move |&run| {
            state.set(CheckState::Running);
            wasm_bindgen_futures::spawn_local(async move {
                state.set(run_check(run).await);
            });
        });
    }

    let again = {
        let run = run.clone();
        Callback::from(move |_| run.set(*run + 1))
    };
    let running = *state == CheckState::Running;

    html! {
        <section class="panel" aria-live="polite">
            <h2>{ "Your GPU" }</h2>
            { view_state(&state) }
            <p>
                <button onclick={again} disabled={running}>{ "Run the check again" }</button>
            </p>
        </section>
    }
}

async fn run_check(run: u64) -> CheckState {
    if !browser_has_webgpu() {
        return CheckState::NoWebGpu(
            "this browser does not offer WebGPU (navigator.gpu is missing). Recent Chrome, Edge \
             and Safari have it; Firefox has it on some systems."
                .to_owned(),
        );
    }
    let ctx = match GpuContext::new(AdapterPreference::HighPerformance).await {
        Ok(ctx) => ctx,
        Err(error) => return CheckState::NoWebGpu(error.to_string()),
    };
    let adapter = ctx.adapter().clone();
    let started = now_ms();
    match kernel_checks(&ctx, run).await {
        Ok(checks) => CheckState::Done {
            adapter,
            checks,
            millis: now_ms() - started,
        },
        Err(error) => CheckState::Failed {
            adapter,
            error: error.to_string(),
        },
    }
}

async fn kernel_checks(ctx: &GpuContext, run: u64) -> Result<Vec<MatmulCheck>, GpuError> {
    let kernel = MatmulKernel::new(ctx).await?;
    check_matmul(ctx, &kernel, &MATMUL_CHECK_SHAPES, 2026 + run).await
}

fn browser_has_webgpu() -> bool {
    web_sys::window().is_some_and(|w| {
        js_sys::Reflect::get(&w.navigator(), &"gpu".into()).is_ok_and(|gpu| !gpu.is_undefined())
    })
}

fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

fn view_state(state: &CheckState) -> Html {
    match state {
        CheckState::Running => {
            html! { <p class="muted">{ "Looking for a WebGPU adapter and running the kernel check…" }</p> }
        }
        CheckState::NoWebGpu(why) => html! {
            <>
                <p class="status-bad" data-testid="webgpu-status">{ "WebGPU is not available" }</p>
                <p>{ format!("Why: {why}") }</p>
                <p class="muted">{ "Glassbox will run on the CPU instead, more slowly." }</p>
            </>
        },
        CheckState::Failed { adapter, error } => html! {
            <>
                { view_adapter(adapter) }
                <p class="status-bad" data-testid="kernel-status">{ "Kernel check could not run" }</p>
                <p>{ error.clone() }</p>
            </>
        },
        CheckState::Done {
            adapter,
            checks,
            millis,
        } => {
            let passed = checks.iter().all(MatmulCheck::passed);
            html! {
                <>
                    { view_adapter(adapter) }
                    if passed {
                        <p class="status-ok" data-testid="kernel-status">{ "Kernel check passed" }</p>
                    } else {
                        <p class="status-bad" data-testid="kernel-status">{ "Kernel check FAILED: this GPU gives wrong answers" }</p>
                    }
                    <p class="muted">{ format!(
                        "Tiled matrix multiply on the GPU against candle-core on the CPU, {} shapes in {millis:.0} ms.",
                        checks.len()
                    ) }</p>
                    <table>
                        <thead><tr><th>{ "shape" }</th><th>{ "largest difference" }</th><th>{ "allowed" }</th><th>{ "result" }</th></tr></thead>
                        <tbody>{ for checks.iter().map(view_check) }</tbody>
                    </table>
                </>
            }
        }
    }
}

fn view_adapter(adapter: &AdapterSummary) -> Html {
    html! {
        <p data-testid="webgpu-status">
            <span class="status-ok">{ "WebGPU is available" }</span>
            { ": " }<strong data-testid="adapter-name">{ adapter.name.clone() }</strong>
            <span class="muted">{ format!(" ({}, {}{})", adapter.backend, adapter.device_type,
                if adapter.driver.is_empty() { String::new() } else { format!(", {}", adapter.driver) }) }</span>
        </p>
    }
}

fn view_check(check: &MatmulCheck) -> Html {
    html! {
        <tr>
            <td>{ check.shape.to_string() }</td>
            <td>{ format!("{:.2e}", check.max_abs_error) }</td>
            <td>{ format!("{:.2e}", check.tolerance) }</td>
            <td class={if check.passed() { "status-ok" } else { "status-bad" }}>{ if check.passed() { "pass" } else { "FAIL" } }</td>
        </tr>
    }
}
