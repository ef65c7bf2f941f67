//! `cargo xtask bench`: the benchmarks, native and in headless Chromium, and PyTorch's
//! numbers for the same shapes when a Python with torch is named. Numbers, no assertions.

use anyhow::Result;

use crate::ratios;
use crate::run::{cmd, run, run_echoed};
use crate::simd_builds::Simd;
use crate::tools::{BENCH_DIR, WASM_TARGET, ensure_npm_project, ensure_test_tools, tools_path};

/// A Python with `torch` and `transformers` for the reference numbers (optional; with
/// `circuit-tracer==0.5.0` too, its attribution graphs are timed beside Glassbox's).
const TORCH_PYTHON: &str = "GLASSBOX_TORCH_PYTHON";

/// The allocator settings `glassbox_model::native_process::prepare` makes in Glassbox's own
/// processes, handed to Python's through glibc's environment so that both sides keep
/// freed memory alike (PyTorch gains too: GPT-2 small at 256 tokens ~315 -> ~290 ms).
const KEEP_FREED_MEMORY: (&str, &str) = (
    "GLIBC_TUNABLES",
    "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647",
);

/// The sections of `cargo xtask bench`, in the order they run, each with what it times.
pub(crate) const SECTIONS: [(&str, &str); 6] = [
    (
        "cpu",
        "the CPU engine natively, then PyTorch on the same shapes and their ratios",
    ),
    ("wasm", "the CPU engine in headless Chromium"),
    (
        "onnx",
        "the CPU engine against onnxruntime-web, side by side in Chromium",
    ),
    (
        "gpu",
        "the GPU engine against the CPU engine, natively and in Chromium",
    ),
    (
        "graphs",
        "attribution graphs natively (CPU, GPU), then circuit-tracer's",
    ),
    (
        "page",
        "the page's release build: graphs in Chromium, and the first view's bytes and time",
    ),
];

/// Runs the benchmarks of the sections named in `args` (every section when none is named)
/// in turn on this machine, so their ratios can be compared.
pub(crate) fn bench(args: &[String]) -> Result<()> {
    let known = |name: &str| SECTIONS.iter().any(|&(section, _)| section == name);
    if let Some(unknown) = args.iter().find(|name| !known(name)) {
        let sections: Vec<String> = SECTIONS
            .iter()
            .map(|(name, what)| format!("  {name:<7} {what}"))
            .collect();
        anyhow::bail!(
            "no benchmark section `{unknown}`; the sections:\n{}",
            sections.join("\n")
        );
    }
    let runs = |name: &str| args.is_empty() || args.iter().any(|arg| arg == name);
    ensure_test_tools()?;
    let python = std::env::var_os(TORCH_PYTHON);
    if runs("cpu") {
        cpu_against_pytorch(python.as_deref())?;
    }
    if runs("wasm") {
        println!("\n==> CPU engine, wasm32 in headless Chromium");
        browser_bench("glassbox-model")?;
    }
    if runs("onnx") {
        println!("\n==> CPU engine against onnxruntime-web, side by side in headless Chromium");
        onnxruntime_web()?;
    }
    if runs("gpu") {
        println!("\n==> GPU engine vs CPU engine, native");
        native_bench("glassbox-gpu", "forward")?;
        println!("\n==> GPU engine vs CPU engine, wasm32 in headless Chromium");
        browser_bench("glassbox-gpu")?;
    }
    if runs("graphs") {
        graphs(python.as_deref())?;
    }
    if runs("page") {
        println!("\n==> attribution graphs in headless Chromium (the page's release build)");
        crate::page::build()?;
        run(cmd("node", &["tests/e2e/circuit_bench.mjs"])
            .env("GLASSBOX_DIST", crate::workspace_root().join("target/dist")))?;
        println!(
            "\n==> the first view: bytes a new visitor fetches, and the time, unthrottled and throttled"
        );
        run(cmd("node", &["tests/e2e/first_view_bench.mjs"])
            .env("GLASSBOX_DIST", crate::workspace_root().join("target/dist")))?;
    }
    if python.is_none() && (runs("cpu") || runs("graphs")) {
        println!(
            "\n(set {TORCH_PYTHON} to a Python with torch and transformers for PyTorch's numbers, \
             and circuit-tracer for its graphs' time)"
        );
    }
    Ok(())
}

/// The CPU engine natively, then (with `python`) PyTorch on the same shapes right after,
/// and a table of their ratios.
fn cpu_against_pytorch(python: Option<&std::ffi::OsStr>) -> Result<()> {
    println!("\n==> CPU engine, native");
    let cpu_engine = ratios::timed_rows(&run_echoed(&mut native_bench_command(
        "glassbox-model",
        "forward",
    ))?);
    let Some(python) = python else {
        return Ok(());
    };
    println!("\n==> PyTorch (transformers GPT-2 and SmolLM2), CPU");
    let torch = ratios::timed_rows(&run_echoed(
        cmd(python, &["crates/model/benches/forward_torch.py"])
            .env("GLASSBOX_MODELS", crate::models::models_dir())
            .env(KEEP_FREED_MEMORY.0, KEEP_FREED_MEMORY.1),
    )?);
    println!(
        "\n==> the CPU engine against PyTorch, native, the same threads (ratio: PyTorch's ms / Glassbox's; above 1, Glassbox is faster)"
    );
    print!(
        "{}",
        ratios::table(
            &cpu_engine,
            &torch,
            ("Glassbox", "PyTorch"),
            Some(ratios::GOAL)
        )
    );
    Ok(())
}

