//! The `smollm2-135m` preset's stages end to end on the real model (the `Q4_1` GGUF that
//! `cargo xtask models` fetches) with a three-document corpus and small transcoders:
//! training stops and resumes, the report measures, the feature data is spilled and
//! read back, and `glassbox-pack` loads the version-3 pack whose model is one GGUF file;
//! a feature's strongest example holds the activation the model gives it. The pack is
//! left in `target/e2e-packs/smollm2-135m-test` for the end-to-end test that opens it in
//! the page (`tests/e2e/smollm2_pack.test.mjs`).
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

mod common;

use std::path::PathBuf;

use common::document;
use glassbox_build::smollm2::{SmolLm2Options, build_from};
use glassbox_build::streamed::StreamedConfig;
use glassbox_model::{Family, HookPoint, Hooks, Norm};
use glassbox_pack::{ModelFormat, dir};

fn gguf() -> PathBuf {
    let folder = std::env::var_os("GLASSBOX_MODELS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/models"),
        PathBuf::from,
    );
    let path = folder.join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        path.exists(),
        "{}: missing; `cargo xtask models` fetches it (cargo xtask test does too)",
        path.display()
    );
    path
}

const SENTENCE: [(&str, &str); 12] = [
    ("The", "at"),
    ("jury", "nn"),
    ("said", "vbd"),
    ("the", "at"),
    ("city", "nn"),
    ("had", "hvd"),
    ("paid", "vbn"),
    ("for", "in"),
    ("new", "jj"),
    ("roads", "nns"),
    ("and", "cc"),
    ("schools", "nns"),
];

fn documents() -> Vec<glassbox_build::corpus::Document> {
    let words =
        |n: usize| -> Vec<(&str, &str)> { SENTENCE.iter().copied().cycle().take(n).collect() };
    vec![
        document("ca01", 'a', &words(60)),
        document("ca02", 'a', &words(48)),
        document("cb01", 'b', &words(40)),
    ]
}

