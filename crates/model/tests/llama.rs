//! The Llama family against the reference implementation (Hugging Face transformers on
//! PyTorch): logits and every recorded TransformerLens hook within 1e-4, for grouped and
//! multi-query attention, tied and untied embeddings, an explicit head width, Llama 3
//! rope scaling, biases, f16 weights in two shards, and configs in the transformers 4 and
//! 5 styles. Cached generation gives the logits of a full pass.
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

mod common;

use candle_core::{Device, Tensor};
use common::{llama_fixtures, max_abs_diff};
use glassbox_model::{Family, HookPoint, Hooks, KvCache};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

const TOLERANCE: f32 = 1e-4;

both! {
    fn llama_logits_match_the_reference() {
        for fixture in llama_fixtures() {
            let model = fixture.model();
            assert_eq!(model.family(), Family::Llama);
            let logits = model.forward_ids(&fixture.tokens(), &mut Hooks::none()).unwrap();
            let expected = fixture.expected()["logits"].squeeze(0).unwrap();
            let diff = max_abs_diff(&logits, &expected);
            assert!(diff < TOLERANCE, "{}: logits differ by {diff}", fixture.name);
        }
    }
}

both! {
    fn every_recorded_llama_hook_matches_the_reference() {
        for fixture in llama_fixtures() {
            let model = fixture.model();
            let mut hooks = Hooks::none().cache_everything();
            model.forward_ids(&fixture.tokens(), &mut hooks).unwrap();
            let cache = hooks.take_cache();
            let mut compared = 0;
            for (name, expected) in fixture.expected() {
                if name == "tokens" || name == "logits" {
                    continue;
                }
                let hook: HookPoint = name.parse().unwrap();
                let diff = max_abs_diff(&cache[&hook], &expected);
                assert!(diff < TOLERANCE, "{}: {name} differs by {diff}", fixture.name);
                compared += 1;
            }
            let layers = model.dims().n_layer;
            // Per block: resid_pre, two norms' scale and normalized, q, k, v, rot_q,
            // rot_k, pattern, z, attn_out, resid_mid, pre, pre_linear, post, mlp_out,
            // resid_post; then hook_embed and ln_final's two.
            assert_eq!(compared, 3 + 19 * layers, "{}: hooks compared", fixture.name);
        }
    }
}

both! {
    fn cached_llama_generation_matches_a_full_pass() {
        for fixture in llama_fixtures() {
            let model = fixture.model();
            let ids = fixture.tokens();
            let full = model.forward_ids(&ids, &mut Hooks::none()).unwrap();
            let mut cache = KvCache::default();
            let split = ids.len() / 2;
            let mut rows = Vec::new();
            for chunk in [&ids[..split], &ids[split..=split], &ids[split + 1..]] {
                let tokens = Tensor::new(chunk, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
                let logits = model
                    .forward_cached(&tokens, &mut cache, &mut Hooks::none())
                    .unwrap();
                rows.push(logits.squeeze(0).unwrap());
            }
            let stepped = Tensor::cat(&rows, 0).unwrap();
            let diff = max_abs_diff(&stepped, &full);
            assert!(diff < TOLERANCE, "{}: cached logits differ by {diff}", fixture.name);
            assert_eq!(cache.len(), ids.len());
        }
    }
}

both! {
    fn hooks_of_another_family_are_refused_by_name() {
        let model = llama_fixtures()[0].model();
        let mut hooks = Hooks::none().cache(HookPoint::PosEmbed);
        let error = model.forward_ids(&[1, 2], &mut hooks).unwrap_err().to_string();
        assert!(error.contains("hook_pos_embed does not exist in a Llama model"), "{error}");
    }
}

both! {
    fn broken_checkpoints_are_refused_with_the_file_and_tensor() {
        let fixture = &llama_fixtures()[0];
        let smaller = fixture.config.replace("\"intermediate_size\": 40", "\"intermediate_size\": 41");
        let error = glassbox_model::Model::from_hf(&smaller, fixture.shards).unwrap_err().to_string();
        assert!(
            error.contains("model.safetensors: model.layers.0.mlp.gate_proj.weight")
                && error.contains("[41, 48]"),
            "{error}"
        );
        let sharded = &llama_fixtures()[2];
        let error = glassbox_model::Model::from_hf(sharded.config, &sharded.shards[..1])
            .unwrap_err()
            .to_string();
        assert!(error.contains("missing tensor"), "{error}");
        let truncated = [("model.safetensors", &fixture.shards[0].1[..1000])];
        let error = glassbox_model::Model::from_hf(fixture.config, &truncated).unwrap_err().to_string();
        assert!(error.contains("model.safetensors: not a valid safetensors file"), "{error}");
    }
}
