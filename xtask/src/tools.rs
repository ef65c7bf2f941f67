//! Installing what the build and the tests need, pinned, skipping whatever is already
//! there. Everything a fresh machine lacks is installed from here, never by hand.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::run::{cmd, probe, run};

/// The wasm target the page and the browser tests compile for.
pub(crate) const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// Debian packages for the tests: headless Chromium with its WebDriver, and lavapipe
/// (a Vulkan driver on the CPU) for the native GPU tests.
const APT_PACKAGES: [&str; 3] = ["chromium", "chromium-driver", "mesa-vulkan-drivers"];
/// npm projects whose pinned packages (package-lock.json) the tasks need.
pub(crate) const BUILD_TOOLS_DIR: &str = "xtask/tools";
/// playwright-core drives Chromium in the end-to-end tests.
pub(crate) const E2E_DIR: &str = "tests/e2e";
/// onnxruntime-web, which `cargo xtask bench` times beside the CPU engine (not the tests').
pub(crate) const BENCH_DIR: &str = "tests/bench";

/// Everything `cargo xtask serve` needs: the wasm target, wasm-bindgen-cli, wasm-opt.
pub(crate) fn ensure_build_tools() -> Result<()> {
    ensure_wasm_target()?;
    ensure_wasm_bindgen()?;
    ensure_npm_project(BUILD_TOOLS_DIR)
}

/// Everything `cargo xtask test` needs on top of the build tools, and the real model
/// its tests run.
pub(crate) fn ensure_test_tools() -> Result<()> {
    ensure_apt_packages()?;
    ensure_build_tools()?;
    ensure_npm_project(E2E_DIR)?;
    crate::models::ensure_models()
}

/// `PATH` with the pinned tools first: wasm-opt from npm, then cargo's own bin folder.
pub(crate) fn tools_path() -> OsString {
    let mut dirs = vec![
        crate::workspace_root()
            .join(BUILD_TOOLS_DIR)
            .join("node_modules/.bin"),
        cargo_bin_dir(),
    ];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).unwrap_or_default()
}

fn cargo_bin_dir() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .unwrap_or_default()
        .join("bin")
}

fn ensure_wasm_target() -> Result<()> {
    let installed =
        probe(&mut cmd("rustup", &["target", "list", "--installed"])).unwrap_or_default();
    if installed.lines().any(|t| t.trim() == WASM_TARGET) {
        return Ok(());
    }
    run(&mut cmd("rustup", &["target", "add", WASM_TARGET]))
}

/// wasm-bindgen-cli must be exactly the `wasm-bindgen` version in Cargo.lock.
fn ensure_wasm_bindgen() -> Result<()> {
    let lock = std::fs::read_to_string(crate::workspace_root().join("Cargo.lock"))
        .context("reading Cargo.lock")?;
    let version = locked_version(&lock, "wasm-bindgen")
        .context("Cargo.lock names no wasm-bindgen version")?;
    let wanted = format!("wasm-bindgen {version}");
    let found = probe(cmd("wasm-bindgen", &["--version"]).env("PATH", tools_path()));
    if found.is_some_and(|f| f.trim() == wanted) {
        return Ok(());
    }
    // `--locked` fails for this crate (a locked dependency left the registry).
    run(&mut cmd(
        "cargo",
        &["install", "wasm-bindgen-cli", "--version", &version],
    ))
}

/// `npm ci` in `dir` unless its `node_modules` already matches its package-lock.json.
pub(crate) fn ensure_npm_project(dir: &str) -> Result<()> {
    let root = crate::workspace_root().join(dir);
    let lock = std::fs::read(root.join("package-lock.json"))
        .with_context(|| format!("reading {dir}/package-lock.json"))?;
    let stamp = root.join("node_modules/.glassbox-installed-lock");
    if std::fs::read(&stamp).is_ok_and(|installed| installed == lock) {
        return Ok(());
    }
    run(cmd("npm", &["ci", "--no-audit", "--no-fund"]).current_dir(&root))?;
    std::fs::write(&stamp, lock).with_context(|| format!("writing {}", stamp.display()))
}

fn ensure_apt_packages() -> Result<()> {
    let mut missing: Vec<&str> = APT_PACKAGES
        .iter()
        .copied()
        .filter(|package| !apt_installed(package))
        .collect();
    if probe(&mut cmd("node", &["--version"])).is_none() {
        missing.extend(["nodejs", "npm"]);
    }
    if missing.is_empty() {
        return Ok(());
    }
    let install = format!(
        "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y {}",
        missing.join(" ")
    );
    let is_root = probe(&mut cmd("id", &["-u"])).is_some_and(|uid| uid.trim() == "0");
    if !is_root {
        bail!(
            "the tests need Debian packages that are missing; run this as root, then try again:\n\n    sudo sh -c '{install}'\n"
        );
    }
    run(&mut cmd("sh", &["-c", &install]))
}

fn apt_installed(package: &str) -> bool {
    probe(&mut cmd("dpkg-query", &["-W", "-f=${Status}", package]))
        .is_some_and(|status| status.trim() == "install ok installed")
}

/// The version of `package` that a Cargo.lock pins (the first, if several are locked).
fn locked_version(lock: &str, package: &str) -> Option<String> {
    let wanted = format!("name = \"{package}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == wanted {
            let version = lines.next()?.trim().strip_prefix("version = \"")?;
            return Some(version.trim_end_matches('"').to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::locked_version;

    #[test]
    fn reads_a_locked_version() {
        let lock = "[[package]]\nname = \"wasm-bindgen-futures\"\nversion = \"0.4.80\"\n\n\
                    [[package]]\nname = \"wasm-bindgen\"\nversion = \"0.2.130\"\n";
        assert_eq!(
            locked_version(lock, "wasm-bindgen").as_deref(),
            Some("0.2.130")
        );
        assert_eq!(locked_version(lock, "wasm-opt"), None);
    }

    #[test]
    fn the_workspace_lock_pins_wasm_bindgen() {
        let lock = std::fs::read_to_string(crate::workspace_root().join("Cargo.lock")).unwrap();
        assert_eq!(
            locked_version(&lock, "wasm-bindgen").as_deref(),
            Some("0.2.130")
        );
    }
}
