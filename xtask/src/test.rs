//! `cargo xtask test`: every check and test the project has, in one command.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::run::{capture, cmd, run};
use crate::simd_builds::Simd;
use crate::tools::{E2E_DIR, WASM_TARGET, ensure_test_tools, tools_path};
use crate::{firewall, workspace_root};

/// Clippy's configuration for the wasm32 build: bans what cannot work in a browser.
const WASM_CLIPPY_CONF_DIR: &str = "xtask/clippy-wasm";

/// The workspace crates that never run in the browser.
const NATIVE_ONLY: [&str; 4] = ["xtask", "glassbox-cli", "glassbox-build", "glassbox-fuzz"];

/// Installs the test dependencies if missing, then runs each step in turn, stopping at
/// the first failure, and reports how long each took.
///
/// Clippy lints the workspace while it is built for the tests (as the compiler of the
/// workspace's crates, with every warning an error), natively and for wasm32 with the
/// browser's rules, so the dependencies are compiled once per target, not once for
/// clippy and again for the tests.
pub(crate) fn test() -> Result<()> {
    let mut timings: Vec<(&str, Duration)> = Vec::new();
    let mut step = |name: &'static str, body: &dyn Fn() -> Result<()>| -> Result<()> {
        println!("\n==> {name}");
        let started = Instant::now();
        body().with_context(|| format!("step `{name}` failed"))?;
        timings.push((name, started.elapsed()));
        Ok(())
    };

    step("install missing test dependencies", &ensure_test_tools)?;
    step("rustfmt", &|| {
        run(&mut cmd("cargo", &["fmt", "--all", "--check"]))
    })?;
    step("dependency firewall", &firewall::check)?;
    step("native build, linted by clippy", &|| {
        run(&mut linted(
            &[
                "test",
                "--workspace",
                "--all-targets",
                "--locked",
                "--no-run",
            ],
            None,
        )?)
    })?;
    step("native tests (GPU tests on lavapipe)", &|| {
        run(linted(&["test", "--workspace", "--locked"], None)?
            .env("GLASSBOX_MODELS", crate::models::models_dir()))
    })?;
    step(
        "wasm32 build, linted by clippy with the browser's rules",
        &|| run(&mut wasm_test_command(&["--all-targets", "--no-run"])?),
    )?;
    step("wasm tests in headless Chromium with WebGPU", &wasm_tests)?;
    step(
        "wasm tests of the CPU engine built with relaxed SIMD, linted, in headless Chromium",
        &relaxed_simd_tests,
    )?;
    step("release build of the page", &crate::page::build)?;
    step("end-to-end tests in headless Chromium", &|| {
        run(cmd("node", &["--test", "--test-concurrency=1", E2E_DIR])
            .env("GLASSBOX_DIST", crate::page::dist_dir())
            .env("GLASSBOX_MODELS", crate::models::models_dir()))
    })?;

    println!("\nAll checks passed:");
    for (name, took) in &timings {
        println!("  {:>6.1} s  {name}", took.as_secs_f64());
    }
    Ok(())
}

/// `cargo args` with clippy as the compiler of the workspace's crates (what `cargo clippy`
/// does, but for a full build), every warning an error; `conf_dir` is clippy's
/// configuration folder (the root's `clippy.toml` when `None`). A build and the test run
/// after it must be linted alike, or cargo builds the workspace again.
fn linted(args: &[&str], conf_dir: Option<&str>) -> Result<Command> {
    let sysroot = capture(&mut cmd("rustc", &["--print", "sysroot"]))?;
    let driver = PathBuf::from(sysroot.trim()).join("bin/clippy-driver");
    anyhow::ensure!(
        driver.exists(),
        "clippy is not installed ({} is missing): rustup component add clippy",
        driver.display()
    );
    let mut command = cmd("cargo", args);
    command
        .env("RUSTC_WORKSPACE_WRAPPER", driver)
        // clippy-driver's arguments, as `cargo clippy -- -D warnings` passes them.
        .env(
            "CLIPPY_ARGS",
            "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__",
        )
        .env(
            "CLIPPY_CONF_DIR",
            workspace_root().join(conf_dir.unwrap_or(".")),
        );
    Ok(command)
}

