//! `glassbox pack upgrade` on a version-1 copy of the default pack: its transcoders are
//! rewritten to read before `ln_2`'s gain and bias (the fold a version-1 pack gets as it
//! loads), the manifest becomes the current version with hashes that verify, and a
//! second run leaves it as it is.
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

use std::path::Path;
use std::process::Command;

fn glassbox(args: &[&str], pack: &Path) -> String {
    let run = Command::new(env!("CARGO_BIN_EXE_glassbox"))
        .args(args)
        .arg(pack)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    String::from_utf8(run.stdout).unwrap()
}

#[test]
fn a_version_1_pack_is_rewritten_as_the_current_version() {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../www/packs/brown");
    let copy = tempfile::tempdir().unwrap();
    let manifest_text = std::fs::read_to_string(committed.join("manifest.json")).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&manifest_text).unwrap();
    for file in manifest["files"].as_array().unwrap() {
        let path = file["path"].as_str().unwrap();
        let target = copy.path().join(path);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(committed.join(path), target).unwrap();
    }
    // The same files declared version 1: their transcoders taken to read after the gain.
    // (A version-1 pack held its model as safetensors; the default pack's is one GGUF file
    // now, which the fold reads alike: it needs the model's `ln_2` only.)
    let current = glassbox_pack::FORMAT_VERSION;
    let old = manifest_text.replace(
        &format!("\"format_version\": {current}"),
        "\"format_version\": 1",
    );
    assert_ne!(old, manifest_text);
    std::fs::write(copy.path().join("manifest.json"), old).unwrap();
    let as_version_1 = glassbox_pack::dir::load(copy.path()).unwrap();

    let said = glassbox(&["pack", "upgrade"], copy.path());
    assert!(said.contains(&format!("version {current}")), "{said}");
    let upgraded = glassbox_pack::dir::load(copy.path()).unwrap();
    assert_eq!(upgraded.pack.manifest().format_version, current);
    glassbox_pack::dir::verify_all(copy.path()).unwrap();
    // Written as loading a version-1 pack folds them (stored in f16 like the pack's).
    for (written, folded) in upgraded.dictionaries.iter().zip(&as_version_1.dictionaries) {
        let a: Vec<f32> = written.w_enc.flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f32> = folded.w_enc.flatten_all().unwrap().to_vec1().unwrap();
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs() / y.abs().max(1e-3))
            .fold(0.0_f32, f32::max);
        assert!(worst < 2e-3, "W_enc written {worst} from the fold");
    }
    let again = glassbox(&["pack", "upgrade"], copy.path());
    assert!(
        again.contains(&format!("already version {current}")),
        "{again}"
    );
}
