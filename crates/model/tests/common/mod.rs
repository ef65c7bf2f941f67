//! Fixtures shared by the model tests, embedded so the same tests run in the browser.
#![allow(dead_code, reason = "each test file uses a different part")]

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use glassbox_model::Gpt2;

/// One golden fixture: a random GPT-2 and what the reference implementation computed.
pub(crate) struct Fixture {
    pub(crate) name: &'static str,
    pub(crate) config: &'static str,
    pub(crate) weights: &'static [u8],
    pub(crate) expected: &'static [u8],
}

macro_rules! fixture {
    ($name:literal) => {
        Fixture {
            name: $name,
            config: include_str!(concat!("../fixtures/", $name, "/config.json")),
            weights: include_bytes!(concat!("../fixtures/", $name, "/model.safetensors")),
            expected: include_bytes!(concat!("../fixtures/", $name, "/expected.safetensors")),
        }
    };
}

/// Every model fixture made by `fixtures/make_fixtures.py`.
pub(crate) fn fixtures() -> [Fixture; 3] {
    [
        fixture!("tiny"),
        fixture!("wide_mlp_erf"),
        fixture!("tiny_f16"),
    ]
}

impl Fixture {
    pub(crate) fn model(&self) -> Gpt2 {
        Gpt2::load(self.config, self.weights).unwrap()
    }

    /// The reference's arrays by name (hook names, `logits`, `tokens`).
    pub(crate) fn expected(&self) -> HashMap<String, Tensor> {
        candle_core::safetensors::load_buffer(self.expected, &Device::Cpu).unwrap()
    }

    /// The input token ids.
    pub(crate) fn tokens(&self) -> Vec<u32> {
        let tokens = &self.expected()["tokens"];
        tokens
            .to_dtype(DType::U32)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }
}

/// The largest absolute difference between two tensors of the same shape.
pub(crate) fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
}

/// Declares a test that runs natively and, as a `wasm_bindgen_test`, in the browser.
#[macro_export]
macro_rules! both {
    ($(#[$meta:meta])* fn $name:ident() $body:block) => {
        $(#[$meta])*
        #[cfg_attr(not(target_arch = "wasm32"), test)]
        #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
        fn $name() $body
    };
}

/// One Llama golden fixture: a random Llama (one or more safetensors shards) and what the
/// reference implementation computed.
pub(crate) struct LlamaFixture {
    pub(crate) name: &'static str,
    pub(crate) config: &'static str,
    pub(crate) shards: &'static [(&'static str, &'static [u8])],
    pub(crate) expected: &'static [u8],
}

macro_rules! llama_fixture {
    ($name:literal, [$($shard:literal),+]) => {
        LlamaFixture {
            name: $name,
            config: include_str!(concat!("../fixtures/", $name, "/config.json")),
            shards: &[$(($shard, include_bytes!(concat!("../fixtures/", $name, "/", $shard)))),+],
            expected: include_bytes!(concat!("../fixtures/", $name, "/expected.safetensors")),
        }
    };
}

/// Every model fixture made by `fixtures/make_llama_fixtures.py`.
pub(crate) fn llama_fixtures() -> [LlamaFixture; 3] {
    [
        llama_fixture!("llama_gqa", ["model.safetensors"]),
        llama_fixture!("llama_tied_llama3", ["model.safetensors"]),
        llama_fixture!(
            "llama_mqa_bias_f16",
            [
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors"
            ]
        ),
    ]
}

impl LlamaFixture {
    pub(crate) fn model(&self) -> glassbox_model::Model {
        glassbox_model::Model::from_hf(self.config, self.shards).unwrap()
    }

    /// The reference's arrays by name (hook names, `logits`, `tokens`).
    pub(crate) fn expected(&self) -> HashMap<String, Tensor> {
        candle_core::safetensors::load_buffer(self.expected, &Device::Cpu).unwrap()
    }

    /// The input token ids.
    pub(crate) fn tokens(&self) -> Vec<u32> {
        self.expected()["tokens"]
            .to_dtype(DType::U32)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }
}

/// Loads `bytes` as a GGUF model, which must fail, and returns the error: one line that
/// names the file.
pub(crate) fn gguf_refusal(bytes: &[u8]) -> String {
    let error = glassbox_model::Model::from_gguf("broken.gguf", bytes)
        .map(|_| ())
        .expect_err("a broken file loaded")
        .to_string();
    assert!(
        error.contains("broken.gguf"),
        "the error does not name the file: {error}"
    );
    assert!(!error.contains('\n'), "not one line: {error}");
    error
}

/// Where `needle` first occurs in `haystack`.
pub(crate) fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap()
}