/// Runs the workspace's wasm-bindgen tests: those of every crate with a `webdriver.json`
/// (the Chromium flags that switch WebGPU on) in headless Chromium; cargo runs each test
/// binary in its own crate's folder, where the runner finds that file.
fn wasm_tests() -> Result<()> {
    let browser = browser_test_packages()?;
    println!("browser tests in {}", browser.join(", "));
    run(wasm_test_command(&[])?
        .env("CHROMEDRIVER", "/usr/bin/chromedriver")
        // Each crate's tests share one page; SwiftShader compiles shaders slowly.
        .env("WASM_BINDGEN_TEST_TIMEOUT", "600"))
}

/// The CPU engine's tests that run its tiles with fused multiply-adds (`glassbox-model`'s
/// `simd_tiles`, fused only in the build with relaxed SIMD, Chromium's and Firefox's)
/// against gemm and the reference's logits and hooks, in that build: its own target
/// folder, linted with the browser's rules. In the dev profile, like the other tests: in the page's profile the
/// tests would still not share the page's compiled dependencies (cargo builds a test's
/// dependencies without the profile's `panic = "abort"`), and each test binary would take
/// the profile's whole-program LTO.
fn relaxed_simd_tests() -> Result<()> {
    let args = [
        "test",
        "--locked",
        "--target",
        WASM_TARGET,
        "--package",
        "glassbox-model",
        "--lib",
        "--test",
        "golden",
        "--test",
        "llama",
    ];
    run(linted(&args, Some(WASM_CLIPPY_CONF_DIR))?
        .args(Simd::Relaxed.cargo_args(&crate::page::target_dir()))
        .env("PATH", tools_path())
        .env("CHROMEDRIVER", "/usr/bin/chromedriver")
        .env("WASM_BINDGEN_TEST_TIMEOUT", "600"))
}

/// `cargo test` of every crate that runs in the browser, for wasm32, linted with the
/// browser's rules, with `extra` arguments: the build and the run select the same crates,
/// so cargo resolves the same features and the run reuses the build.
fn wasm_test_command(extra: &[&str]) -> Result<Command> {
    let mut args = vec!["test", "--workspace", "--locked", "--target", WASM_TARGET];
    for package in NATIVE_ONLY {
        args.extend(["--exclude", package]);
    }
    args.extend(extra);
    let mut command = linted(&args, Some(WASM_CLIPPY_CONF_DIR))?;
    command.env("PATH", tools_path());
    Ok(command)
}

/// The packages whose folder has a `webdriver.json`: those with tests for the browser.
fn browser_test_packages() -> Result<Vec<String>> {
    let root = workspace_root();
    let mut packages = Vec::new();
    for parent in ["crates", "www"] {
        let dir = root.join(parent);
        let candidates: Vec<_> = if dir.join("webdriver.json").exists() {
            vec![dir]
        } else {
            std::fs::read_dir(&dir)
                .with_context(|| format!("listing {}", dir.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|path| path.join("webdriver.json").exists())
                .collect()
        };
        for folder in candidates {
            let manifest = std::fs::read_to_string(folder.join("Cargo.toml"))
                .with_context(|| format!("reading {}/Cargo.toml", folder.display()))?;
            let name = manifest
                .lines()
                .find_map(|line| line.trim().strip_prefix("name = \""))
                .and_then(|rest| rest.strip_suffix('"'))
                .with_context(|| format!("{}/Cargo.toml names no package", folder.display()))?;
            packages.push(name.to_owned());
        }
    }
    packages.sort();
    anyhow::ensure!(
        !packages.is_empty(),
        "no crate has a webdriver.json: no browser tests would run"
    );
    Ok(packages)
}
