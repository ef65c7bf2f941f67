//! `cargo xtask serve`: build the page in release mode and serve it.

use anyhow::Result;

use crate::run::{cmd, run};
use crate::tools::{ensure_build_tools, tools_path};

/// Where trunk serves the page (Trunk.toml `[serve]`).
const ADDRESS: &str = "http://127.0.0.1:8080/";

/// Installs the build tools if missing, then builds and serves the release page until
/// interrupted, rebuilding when a source file changes.
pub(crate) fn serve() -> Result<()> {
    ensure_build_tools()?;
    println!("\nBuilding the page (release); when trunk reports success, Glassbox is at {ADDRESS}");
    println!("Stop with Ctrl-C.");
    run(cmd("trunk", &["serve", "--release"]).env("PATH", tools_path()))
}
