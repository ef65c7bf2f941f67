//! `cargo xtask test`: every check and test the project has, in one command.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::run::{cmd, run};
use crate::tools::{E2E_DIR, WASM_TARGET, ensure_test_tools, tools_path};
use crate::{firewall, workspace_root};

/// Clippy's configuration for the wasm32 build: bans what cannot work in a browser.
const WASM_CLIPPY_CONF_DIR: &str = "xtask/clippy-wasm";

/// Installs the test dependencies if missing, then runs each step in turn, stopping at
/// the first failure, and reports how long each took.
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
    step("clippy (native)", &|| {
        run(&mut cmd(
            "cargo",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--locked",
                "--",
                "-D",
                "warnings",
            ],
        ))
    })?;
    step("clippy (wasm32)", &|| {
        run(cmd(
            "cargo",
            &[
                "clippy",
                "--workspace",
                "--exclude",
                "xtask",
                "--exclude",
                "glassbox-cli",
                "--exclude",
                "glassbox-build",
                "--all-targets",
                "--locked",
                "--target",
                WASM_TARGET,
                "--",
                "-D",
                "warnings",
            ],
        )
        .env(
            "CLIPPY_CONF_DIR",
            workspace_root().join(WASM_CLIPPY_CONF_DIR),
        ))
    })?;
    step("native tests (GPU tests on lavapipe)", &|| {
        run(&mut cmd("cargo", &["test", "--workspace", "--locked"]))
    })?;
    step("wasm tests in headless Chromium with WebGPU", &wasm_tests)?;
    step("release build of the page", &|| {
        run(cmd("trunk", &["build", "--release"]).env("PATH", tools_path()))
    })?;
    step("end-to-end tests in headless Chromium", &|| {
        run(cmd("node", &["--test", "--test-concurrency=1", E2E_DIR])
            .env("GLASSBOX_DIST", workspace_root().join("target/dist")))
    })?;

    println!("\nAll checks passed:");
    for (name, took) in &timings {
        println!("  {:>6.1} s  {name}", took.as_secs_f64());
    }
    Ok(())
}

/// Runs the wasm-bindgen tests of every crate that has a `webdriver.json` (the Chromium
/// flags that switch WebGPU on) in headless Chromium, in one cargo run so that the
/// dependencies are built once for all of them (cargo runs each test binary in its own
/// crate's folder, where the runner finds that crate's `webdriver.json`).
fn wasm_tests() -> Result<()> {
    let packages = browser_test_packages()?;
    let mut args = vec!["test", "--locked", "--target", WASM_TARGET];
    for package in &packages {
        args.extend(["--package", package.as_str()]);
    }
    run(cmd("cargo", &args)
        .env("PATH", tools_path())
        .env("CHROMEDRIVER", "/usr/bin/chromedriver")
        // Each crate's tests share one page; SwiftShader compiles shaders slowly.
        .env("WASM_BINDGEN_TEST_TIMEOUT", "600"))
}

/// The packages whose folder has a `webdriver.json`: those with tests for the browser.
pub(crate) fn browser_test_packages() -> Result<Vec<String>> {
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
