//! Parity with the reference implementation (Hugging Face transformers on PyTorch): logits
//! and every recorded hook within 1e-4, for f32 and f16 weights, with and without HF's
//! `transformer.` key prefix, tanh and exact GELU, default and custom MLP widths.
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

mod common;

use common::{fixtures, max_abs_diff};
use glassbox_model::{HookPoint, Hooks};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const TOLERANCE: f32 = 1e-4;

both! {
    fn logits_match_the_reference() {
        for fixture in fixtures() {
            let model = fixture.model();
            let logits = model.forward_ids(&fixture.tokens(), &mut Hooks::none()).unwrap();
            let expected = fixture.expected()["logits"].squeeze(0).unwrap();
            let diff = max_abs_diff(&logits, &expected);
            assert!(diff < TOLERANCE, "{}: logits differ by {diff}", fixture.name);
        }
    }
}

both! {
    fn every_recorded_hook_matches_the_reference() {
        for fixture in fixtures() {
            let model = fixture.model();
            let mut hooks = Hooks::none().cache_everything();
            let tokens = candle_core::Tensor::new(fixture.tokens().as_slice(), &candle_core::Device::Cpu)
                .unwrap()
                .unsqueeze(0)
                .unwrap();
            model.forward(&tokens, &mut hooks).unwrap();
            let cache = hooks.take_cache();
            let mut compared = 0;
            for (name, expected) in fixture.expected() {
                if name == "tokens" || name == "logits" {
                    continue;
                }
                let hook: HookPoint = name.parse().unwrap();
                let ours = &cache[&hook];
                let diff = max_abs_diff(ours, &expected);
                assert!(diff < TOLERANCE, "{}: {name} differs by {diff}", fixture.name);
                compared += 1;
            }
            let layers = model.config().n_layer;
            assert_eq!(compared, 4 + 12 * layers, "{}: hooks compared", fixture.name);
        }
    }
}