#[test]
fn the_preset_builds_a_gguf_pack_that_loads_and_whose_examples_hold() {
    let root = std::env::temp_dir().join(format!("glassbox-smollm2-pack-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let out =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/e2e-packs/smollm2-135m-test");
    let _ = std::fs::remove_dir_all(&out);
    let options = SmolLm2Options {
        out,
        work: root.join("work"),
        transcoders: StreamedConfig {
            d_sae: 64,
            k: 4,
            window: 16,
            windows_per_step: 2,
            steps: 3,
            lr: 5e-3,
            seed: 1,
            skip_first: 1,
        },
        stop_after: Some(1),
    };
    let (gguf, documents) = (gguf(), documents());
    assert!(
        build_from(&options, &gguf, &documents).unwrap().is_none(),
        "stopped after one step as asked"
    );
    let resumed = SmolLm2Options {
        stop_after: None,
        ..options.clone()
    };
    let summary = build_from(&resumed, &gguf, &documents).unwrap().unwrap();

    let report = &summary.report;
    assert_eq!(report.layers.len(), 30);
    assert!(
        report
            .layers
            .iter()
            .all(|l| l.fvu.is_finite() && l.mean_l0 <= 4.0)
    );
    assert!(
        (report.loss_all_spliced_with_errors - report.loss_model).abs() < 1e-3,
        "with its error terms the replacement is the model: {} vs {}",
        report.loss_all_spliced_with_errors,
        report.loss_model
    );

    check_eight_bit(&options.out);
    // Each stage's wall time, training's over both runs (stopped, then resumed).
    let times: Vec<(String, f64)> = serde_json::from_slice(
        &std::fs::read(options.out.join(glassbox_build::smollm2::STAGE_TIMES)).unwrap(),
    )
    .unwrap();
    let names: Vec<&str> = times.iter().map(|(n, _)| n.as_str()).collect();
    for stage in ["tokenize", "transcoders", "report", "graphs", "features"] {
        assert!(names.contains(&stage), "{stage} missing from {names:?}");
    }
    assert!(times.iter().all(|(_, s)| s.is_finite() && *s >= 0.0));
    assert!(times.iter().any(|(n, s)| n == "transcoders" && *s > 0.0));
    assert_eq!(summary.graphs.len(), 2);
    let ioi = &summary.graphs[0];
    assert_eq!(
        ioi.top_logit.0, " Mary",
        "the graph's top logit is the model's"
    );
    assert!((0.0..=1.0).contains(&ioi.replacement) && (0.0..=1.0).contains(&ioi.completeness));
    assert!(ioi.completeness >= ioi.replacement, "{ioi:?}");
    assert!(!ioi.strongest_inputs.is_empty());

    let files = dir::verify_all(&options.out).unwrap();
    assert_eq!(files, summary.manifest.files.len());
    let loaded = dir::load(&options.out).unwrap();
    let manifest = loaded.pack.manifest();
    assert_eq!(manifest.format_version, glassbox_pack::FORMAT_VERSION);
    assert_eq!(manifest.model.format, ModelFormat::Gguf);
    check_split_model(manifest, &options.out);
    assert_eq!(manifest.name, "smollm2-135m");
    assert_eq!(loaded.model.family(), Family::Llama);
    assert_eq!(loaded.dictionaries.len(), 30);

    check_strongest_example(&loaded, &options.out);
    std::fs::remove_dir_all(&root).ok();
}

/// The model ships split after block 0: the first file, what the page shows block 0's
/// features with, is about a third of the whole; the unsplit file is not in the pack.
fn check_split_model(manifest: &glassbox_pack::Manifest, out: &std::path::Path) {
    assert_eq!(
        manifest.model.weights,
        "model/SmolLM2-135M-Instruct.Q4_1-00001-of-00002.gguf"
    );
    assert_eq!(
        manifest.model.splits,
        ["model/SmolLM2-135M-Instruct.Q4_1-00002-of-00002.gguf"]
    );
    let bytes = |path: &str| {
        manifest
            .files
            .iter()
            .find(|f| f.path == path)
            .unwrap()
            .bytes
    };
    let (first, second) = (
        bytes(&manifest.model.weights),
        bytes(&manifest.model.splits[0]),
    );
    assert!(
        first * 2 < first + second && first > 20_000_000,
        "{first} and {second} bytes"
    );
    assert!(!out.join("model/SmolLM2-135M-Instruct.Q4_1.gguf").exists());
}

/// The transcoders ship with 8-bit matrices, costing next to nothing in FVU.
fn check_eight_bit(out: &std::path::Path) {
    // The transcoders ship with 8-bit matrices, costing next to nothing in FVU.
    let costs: Vec<glassbox_build::smollm2::QuantizedFvu> = serde_json::from_slice(
        &std::fs::read(out.join(glassbox_build::smollm2::QUANTIZATION_REPORT)).unwrap(),
    )
    .unwrap();
    assert_eq!(costs.len(), 30);
    for cost in &costs {
        assert!(
            (cost.fvu_8bit - cost.fvu_f16).abs() < 0.01,
            "block {}: FVU {} in 8 bits, {} in f16",
            cost.layer,
            cost.fvu_8bit,
            cost.fvu_f16
        );
    }
    let weights = std::fs::metadata(out.join("transcoders/layer_0/sae_weights.safetensors"))
        .unwrap()
        .len();
    assert!(
        weights < 2 * 576 * 64 + 4096,
        "{weights} bytes: 8-bit matrices"
    );
}

/// The strongest example of some feature of block 7, recomputed from the model.
fn check_strongest_example(loaded: &glassbox_pack::LoadedPack, out: &std::path::Path) {
    // The strongest example of some feature of block 7, recomputed from the model.
    let layer = 7;
    let shard = loaded.pack.shard_path(layer, 0).unwrap();
    let bytes = std::fs::read(out.join(&shard)).unwrap();
    let shard: glassbox_pack::FeatureShard = serde_json::from_slice(&bytes).unwrap();
    let record = shard
        .features
        .iter()
        .find(|r| !r.top.is_empty())
        .expect("some feature fires on the corpus");
    let example = &record.top[0];
    let (window, at) = loaded
        .corpus
        .window_of(example.document(), example.position())
        .unwrap();
    assert!(at >= 1, "the first position of a window is left out");
    let hook = HookPoint::LnNormalized(layer, Norm::Ln2);
    let mut hooks = Hooks::none().cache(hook);
    loaded.model.forward_ids(window, &mut hooks).unwrap();
    let input = hooks.take_cache()[&hook].squeeze(0).unwrap();
    let acts = loaded.dictionaries[layer].encode(&input).unwrap();
    let live: f32 = acts
        .get(at)
        .unwrap()
        .get(record.index)
        .unwrap()
        .to_scalar()
        .unwrap();
    let recorded = example.activation();
    assert!(
        (live - recorded).abs() <= 2e-3 * recorded.abs().max(1e-3),
        "feature {} of block {layer}: recorded {recorded}, the model gives {live}",
        record.index
    );
}
