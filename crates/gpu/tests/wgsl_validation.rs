//! Every `.wgsl` file in the workspace parses and validates with naga, so a broken shader
//! fails `cargo test` instead of a visitor's page.
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]
#![cfg(not(target_arch = "wasm32"))]

use std::path::{Path, PathBuf};

fn wgsl_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if path.is_dir() && name != "target" && name != "node_modules" && !name.starts_with('.') {
            wgsl_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "wgsl") {
            found.push(path);
        }
    }
}

#[test]
fn every_wgsl_file_validates() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for dir in ["crates", "www"] {
        wgsl_files(&workspace.join(dir), &mut files);
    }
    assert!(
        files
            .iter()
            .any(|f| f.ends_with("crates/gpu/src/kernels/matmul.wgsl")),
        "the shader search found {files:?}"
    );
    // The GPU engine compiles each kernel file with `common.wgsl` in front.
    let kernels = workspace.join("crates/gpu/src/kernels");
    let common = std::fs::read_to_string(kernels.join("common.wgsl")).unwrap();
    let mut failures = Vec::new();
    for file in &files {
        let mut source = std::fs::read_to_string(file).unwrap();
        // A fragment is checked as part of each file that uses it.
        if source.lines().any(|l| l.trim() == "// fragment") {
            continue;
        }
        let folder = file.parent().unwrap();
        let uses: Vec<String> = source
            .lines()
            .filter_map(|l| l.trim().strip_prefix("// uses: ").map(str::to_owned))
            .collect();
        for used in uses {
            let fragment = std::fs::read_to_string(folder.join(used.trim())).unwrap();
            source = format!("{fragment}\n{source}");
        }
        if file.parent() == Some(kernels.as_path()) && !file.ends_with("common.wgsl") {
            source = format!("{common}\n{source}");
        }
        let shown = file.display().to_string();
        match naga::front::wgsl::parse_str(&source) {
            Err(e) => failures.push(e.emit_to_string_with_path(&source, &shown)),
            Ok(module) => {
                let mut validator = naga::valid::Validator::new(
                    naga::valid::ValidationFlags::all(),
                    naga::valid::Capabilities::empty(),
                );
                if let Err(e) = validator.validate(&module) {
                    failures.push(e.emit_to_string_with_path(&source, &shown));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_broken_shader_is_caught() {
    let broken = "@compute @workgroup_size(1) fn main() { let x: f32 = 1u; }";
    let module = naga::front::wgsl::parse_str(broken);
    let rejected = match module {
        Err(_) => true,
        Ok(module) => naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        )
        .validate(&module)
        .is_err(),
    };
    assert!(rejected);
}
