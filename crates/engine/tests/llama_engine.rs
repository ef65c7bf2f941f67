//! The engine interface on a Llama model, with nothing written for the family above the
//! model: a transcoder attached at `ln2.hook_normalized` → `hook_mlp_out` reads the
//! encoder's features, steering adds exactly `(new − old) · W_dec[f]` where it applies,
//! and generation with the KV cache continues as full passes do.
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

mod common;

use common::{llama, transcoder};
use glassbox_engine::{
    CpuEngine, Engine, FeatureRead, FeatureSet, LogitsRead, PassRequest, Steering, async_test,
    generate, strongest, transcoder_hooks,
};
use glassbox_model::sampling::Sampling;
use glassbox_model::{Family, Hooks};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

async_test! {
    async fn a_transcoder_reads_and_steers_a_llama() {
        let (model, tokens) = llama();
        let dims = model.dims();
        assert_eq!(dims.family, Family::Llama);
        let dictionary = transcoder(dims.d_model, 30, 5, 3);
        let mut engine = CpuEngine::new(model.clone());
        let (input, output) = transcoder_hooks(1);
        engine.attach_now(&dictionary, input, output).unwrap();
        let mut clean = Hooks::none().cache(input).cache(output);
        model.forward_ids(&tokens, &mut clean).unwrap();
        let clean = clean.take_cache();
        let acts = dictionary.encode(&clean[&input].squeeze(0).unwrap()).unwrap();
        let rows: Vec<Vec<f32>> = acts.to_vec2().unwrap();

        let read = PassRequest {
            features: vec![FeatureRead { dictionary: 0, top: 100 }],
            ..PassRequest::logits(LogitsRead::None)
        };
        let answer = engine.pass(&tokens, &read, &mut Hooks::none(), None).await.unwrap();
        let expected: Vec<_> = rows.iter().map(|row| strongest(row, 5)).collect();
        assert_eq!(answer.features[0], expected);

        let feature = 4;
        let steer = PassRequest {
            steering: vec![Steering {
                dictionary: 0,
                features: vec![(feature, FeatureSet::Clamp(12.0))],
                positions: Some(vec![2]),
            }],
            ..PassRequest::logits(LogitsRead::None)
        };
        let mut steered = Hooks::none().cache(output);
        engine.pass(&tokens, &steer, &mut steered, None).await.unwrap();
        let change: Vec<Vec<f32>> = (&steered.take_cache()[&output] - &clean[&output])
            .unwrap().squeeze(0).unwrap().to_vec2().unwrap();
        let direction: Vec<f32> = dictionary.w_dec.get(feature).unwrap().to_vec1().unwrap();
        for (position, row) in change.iter().enumerate() {
            let scale = if position == 2 { 12.0 - rows[2][feature] } else { 0.0 };
            for (v, d) in row.iter().zip(&direction) {
                assert!((v - scale * d).abs() < 1e-4, "position {position}: {v} vs {}", scale * d);
            }
        }
    }
}

async_test! {
    async fn generation_on_a_llama_continues_as_full_passes_do() {
        let (model, tokens) = llama();
        let engine = CpuEngine::new(model.clone());
        let prompt = &tokens[..5];
        let generated = generate(&engine, prompt, &Sampling::greedy(6), &[], &mut Hooks::none())
            .await
            .unwrap();
        let mut sequence = prompt.to_vec();
        for _ in 0..6 {
            let logits = model.forward_ids(&sequence, &mut Hooks::none()).unwrap();
            let last = logits.get(sequence.len() - 1).unwrap();
            sequence.push(last.argmax(0).unwrap().to_scalar::<u32>().unwrap());
        }
        assert_eq!(generated.tokens, sequence[5..]);
    }
}
