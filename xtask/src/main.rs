//! Project automation. `cargo xtask serve` and `cargo xtask test` are the README's two
//! commands: each installs what is missing on a fresh machine, then does its job.

mod bench;
mod firewall;
mod fuzz;
mod models;
mod packs;
mod page;
mod ratios;
mod run;
mod serve;
mod simd_builds;
mod test;
mod tools;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  serve [--pack NAME]
          install the build tools if missing, build the page (release) into target/dist
          and serve it on http://127.0.0.1:8080; --pack smollm2-135m also serves that
          pack (built first when missing: hours, resumable) beside the default
  page    the page's release build alone, into target/dist
  test    install the test dependencies if missing, then run every check and test:
          fmt, dependency firewall, clippy (native and wasm32), native tests (GPU on
          lavapipe), wasm tests in headless Chromium with WebGPU, end-to-end tests of
          the release build
  models  fetch the real models the tests run (pinned, cached under target/models)
  bench [SECTION...]
          the benchmarks: native, in headless Chromium, and PyTorch's numbers when
          GLASSBOX_TORCH_PYTHON names a Python with torch and transformers; every
          section when none is named: cpu, wasm, onnx, gpu, graphs, page
  fuzz [--runs N] [--seed S] [TARGET...]
          fuzz the parsers of untrusted input (every target when none is named),
          N executions each (100000), optimized with overflow checks; crashing
          inputs are saved under target/fuzz-crashes";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") => serve::serve(&args[1..]),
        Some("page") => tools::ensure_build_tools().and_then(|()| page::build()),
        Some("test") => test::test(),
        Some("models") => models::ensure_models(),
        Some("bench") => bench::bench(&args[1..]),
        Some("fuzz") => fuzz::fuzz(&args[1..]),
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            if let Some(command) = other {
                eprintln!("xtask: unknown command `{command}`\n");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("\nxtask: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (the folder holding this repository's top `Cargo.toml`).
fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.clone(), std::path::Path::to_path_buf)
}
