//! GPT-2 as GGUF: a golden fixture written as GGUF (llama.cpp's names and layout) reads back
//! to the reference's logits, in f32 exactly and in `Q8_0` closely, with its tokenizer; a
//! file missing a tensor or with a wrong shape is refused by name. That llama.cpp's layout
//! is what is written is checked against transformers' GGUF reader on the default pack's
//! model (`crates/pack/tests/brown_pack.rs`).
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

mod common;

use common::{Fixture, find, gguf_refusal as refusal, max_abs_diff};
use glassbox_model::gguf::TensorType;
use glassbox_model::gguf_write::GgufVocabulary;
use glassbox_model::{Gpt2, Hooks, Model, Tokenizer, gpt2_to_gguf};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const TOKENIZER: &str = include_str!("fixtures/with_tokenizer/tokenizer.json");

/// The `with_tokenizer` fixture (1 block, width 16, 400 tokens) and its tokenizer.
fn with_tokenizer() -> Fixture {
    Fixture {
        name: "with_tokenizer",
        config: include_str!("fixtures/with_tokenizer/config.json"),
        weights: include_bytes!("fixtures/with_tokenizer/model.safetensors"),
        expected: include_bytes!("fixtures/with_tokenizer/expected.safetensors"),
    }
}

fn as_gguf(model: &Gpt2, kind: TensorType) -> Vec<u8> {
    let vocabulary = GgufVocabulary::from_tokenizer_json(TOKENIZER).unwrap();
    gpt2_to_gguf(model, "fixture", &vocabulary, kind).unwrap()
}

both! {
    fn a_gpt2_written_as_gguf_reads_back_to_the_reference_logits() {
        let fixture = with_tokenizer();
        let expected = fixture.expected()["logits"].squeeze(0).unwrap();
        for (kind, tolerance) in [(TensorType::F32, 1e-4), (TensorType::F16, 2e-2)] {
            let (model, tokenizer) =
                Model::from_gguf("fixture.gguf", &as_gguf(&fixture.model(), kind)).unwrap();
            assert!(model.as_gpt2().is_some());
            let logits = model.forward_ids(&fixture.tokens(), &mut Hooks::none()).unwrap();
            let diff = max_abs_diff(&logits, &expected);
            assert!(diff < tolerance, "{kind:?}: logits differ by {diff}");
            let json = Tokenizer::from_json(TOKENIZER.as_bytes()).unwrap();
            for text in ["The jury said that the city", "a b  c\n\nd's 12 <|endoftext|>x"] {
                assert_eq!(
                    tokenizer.encode_ids(text).unwrap(),
                    json.encode_ids(text).unwrap(),
                    "{text}"
                );
            }
        }
    }
}

both! {
    fn a_gpt2_in_q8_0_stays_close_to_its_f32_logits() {
        // Width 32: Q8_0's blocks of 32 fit its rows (the 16-wide fixture's do not). Its
        // random weights lose about 0.5% each; the logits here move by 2.5% of the largest.
        let fixture = &common::fixtures()[0];
        let model = fixture.model();
        let vocabulary = GgufVocabulary {
            tokens: (0..model.config().vocab_size).map(|i| format!("t{i}")).collect(),
            types: vec![1; model.config().vocab_size],
            merges: Vec::new(),
            pre: "gpt-2".to_owned(),
            eos: None,
        };
        let bytes = gpt2_to_gguf(&model, "tiny", &vocabulary, TensorType::Q8_0).unwrap();
        let (quantized, _) = Model::from_gguf("tiny.gguf", &bytes).unwrap();
        let tokens = fixture.tokens();
        let expected = fixture.expected()["logits"].squeeze(0).unwrap();
        let logits = quantized.forward_ids(&tokens, &mut Hooks::none()).unwrap();
        let diff = max_abs_diff(&logits, &expected);
        let scale = max_abs_diff(&expected, &expected.zeros_like().unwrap());
        assert!(diff > 0.0 && diff < 0.05 * scale, "Q8_0 logits differ by {diff} (scale {scale})");
        // A quarter of the f32 file's size, and GPT-2's 16-wide rows cannot be Q8_0.
        assert!(bytes.len() * 3 < as_gguf(&with_tokenizer().model(), TensorType::F32).len() * 4);
        let error = gpt2_to_gguf(&with_tokenizer().model(), "x", &vocabulary, TensorType::Q8_0)
            .unwrap_err()
            .to_string();
        assert!(error.contains("cannot be written as Q8_0"), "{error}");
    }
}

both! {
    fn a_broken_gpt2_gguf_is_refused_by_name() {
        let good = as_gguf(&with_tokenizer().model(), TensorType::F32);
        // A tensor renamed away: the loader names the one it misses.
        let mut bytes = good.clone();
        let at = find(&bytes, b"blk.0.ffn_up.weight");
        bytes[at..at + 5].copy_from_slice(b"blk.9");
        let error = refusal(&bytes);
        assert!(error.contains("`blk.0.ffn_up.weight` is missing"), "{error}");
        // attn_qkv claiming 15 inputs where the width is 16.
        let mut bytes = good.clone();
        let at = find(&bytes, b"blk.0.attn_qkv.weight") + "blk.0.attn_qkv.weight".len() + 4;
        bytes[at..at + 8].copy_from_slice(&15_u64.to_le_bytes());
        let error = refusal(&bytes);
        assert!(error.contains("blk.0.attn_qkv.weight") && error.contains("[48, 15]"), "{error}");
        // No head count.
        let mut bytes = good;
        let at = find(&bytes, b"gpt2.attention.head_count");
        bytes[at..at + 4].copy_from_slice(b"gpt3");
        let error = refusal(&bytes);
        assert!(error.contains("gpt2.attention.head_count"), "{error}");
    }
}

both! {
    fn a_tokenizer_gguf_cannot_say_is_refused() {
        let mut json: serde_json::Value = serde_json::from_str(TOKENIZER).unwrap();
        json["pre_tokenizer"]["add_prefix_space"] = true.into();
        let error = GgufVocabulary::from_tokenizer_json(&json.to_string()).unwrap_err();
        assert!(error.to_string().contains("not GPT-2's"), "{error}");
    }
}
