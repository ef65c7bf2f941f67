//! `cargo xtask bench`: the benchmarks, native and in headless Chromium, and PyTorch's
//! numbers for the same shapes when a Python with torch is named. Numbers, no assertions.

use anyhow::Result;

use crate::run::{cmd, run};
use crate::tools::{WASM_TARGET, ensure_test_tools, tools_path};

/// A Python with `torch` and `transformers` for the reference numbers (optional).
const TORCH_PYTHON: &str = "GLASSBOX_TORCH_PYTHON";

/// Runs every benchmark in turn on this machine, so their ratios can be compared.
pub(crate) fn bench() -> Result<()> {
    ensure_test_tools()?;
    println!("\n==> CPU engine, native");
    run(&mut cmd(
        "cargo",
        &[
            "bench",
            "--quiet",
            "-p",
            "glassbox-model",
            "--bench",
            "forward",
        ],
    ))?;
    println!("\n==> CPU engine, wasm32 in headless Chromium");
    run(cmd(
        "cargo",
        &[
            "test",
            "--release",
            "--target",
            WASM_TARGET,
            "-p",
            "glassbox-model",
            "--test",
            "wasm_bench",
            "--",
            "--include-ignored",
            "--nocapture",
        ],
    )
    .env("PATH", tools_path())
    .env("CHROMEDRIVER", "/usr/bin/chromedriver"))?;
    println!("\n==> GPU engine vs CPU engine, native");
    run(&mut cmd(
        "cargo",
        &[
            "bench",
            "--quiet",
            "-p",
            "glassbox-gpu",
            "--bench",
            "forward",
        ],
    ))?;
    println!("\n==> GPU engine vs CPU engine, wasm32 in headless Chromium");
    run(cmd(
        "cargo",
        &[
            "test",
            "--release",
            "--target",
            WASM_TARGET,
            "-p",
            "glassbox-gpu",
            "--test",
            "wasm_bench",
            "--",
            "--include-ignored",
            "--nocapture",
        ],
    )
    // The crate's webdriver.json switches WebGPU on in Chromium.
    .current_dir(crate::workspace_root().join("crates/gpu"))
    .env("PATH", tools_path())
    .env("CHROMEDRIVER", "/usr/bin/chromedriver")
    // One page for the whole benchmark; SwiftShader runs GPT-2 small slowly.
    .env("WASM_BINDGEN_TEST_TIMEOUT", "900"))?;
    println!("\n==> attribution graphs, native");
    run(&mut cmd(
        "cargo",
        &[
            "bench",
            "--quiet",
            "-p",
            "glassbox-circuits",
            "--bench",
            "attribute",
        ],
    ))?;
    println!("\n==> attribution graphs in headless Chromium (the page's release build)");
    run(cmd("trunk", &["build", "--release"]).env("PATH", tools_path()))?;
    run(cmd("node", &["tests/e2e/circuit_bench.mjs"])
        .env("GLASSBOX_DIST", crate::workspace_root().join("target/dist")))?;
    if let Some(python) = std::env::var_os(TORCH_PYTHON) {
        println!("\n==> PyTorch (transformers GPT-2), CPU");
        run(&mut cmd(python, &["crates/model/benches/forward_torch.py"]))
    } else {
        println!(
            "\n(set {TORCH_PYTHON} to a Python with torch and transformers for PyTorch's numbers)"
        );
        Ok(())
    }
}
