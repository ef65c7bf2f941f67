//! Interventions, checked against values worked out by hand from a plain run of the tiny
//! fixture (generation with the KV cache is tested where its loop lives, in
//! `glassbox-engine`).
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

mod common;

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};
use common::{fixtures, max_abs_diff};
use glassbox_model::{Edit, Gpt2, HookPoint, Hooks, Intervention};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

fn tiny() -> (Gpt2, Vec<u32>) {
    let [fixture, ..] = fixtures();
    (fixture.model(), fixture.tokens())
}

fn run(model: &Gpt2, tokens: &[u32], hooks: Hooks) -> (Tensor, BTreeMap<HookPoint, Tensor>) {
    let mut hooks = hooks.cache_everything();
    let logits = model.forward_ids(tokens, &mut hooks).unwrap();
    (logits, hooks.take_cache())
}

both! {
    fn zeroing_attention_leaves_the_residual_unchanged() {
        let (model, tokens) = tiny();
        let hooks = Hooks::none().intervene(Intervention::everywhere(HookPoint::AttnOut(0), Edit::Zero));
        let (_, cache) = run(&model, &tokens, hooks);
        let diff = max_abs_diff(&cache[&HookPoint::ResidMid(0)], &cache[&HookPoint::ResidPre(0)]);
        assert!(diff == 0.0, "{diff}");
    }
}

both! {
    fn scaling_mlp_neurons_scales_the_mlp_output_less_its_bias() {
        let (model, tokens) = tiny();
        let (_, plain) = run(&model, &tokens, Hooks::none());
        let hooks = Hooks::none().intervene(Intervention::everywhere(HookPoint::MlpPost(0), Edit::Scale(2.0)));
        let (_, scaled) = run(&model, &tokens, hooks);
        // mlp_out = post · W_out + b_out, so doubling post gives 2 · mlp_out − b_out.
        let bias = &model.weights().blocks[0].mlp_out_bias;
        let expected = plain[&HookPoint::MlpOut(0)].affine(2.0, 0.0).unwrap().broadcast_sub(bias).unwrap();
        assert!(max_abs_diff(&scaled[&HookPoint::MlpOut(0)], &expected) < 1e-5);
    }
}

both! {
    fn replacing_token_embeddings_with_zeros_leaves_positions() {
        let (model, tokens) = tiny();
        let zeros = Tensor::zeros((1, 1, model.config().n_embd), candle_core::DType::F32, &Device::Cpu).unwrap();
        let hooks = Hooks::none().intervene(Intervention::everywhere(HookPoint::Embed, Edit::Replace(zeros)));
        let (_, cache) = run(&model, &tokens, hooks);
        let positions = cache[&HookPoint::PosEmbed].squeeze(0).unwrap();
        let resid = cache[&HookPoint::ResidPre(0)].squeeze(0).unwrap();
        assert!(max_abs_diff(&resid, &positions) == 0.0);
    }
}

both! {
    fn adding_at_one_position_changes_only_that_position_and_later() {
        let (model, tokens) = tiny();
        let (plain_logits, plain) = run(&model, &tokens, Hooks::none());
        let d = model.config().n_embd;
        // Not a constant vector: LayerNorm subtracts the mean, which would hide one.
        let v: Vec<f32> = (0..d).map(|i| (i as f32).sin()).collect();
        let v_tensor = Tensor::new(v.as_slice(), &Device::Cpu).unwrap();
        let hooks = Hooks::none().intervene(Intervention::at(HookPoint::ResidPre(1), vec![3], Edit::Add(v_tensor)));
        let (logits, cache) = run(&model, &tokens, hooks);
        let delta = (&cache[&HookPoint::ResidPre(1)] - &plain[&HookPoint::ResidPre(1)]).unwrap().squeeze(0).unwrap();
        for p in 0..tokens.len() {
            let row: Vec<f32> = delta.get(p).unwrap().to_vec1().unwrap();
            let want = |i: usize| if p == 3 { v[i] } else { 0.0 };
            assert!(row.iter().enumerate().all(|(i, x)| (x - want(i)).abs() < 1e-6), "position {p}: {row:?}");
        }
        // Causality: positions before 3 see nothing; position 3 sees the change.
        let before = max_abs_diff(&logits.narrow(0, 0, 3).unwrap(), &plain_logits.narrow(0, 0, 3).unwrap());
        assert!(before == 0.0, "{before}");
        assert!(max_abs_diff(&logits.get(3).unwrap(), &plain_logits.get(3).unwrap()) > 1e-3);
    }
}

both! {
    fn frozen_norms_make_the_final_layernorm_linear() {
        let (model, tokens) = tiny();
        let (plain_logits, plain) = run(&model, &tokens, Hooks::none());
        // Freezing at the run's own values changes nothing.
        let frozen = || Hooks::none().freeze_attention_and_norms(&plain).unwrap();
        let (same_logits, _) = run(&model, &tokens, frozen());
        assert!(max_abs_diff(&same_logits, &plain_logits) < 1e-6);
        // With the scale frozen, adding v to the last residual changes ln_final's
        // hook_normalized (before the gain) by (v − mean v) / scale: worked out here by
        // hand, position by position.
        let d = model.config().n_embd;
        let last = model.config().n_layer - 1;
        let v: Vec<f32> = (0..d).map(|i| (i as f32 * 0.37).sin()).collect();
        let mean = v.iter().sum::<f32>() / d as f32;
        let v_tensor = Tensor::new(v.as_slice(), &Device::Cpu).unwrap();
        let hooks = frozen().intervene(Intervention::everywhere(HookPoint::ResidPost(last), Edit::Add(v_tensor)));
        let (_, steered) = run(&model, &tokens, hooks);
        let scales = plain[&HookPoint::LnFinalScale].flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let delta = (&steered[&HookPoint::LnFinalNormalized] - &plain[&HookPoint::LnFinalNormalized])
            .unwrap()
            .squeeze(0)
            .unwrap();
        for (p, scale) in scales.iter().enumerate() {
            let row: Vec<f32> = delta.get(p).unwrap().to_vec1().unwrap();
            for i in 0..d {
                let want = (v[i] - mean) / scale;
                assert!((row[i] - want).abs() < 1e-4, "position {p}, dim {i}: {} vs {want}", row[i]);
            }
        }
    }
}

both! {
    fn a_hook_beyond_the_last_block_is_an_error() {
        let (model, tokens) = tiny();
        let mut hooks = Hooks::none().cache(HookPoint::ResidPre(99));
        let error = model.forward_ids(&tokens, &mut hooks).unwrap_err().to_string();
        assert!(error.contains("blocks.99.hook_resid_pre does not exist"), "{error}");
    }
}
