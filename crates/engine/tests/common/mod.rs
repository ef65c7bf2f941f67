//! What the engine tests share: the tiny golden fixture, a seeded dictionary, and one async
//! test body run natively and in headless Chromium.
#![allow(dead_code, reason = "each test file uses a different part")]

use std::sync::Arc;

use candle_core::Device;
use glassbox_dict::{Dictionary, Spread};
use glassbox_model::Gpt2;
use glassbox_model::rng::SplitMix64;

/// The tiny fixture (a random GPT-2 checked against transformers) and its tokens.
pub(crate) fn tiny() -> Gpt2 {
    Gpt2::load(
        include_str!("../../../model/tests/fixtures/tiny/config.json"),
        include_bytes!("../../../model/tests/fixtures/tiny/model.safetensors"),
    )
    .unwrap()
}

/// The tiny fixture's own input tokens (those transformers ran).
pub(crate) fn fixture_tokens() -> Vec<u32> {
    let expected = candle_core::safetensors::load_buffer(
        include_bytes!("../../../model/tests/fixtures/tiny/expected.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    expected["tokens"]
        .to_dtype(candle_core::DType::U32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// `len` token ids below `vocab`, from `seed`.
pub(crate) fn ids(seed: u64, len: usize, vocab: usize) -> Vec<u32> {
    let mut rng = SplitMix64::new(seed);
    (0..len)
        .map(|_| (rng.next_u64() % vocab as u64) as u32)
        .collect()
}

/// A seeded TopK transcoder `d → d_sae → d` keeping `k` features.
pub(crate) fn transcoder(d: usize, d_sae: usize, k: usize, seed: u64) -> Arc<Dictionary> {
    Arc::new(Dictionary::seeded_topk(d, d_sae, k, seed, Spread::LARGE, None).unwrap())
}

/// A random Llama checked against transformers (grouped queries: 6 heads over 2), and the
/// tokens transformers ran.
pub(crate) fn llama() -> (glassbox_model::Model, Vec<u32>) {
    let model = glassbox_model::Model::from_hf(
        include_str!("../../../model/tests/fixtures/llama_gqa/config.json"),
        &[(
            "model.safetensors",
            include_bytes!("../../../model/tests/fixtures/llama_gqa/model.safetensors"),
        )],
    )
    .unwrap();
    let expected = candle_core::safetensors::load_buffer(
        include_bytes!("../../../model/tests/fixtures/llama_gqa/expected.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let tokens = expected["tokens"]
        .to_dtype(candle_core::DType::U32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    (model, tokens)
}
