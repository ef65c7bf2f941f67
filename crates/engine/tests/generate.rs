//! The decode loop, on the CPU engine: the KV cache reproduces full recomputation,
//! interventions and steering apply at every step, generation stops where it must, and
//! seeded sampling reproduces. (The GPU engine runs the same loop; its tests compare it
//! with this one.)
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

mod common;

use glassbox_engine::async_test;

use candle_core::D;
use common::{tiny, transcoder};
use glassbox_engine::{CpuEngine, EngineError, FeatureSet, Steering, generate, transcoder_hooks};
use glassbox_model::sampling::{Sampling, StopReason};
use glassbox_model::{Edit, Gpt2, HookPoint, Hooks, Intervention};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// Greedy generation by recomputing the whole sequence at every step: what the KV cache
/// must reproduce.
fn greedy_without_cache(model: &Gpt2, prompt: &[u32], steps: usize, hooks: &Hooks) -> Vec<u32> {
    let mut sequence = prompt.to_vec();
    for _ in 0..steps {
        let logits = model.forward_ids(&sequence, &mut hooks.clone()).unwrap();
        let last = logits.get(sequence.len() - 1).unwrap();
        sequence.push(last.argmax(D::Minus1).unwrap().to_scalar::<u32>().unwrap());
    }
    sequence[prompt.len()..].to_vec()
}

fn tokens() -> Vec<u32> {
    common::fixture_tokens()
}

async_test! {
    async fn the_kv_cache_reproduces_full_recomputation() {
        let (model, tokens) = (tiny(), tokens());
        let engine = CpuEngine::new(model.clone());
        let prompt = &tokens[..5];
        let generated = generate(&engine, prompt, &Sampling::greedy(8), &[], &mut Hooks::none()).await.unwrap();
        assert_eq!(generated.stop, StopReason::MaxTokens);
        assert_eq!(generated.tokens, greedy_without_cache(&model, prompt, 8, &Hooks::none()));
    }
}

async_test! {
    async fn interventions_apply_at_every_generated_step() {
        let (model, tokens) = (tiny(), tokens());
        let engine = CpuEngine::new(model.clone());
        let prompt = &tokens[..4];
        // Steer the last residual stream hard towards token 7's unembedding direction.
        let direction = model.weights().unembedding().get(7).unwrap().affine(50.0, 0.0).unwrap();
        let last = model.config().n_layer - 1;
        let hooks = Hooks::none().intervene(Intervention::everywhere(HookPoint::ResidPost(last), Edit::Add(direction)));
        let steered = generate(&engine, prompt, &Sampling::greedy(6), &[], &mut hooks.clone()).await.unwrap();
        assert_eq!(steered.tokens, vec![7; 6]);
        assert_eq!(steered.tokens, greedy_without_cache(&model, prompt, 6, &hooks));
        let plain = generate(&engine, prompt, &Sampling::greedy(6), &[], &mut Hooks::none()).await.unwrap();
        assert_ne!(plain.tokens, steered.tokens);
    }
}

async_test! {
    async fn steering_applies_at_every_generated_step() {
        let (model, tokens) = (tiny(), tokens());
        let d = model.config().n_embd;
        let mut engine = CpuEngine::new(model);
        let (input, output) = transcoder_hooks(0);
        engine.attach_now(&transcoder(d, 32, 4, 5), input, output).unwrap();
        let steering = [Steering { dictionary: 0, features: vec![(3, FeatureSet::Clamp(40.0))], positions: None }];
        let prompt = &tokens[..4];
        let steered = generate(&engine, prompt, &Sampling::greedy(8), &steering, &mut Hooks::none()).await.unwrap();
        let plain = generate(&engine, prompt, &Sampling::greedy(8), &[], &mut Hooks::none()).await.unwrap();
        assert_ne!(steered.tokens, plain.tokens, "a strong clamp changes the text");
        // Each step's pass saw the steering: the same as steering a full recomputation.
        let mut sequence = prompt.to_vec();
        for _ in 0..8 {
            let request = glassbox_engine::PassRequest {
                steering: steering.to_vec(),
                ..glassbox_engine::PassRequest::logits(glassbox_engine::LogitsRead::LastTop(1))
            };
            let output = engine.pass_now(&sequence, &request, &mut Hooks::none(), None).unwrap();
            let Some(glassbox_engine::Logits::Top(top)) = output.logits else { panic!("no top logit") };
            sequence.push(top[0].0);
        }
        assert_eq!(steered.tokens, sequence[prompt.len()..]);
    }
}

async_test! {
    async fn generation_stops_at_the_context_length_and_at_the_stop_token() {
        let (model, tokens) = (tiny(), tokens());
        let engine = CpuEngine::new(model.clone());
        let context = model.config().n_positions;
        let mut prompt = tokens.clone();
        prompt.extend(&tokens);
        prompt.truncate(context - 3);
        let generated = generate(&engine, &prompt, &Sampling::greedy(10), &[], &mut Hooks::none()).await.unwrap();
        assert_eq!(generated.stop, StopReason::ContextFull);
        assert_eq!(generated.tokens.len(), 4, "the last token is predicted from a full context");
        let first = generated.tokens[0];
        let sampling = Sampling { stop_token: Some(first), ..Sampling::greedy(10) };
        let stopped = generate(&engine, &prompt, &sampling, &[], &mut Hooks::none()).await.unwrap();
        assert_eq!((stopped.tokens, stopped.stop), (vec![first], StopReason::StopToken));
        let too_long = vec![1; context + 1];
        let error = generate(&engine, &too_long, &Sampling::greedy(1), &[], &mut Hooks::none()).await.unwrap_err();
        assert!(matches!(error, EngineError::Request(ref m) if m.contains("context")), "{error}");
        let bad = Sampling { temperature: -1.0, ..Sampling::greedy(1) };
        let error = generate(&engine, &prompt[..2], &bad, &[], &mut Hooks::none()).await.unwrap_err();
        assert!(matches!(error, EngineError::Request(ref m) if m.contains("temperature")), "{error}");
    }
}

async_test! {
    async fn seeded_sampling_reproduces_and_seeds_differ() {
        let (model, tokens) = (tiny(), tokens());
        let engine = CpuEngine::new(model);
        let sampling = |seed| Sampling { temperature: 1.5, top_k: Some(40), top_p: Some(0.95), seed, ..Sampling::greedy(12) };
        let run = async |seed| generate(&engine, &tokens[..3], &sampling(seed), &[], &mut Hooks::none()).await.unwrap().tokens;
        assert_eq!(run(5).await, run(5).await);
        assert_ne!(run(5).await, run(6).await);
    }
}
