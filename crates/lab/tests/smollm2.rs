//! A real model opened on its own, as a person opens a GGUF file in the page:
//! SmolLM2-135M (fetched by `cargo xtask models`) predicts " Mary" for the indirect
//! object, its 30 blocks' attention and logit lens answer, steering generates, and what
//! needs feature dictionaries says so instead of failing obscurely.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

use std::path::PathBuf;

use glassbox_lab::{AdapterPreference, Lab, SearchQuery, SteerRequest};
use glassbox_model::Model;

const GGUF: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const IOI: &str = "When Mary and John went to the store, John gave a drink to";

fn smollm2() -> Lab {
    let folder = std::env::var_os("GLASSBOX_MODELS").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/models"),
        PathBuf::from,
    );
    let path = folder.join("smollm2").join(GGUF);
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; `cargo xtask models` fetches it", path.display()));
    let (model, tokenizer) = Model::from_gguf(GGUF, &bytes).unwrap();
    Lab::from_model(GGUF.to_owned(), model, tokenizer).unwrap()
}

#[test]
fn a_gguf_model_alone_predicts_attends_and_lenses() {
    let lab = smollm2();
    let analysis = pollster::block_on(lab.analyze(IOI, 5, 8)).unwrap();
    assert_eq!(analysis.predictions[0].text, " Mary");
    assert!(analysis.predictions[0].probability > 0.9);
    assert!(analysis.features.iter().all(Vec::is_empty));

    let attention = pollster::block_on(lab.attention(IOI, 29)).unwrap();
    assert_eq!(attention.heads.len(), 9);
    let tokens = attention.tokens.len();
    assert!(attention.heads.iter().all(|h| h.len() == tokens * tokens));

    let lens = pollster::block_on(lab.logit_lens(IOI, 3)).unwrap();
    assert_eq!(lens.stages.len(), 31);
    assert_eq!(lens.cells[30].last().unwrap().top[0].0, " Mary");

    let steer = SteerRequest {
        prompt: "The capital of France is".to_owned(),
        features: Vec::new(),
        max_tokens: 1,
        temperature: 0.0,
        seed: 0,
    };
    let result = pollster::block_on(lab.steer(&steer)).unwrap();
    assert_eq!(result.baseline, " Paris");
}

#[test]
fn what_needs_dictionaries_says_so() {
    let lab = smollm2();
    for error in [
        lab.check_feature(0, 1).unwrap_err().to_string(),
        pollster::block_on(lab.feature_activations(&[1, 2], 0, 1))
            .unwrap_err()
            .to_string(),
    ] {
        assert!(error.contains("without feature dictionaries"), "{error}");
    }
    let hits = pollster::block_on(lab.search(&SearchQuery::Label("city".to_owned()), 10)).unwrap();
    assert!(hits.is_empty());
}

#[test]
fn the_gpu_engine_runs_it_as_the_cpu_engine_does() {
    let lab = smollm2();
    let on_cpu = pollster::block_on(lab.analyze(IOI, 5, 8)).unwrap();
    let info = pollster::block_on(lab.start_gpu(AdapterPreference::from_env(), true)).unwrap();
    assert!(info.gpu.is_some(), "{info:?}");
    let on_gpu = pollster::block_on(lab.analyze(IOI, 5, 8)).unwrap();
    assert!(lab.engine_info().note.is_none(), "{:?}", lab.engine_info());
    assert_eq!(on_gpu.predictions[0].text, " Mary");
    eprintln!(
        "' Mary': {} on the GPU ({}, {} MB of weights), {} on the CPU",
        on_gpu.predictions[0].probability,
        info.gpu.unwrap_or_default(),
        lab.gpu_model().unwrap().weight_bytes() / 1_000_000,
        on_cpu.predictions[0].probability
    );
    for (gpu, cpu) in on_gpu.predictions.iter().zip(&on_cpu.predictions) {
        assert_eq!(gpu.text, cpu.text);
        assert!(
            (gpu.probability - cpu.probability).abs() < 1e-3,
            "{}: {} on the GPU, {} on the CPU",
            gpu.text,
            gpu.probability,
            cpu.probability
        );
    }
    let lens = pollster::block_on(lab.logit_lens(IOI, 3)).unwrap();
    assert_eq!(lens.cells[30].last().unwrap().top[0].0, " Mary");
}

#[test]
fn its_q4_1_layers_kept_in_their_blocks_on_the_gpu_predict_the_same() {
    use glassbox_engine::{CpuEngine, Engine, Logits, LogitsRead, PassRequest};
    use glassbox_gpu::{GpuContext, GpuModel, QuantizedWeights};
    use glassbox_model::Hooks;

    let lab = smollm2();
    let model = lab.model().clone();
    let ids = lab.tokenizer.encode_ids(IOI).unwrap();
    let request = PassRequest::logits(LogitsRead::LastTop(5));
    let top = |output: glassbox_engine::PassOutput| match output.logits {
        Some(Logits::Top(top)) => top,
        other => panic!("expected the top logits, got {other:?}"),
    };
    let cpu = top(pollster::block_on(CpuEngine::new(model.clone()).pass(
        &ids,
        &request,
        &mut Hooks::none(),
        None,
    ))
    .unwrap());
    #[allow(
        clippy::arc_with_non_send_sync,
        reason = "natively the GPU types are Send and Sync"
    )]
    let ctx = std::sync::Arc::new(
        pollster::block_on(GpuContext::new(AdapterPreference::from_env())).unwrap(),
    );
    let plain = pollster::block_on(GpuModel::new(ctx.clone(), model.clone())).unwrap();
    let stored = pollster::block_on(GpuModel::with_weights(
        ctx,
        model,
        QuantizedWeights::AsStored,
    ))
    .unwrap();
    eprintln!(
        "weights on the device: {} MB in f32, {} MB with the Q4_1 layers in their blocks",
        plain.weight_bytes() / 1_000_000,
        stored.weight_bytes() / 1_000_000
    );
    assert!(stored.weight_bytes() * 2 < plain.weight_bytes());
    let gpu =
        top(pollster::block_on(stored.pass(&ids, &request, &mut Hooks::none(), None)).unwrap());
    for (ours, theirs) in gpu.iter().zip(&cpu) {
        assert_eq!(ours.0, theirs.0);
        assert!(
            (ours.1 - theirs.1).abs() < 1e-3 * cpu[0].1.abs().max(1.0),
            "{ours:?} vs {theirs:?}"
        );
    }
}
