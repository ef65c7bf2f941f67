//! The engine's state: a line in the header, and a gate that shows loading progress (or
//! why loading failed) until the pack is ready.

use yew::prelude::*;

use glassbox_web::engine::protocol::FeatureData;

use crate::state::{Engine, EngineChoice, EngineStatus, use_preview};

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Which engine runs, in a few words, for the header.
#[component]
pub(crate) fn StatusLine() -> Html {
    let Some(engine) = use_context::<Engine>() else {
        return html! {};
    };
    let pack = match &engine.status {
        EngineStatus::Loading { stage, .. } => {
            return html! { <p class="status-line muted" id="engine-status">{ format!("loading: {stage}…") }</p> };
        }
        EngineStatus::Failed(_) => {
            return html! { <p class="status-line muted" id="engine-status">{ "engine: not loaded" }</p> };
        }
        EngineStatus::Ready(info) if info.from_disk => {
            format!("model “{}” (from this computer)", info.name)
        }
        EngineStatus::Ready(info) => format!(
            "pack “{}”{}",
            info.name,
            if info.from_cache {
                " (from this browser's cache)"
            } else {
                ""
            }
        ),
    };
    let (text, note, on_gpu) = match &engine.choice {
        Some(EngineChoice::Running(info)) => match &info.gpu {
            Some(adapter) => (
                format!("engine: GPU (WebGPU) · {adapter}"),
                None,
                Some(true),
            ),
            None if info.helper_worker => (
                "engine: CPU in two web workers (the second computes half of each large product and attention)"
                    .to_owned(),
                info.note.clone(),
                Some(false),
            ),
            None => (
                "engine: CPU in a web worker".to_owned(),
                info.note.clone(),
                Some(false),
            ),
        },
        Some(EngineChoice::Switching) => ("engine: switching…".to_owned(), None, None),
        None => ("engine: starting…".to_owned(), None, None),
    };
    let button = on_gpu.map(|gpu| {
        let switch = engine.switch.clone();
        let onclick = Callback::from(move |_: MouseEvent| switch.emit(!gpu));
        let label = if gpu { "Use the CPU" } else { "Use the GPU" };
        html! { <button type="button" class="engine-switch" id="engine-switch" {onclick}>{ label }</button> }
    });
    let features = features_line(&engine);
    html! {
        <div class="status-line muted" id="engine-status" data-engine={ on_gpu.map(|g| if g { "gpu" } else { "cpu" }) } data-features={ features_state(&engine) }>
            <span id="engine-name">{ text }</span>{ " · " }{ pack }{ " " }{ for button }
            if let Some((text, failed)) = features {
                <span id="features-status" class={ if failed { "engine-note" } else { "" } }>{ text }</span>
            }
            if let Some(note) = note {
                <span class="engine-note" id="engine-note">{ note }</span>
            }
        </div>
    }
}

/// `loading`, `partial`, `ready` or `failed`: where the pack's features stand, for tests
/// and styles.
fn features_state(engine: &Engine) -> Option<&'static str> {
    Some(match &engine.info()?.features {
        FeatureData::Loading => "loading",
        FeatureData::Partial { .. } | FeatureData::FirstBlocks { .. } => "partial",
        FeatureData::Ready => "ready",
        FeatureData::Failed(_) => "failed",
    })
}

/// Where the pack's features stand while they load after its model, or why they did not
/// load (`true`); `None` once loaded.
fn features_line(engine: &Engine) -> Option<(String, bool)> {
    let what = match &engine.info()?.features {
        FeatureData::Ready => return None,
        FeatureData::Failed(error) => {
            return Some((format!(" · features did not load: {error}"), true));
        }
        FeatureData::Loading => "loading the features".to_owned(),
        FeatureData::Partial { blocks: 1 } => {
            "block 0's features are in; loading the other blocks'".to_owned()
        }
        FeatureData::Partial { blocks } => {
            format!("{blocks} blocks' features are in; loading the others'")
        }
        FeatureData::FirstBlocks { blocks: 1 } => {
            "block 0's features are in; loading the rest of the model and the other blocks'"
                .to_owned()
        }
        FeatureData::FirstBlocks { blocks } => format!(
            "{blocks} blocks' features are in; loading the rest of the model and the others'"
        ),
    };
    let line = match &engine.features_progress {
        Some((stage, loaded, total)) if *total > 0 => format!(
            " · {what}: {stage}, {} of {}",
            megabytes(*loaded),
            megabytes(*total)
        ),
        _ => format!(" · {what}…"),
    };
    Some((line, false))
}

/// Properties of [`ReadyGate`].
#[derive(Properties, PartialEq)]
pub(crate) struct ReadyGateProps {
    /// Shown once the pack is ready.
    pub(crate) children: Html,
}

/// Shows a progress bar while the pack loads, the reason if it failed, else `children`;
/// on a lesson whose first view was answered in advance ([`use_preview`]), `children`
/// at once, under a line saying so.
#[component]
pub(crate) fn ReadyGate(props: &ReadyGateProps) -> Html {
    let engine = use_context::<Engine>();
    let preview = use_preview();
    let Some(engine) = engine else {
        return html! {};
    };
    match &engine.status {
        EngineStatus::Ready(_) => props.children.clone(),
        EngineStatus::Loading {
            stage,
            loaded,
            total,
        } if preview.is_some() => html! {
            <>
                <p class="panel muted" aria-live="polite" id="preview-note">
                    { format!("This step was worked out in advance and shows while the model loads \
                        ({stage}: {} of {}); what it does not cover appears once the model is in, \
                        and the view is live from then on.", megabytes(*loaded), megabytes(*total)) }
                </p>
                { props.children.clone() }
            </>
        },
        EngineStatus::Loading {
            stage,
            loaded,
            total,
        } => html! {
            <section class="panel" aria-live="polite" id="loading">
                <h2>{ "Loading the model" }</h2>
                <p>{ format!("{stage}: {} of {}", megabytes(*loaded), megabytes(*total)) }</p>
                <progress max={total.max(&1).to_string()} value={loaded.to_string()}></progress>
                <p class="muted">{ "Everything runs in this browser; the files are kept in its cache, so the next visit starts at once, also offline." }</p>
            </section>
        },
        EngineStatus::Failed(error) => html! {
            <section class="panel" role="alert" id="load-failed">
                <h2 class="status-bad">{ "The model could not be loaded" }</h2>
                <p>{ error.clone() }</p>
                <p class="muted">{ "Reloading the page tries again." }</p>
            </section>
        },
    }
}