/// Attribution graphs natively on the CPU engine and the GPU engine, then (with
/// `python`) circuit-tracer's on the same prompts.
fn graphs(python: Option<&std::ffi::OsStr>) -> Result<()> {
    println!("\n==> attribution graphs, native");
    native_bench("glassbox-circuits", "attribute")?;
    println!("\n==> attribution graphs, GPU engine vs CPU engine, native");
    native_bench("glassbox-gpu", "attribute")?;
    let Some(python) = python else {
        return Ok(());
    };
    println!("\n==> attribution graphs: circuit-tracer next to Glassbox, CPU");
    run(&mut cmd(
        "cargo",
        &["build", "--quiet", "--release", "-p", "glassbox-cli"],
    ))?;
    run(cmd(
        python,
        &["crates/circuits/benches/attribute_circuit_tracer.py"],
    )
    .env(KEEP_FREED_MEMORY.0, KEEP_FREED_MEMORY.1))
}

/// The CPU engine and onnxruntime-web in turns in one page (`tests/bench/onnx_bench.mjs`),
/// then a table of their ratios for each of onnxruntime-web's thread counts.
fn onnxruntime_web() -> Result<()> {
    ensure_npm_project(BENCH_DIR)?;
    let relaxed = crate::page::build_browser_bench(Simd::Relaxed)?;
    let simd128 = crate::page::build_browser_bench(Simd::Simd128)?;
    let output = run_echoed(
        cmd("node", &["tests/bench/onnx_bench.mjs"])
            .env("GLASSBOX_BROWSER_BENCH", relaxed)
            .env("GLASSBOX_BROWSER_BENCH_SIMD128", simd128),
    )?;
    // The second pair has no goal; its heading says why.
    for (glassbox, build, engine, goal) in [
        (
            "Glassbox, beside 1",
            "Chromium's build (relaxed SIMD)",
            "onnxruntime-web, 1 thread",
            Some(ratios::GOAL),
        ),
        (
            "Glassbox, beside 2",
            "Chromium's build (relaxed SIMD), one worker (no goal: a page that can give onnxruntime-web two threads gives Glassbox its helper)",
            "onnxruntime-web, 2 threads",
            None,
        ),
        (
            "Glassbox with a helper worker, beside 2",
            "Chromium's build (relaxed SIMD) with a helper worker (the page's second core)",
            "onnxruntime-web, 2 threads",
            Some(ratios::GOAL),
        ),
        (
            "Glassbox simd128 only, beside 1",
            "the build for browsers without relaxed SIMD (Safari)",
            "onnxruntime-web, 1 thread (beside Glassbox simd128 only)",
            Some(ratios::GOAL),
        ),
    ] {
        println!(
            "\n==> the CPU engine, {build}, against {engine}, in Chromium (ratio: onnxruntime-web's ms / Glassbox's; above 1, Glassbox is faster)"
        );
        print!(
            "{}",
            ratios::table(
                &ratios::rows_of(&output, glassbox),
                &ratios::rows_of(&output, engine),
                ("Glassbox", "ORT-web"),
                goal,
            )
        );
    }
    Ok(())
}

/// `cargo bench` of one bench target of `package` (the real models it may run are in
/// `GLASSBOX_MODELS`).
fn native_bench(package: &str, bench: &str) -> Result<()> {
    run(&mut native_bench_command(package, bench))
}

/// The command [`native_bench`] runs.
fn native_bench_command(package: &str, bench: &str) -> std::process::Command {
    let mut command = cmd(
        "cargo",
        &["bench", "--quiet", "-p", package, "--bench", bench],
    );
    command.env("GLASSBOX_MODELS", crate::models::models_dir());
    command
}

/// The ignored `wasm_bench` test of `crates/{name}` in headless Chromium, run from the
/// crate's folder so that its `webdriver.json` (WebGPU on) applies.
fn browser_bench(package: &str) -> Result<()> {
    let folder = package.trim_start_matches("glassbox-");
    run(cmd(
        "cargo",
        &[
            "test",
            "--release",
            "--target",
            WASM_TARGET,
            "--test",
            "wasm_bench",
            "--",
            "--include-ignored",
            "--nocapture",
        ],
    )
    .current_dir(crate::workspace_root().join("crates").join(folder))
    .env("PATH", tools_path())
    .env("CHROMEDRIVER", "/usr/bin/chromedriver")
    // One page for a whole benchmark; SwiftShader runs GPT-2 small and SmolLM2 slowly.
    .env("WASM_BINDGEN_TEST_TIMEOUT", "3600"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A section that does not exist is refused before anything runs, with the names of
    /// those that do; the usage names every section.
    #[test]
    fn sections_are_named_in_the_usage_and_an_unknown_one_is_refused() {
        let error = bench(&["cpu".to_owned(), "nope".to_owned()]).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("`nope`"), "{message}");
        for (name, _) in SECTIONS {
            assert!(message.contains(name), "{message}");
            assert!(crate::USAGE.contains(name), "the usage lacks `{name}`");
        }
    }
}
