//! The dependency firewall: the engine's lower layers must not grow a dependency on the
//! GPU, the web or the UI, so that each stays testable on its own.

use std::collections::BTreeSet;

use anyhow::{Result, bail};

use crate::run::{capture, cmd};

/// Each guarded crate and the crates it must never depend on, on any target.
const RULES: &[(&str, &[&str])] = &[
    (
        "glassbox-pack",
        &["wgpu", "web-sys", "yew", "yew-router", "gloo"],
    ),
    (
        "glassbox-model",
        &["wgpu", "web-sys", "yew", "yew-router", "gloo"],
    ),
    (
        "glassbox-dict",
        &["wgpu", "web-sys", "yew", "yew-router", "gloo"],
    ),
    // The engine interface sits below both engines: never the GPU's wgpu.
    (
        "glassbox-engine",
        &["wgpu", "web-sys", "yew", "yew-router", "gloo"],
    ),
    // The lab picks the engine, so it may use the GPU engine (wgpu, and web-sys under it
    // in the browser); never the UI.
    ("glassbox-lab", &["yew", "yew-router", "gloo"]),
    (
        "glassbox-circuits",
        &["wgpu", "web-sys", "yew", "yew-router", "gloo"],
    ),
    ("glassbox-gpu", &["yew", "yew-router", "gloo"]),
];

/// Fails if any guarded crate reaches a forbidden one through its normal or build
/// dependencies, on any target platform.
pub(crate) fn check() -> Result<()> {
    let mut breaches = Vec::new();
    for (package, forbidden) in RULES {
        let tree = capture(&mut cmd(
            "cargo",
            &[
                "tree",
                "--package",
                package,
                "--edges",
                "normal,build",
                "--target",
                "all",
                "--prefix",
                "none",
                "--format",
                "{p}",
            ],
        ))?;
        let found = crate_names(&tree);
        breaches.extend(
            forbidden
                .iter()
                .filter(|name| found.contains(**name))
                .map(|name| format!("{package} depends on {name}")),
        );
    }
    if !breaches.is_empty() {
        bail!(
            "dependency firewall breached (see ARCHITECTURE.md for the layering):\n  {}",
            breaches.join("\n  ")
        );
    }
    println!("dependency firewall holds for {} crates", RULES.len());
    Ok(())
}

/// The crate names in `cargo tree --prefix none --format {p}` output: the first word of
/// each line (`name v1.2.3 (path)`).
fn crate_names(tree: &str) -> BTreeSet<&str> {
    tree.lines()
        .filter_map(|line| line.split_whitespace().next())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::crate_names;

    #[test]
    fn reads_names_from_cargo_tree_output() {
        let tree = "glassbox-gpu v0.1.0 (/w/crates/gpu)\nwgpu v30.0.2\nweb-sys v0.3.107 (*)\n";
        let names = crate_names(tree);
        assert!(names.contains("wgpu") && names.contains("web-sys"));
        assert!(!names.contains("yew"));
    }
}
