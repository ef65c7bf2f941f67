//! Bad model files give one clear error each, never a panic or a huge allocation.
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

mod common;

use common::fixtures;
use glassbox_model::{Gpt2, ModelError};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

fn load_error(config: &str, weights: &[u8]) -> String {
    Gpt2::load(config, weights).unwrap_err().to_string()
}

both! {
    fn a_truncated_file_is_rejected() {
        let [fixture, ..] = fixtures();
        let half = &fixture.weights[..fixture.weights.len() / 2];
        let error = load_error(fixture.config, half);
        assert!(error.starts_with("bad weights: not a valid safetensors file"), "{error}");
        assert!(load_error(fixture.config, &[]).starts_with("bad weights"));
    }
}

both! {
    fn a_header_that_lies_is_rejected_without_allocating() {
        let [fixture, ..] = fixtures();
        // A header that claims a 4 GB tensor in a 100-byte file.
        let header = br#"{"wte.weight":{"dtype":"F32","shape":[1000000,1000],"data_offsets":[0,4000000000]}}"#;
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(header);
        file.extend_from_slice(&[0; 100]);
        assert!(load_error(fixture.config, &file).starts_with("bad weights"));
        // A header length far beyond the file.
        let mut file = u64::MAX.to_le_bytes().to_vec();
        file.extend_from_slice(b"{}");
        assert!(load_error(fixture.config, &file).starts_with("bad weights"));
    }
}

both! {
    fn shapes_that_disagree_with_the_config_are_named() {
        let [fixture, ..] = fixtures();
        let config = fixture.config.replace("\"vocab_size\": 97", "\"vocab_size\": 98");
        let error = Gpt2::load(&config, fixture.weights).unwrap_err();
        assert!(matches!(error, ModelError::WeightShape { ref name, .. } if name.ends_with("wte.weight")), "{error}");
        let config = fixture.config.replace("\"n_layer\": 2", "\"n_layer\": 3");
        let error = load_error(&config, fixture.weights);
        assert_eq!(error, "bad weights: missing tensor `h.2.ln_1.weight`");
    }
}

both! {
    fn bad_configs_are_named() {
        let [fixture, ..] = fixtures();
        let config = fixture.config.replace("\"n_head\": 4", "\"n_head\": 5");
        assert_eq!(load_error(&config, fixture.weights), "bad config: n_head = 5 does not divide n_embd = 32");
        assert!(load_error("not json", fixture.weights).starts_with("bad config"));
    }
}

both! {
    fn bad_token_ids_and_long_inputs_are_named() {
        let [fixture, ..] = fixtures();
        let model = fixture.model();
        let mut hooks = glassbox_model::Hooks::none();
        let error = model.forward_ids(&[1, 97, 2], &mut hooks).unwrap_err().to_string();
        assert_eq!(error, "bad input: token id 97 is out of range: the vocabulary has 97 tokens (0..96)");
        let error = model.forward_ids(&[1; 25], &mut hooks).unwrap_err().to_string();
        assert_eq!(error, "bad input: 25 tokens is more than the model's context of 24 (n_positions)");
        let error = model.forward_ids(&[], &mut hooks).unwrap_err().to_string();
        assert_eq!(error, "bad input: no tokens to run");
    }
}

both! {
    fn initialised_weights_run_and_depend_only_on_the_seed() {
        let [fixture, ..] = fixtures();
        let config = fixture.model().config().clone();
        let model = |seed| Gpt2::new(config.clone(), glassbox_model::Gpt2Weights::init(&config, seed).unwrap()).unwrap();
        let logits = |seed| model(seed).forward_ids(&[1, 2, 3], &mut glassbox_model::Hooks::none()).unwrap();
        assert_eq!(logits(3).to_vec2::<f32>().unwrap(), logits(3).to_vec2::<f32>().unwrap());
        assert_ne!(logits(3).to_vec2::<f32>().unwrap(), logits(4).to_vec2::<f32>().unwrap());
    }
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn saved_weights_load_back_identically() {
    let [fixture, ..] = fixtures();
    let model = fixture.model();
    let named: std::collections::HashMap<String, candle_core::Tensor> =
        model.weights().named().into_iter().collect();
    let dir = std::env::temp_dir().join(format!("glassbox-save-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    candle_core::safetensors::save(&named, &path).unwrap();
    let config = model.config().to_hf_json();
    let reloaded = Gpt2::load(&config, &std::fs::read(&path).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let tokens = fixture.tokens();
    let a = model
        .forward_ids(&tokens, &mut glassbox_model::Hooks::none())
        .unwrap();
    let b = reloaded
        .forward_ids(&tokens, &mut glassbox_model::Hooks::none())
        .unwrap();
    assert_eq!(a.to_vec2::<f32>().unwrap(), b.to_vec2::<f32>().unwrap());
    // try_map visits every tensor once, in the same order as named().
    let mut seen = Vec::new();
    model
        .weights()
        .try_map(|name, t| {
            seen.push(name.to_owned());
            Ok(t.clone())
        })
        .unwrap();
    let names: Vec<String> = model
        .weights()
        .named()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(seen, names);
}
