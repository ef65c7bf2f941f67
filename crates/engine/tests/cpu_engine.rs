//! The CPU engine's answers, worked out by hand from the model run directly: steering adds
//! exactly `(new − old) · W_dec[f]` where it applies (through a transcoder or a sparse
//! autoencoder that reads and writes one hook) and nothing elsewhere, feature reads
//! and columns are the encoder's, the logits read are the model's, and bad requests are
//! refused before anything runs.
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

mod common;

use glassbox_engine::async_test;

use common::{ids, tiny, transcoder};
use glassbox_engine::{
    ColumnRead, CpuEngine, Engine, EngineError, FeatureRead, FeatureSet, Logits, LogitsRead,
    PassRequest, Steering, strongest, transcoder_hooks,
};
use glassbox_model::{HookPoint, Hooks};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

async_test! {
    async fn steering_adds_exactly_the_decoder_direction_where_it_applies() {
        let model = tiny();
        let d = model.config().n_embd;
        let dictionary = transcoder(d, 40, 6, 9);
        // A transcoder (block 1's), and a sparse autoencoder reading and writing one hook.
        for (input, output) in [transcoder_hooks(1), (HookPoint::ResidPost(1), HookPoint::ResidPost(1))] {
            let mut engine = CpuEngine::new(model.clone());
            engine.attach_now(&dictionary, input, output).unwrap();
            let tokens = ids(4, 9, model.config().vocab_size);
            let mut clean = Hooks::none().cache(output).cache(input);
            model.forward_ids(&tokens, &mut clean).unwrap();
            let clean = clean.take_cache();
            let acts = dictionary.encode(&clean[&input].squeeze(0).unwrap()).unwrap();
            let direction = |f: usize| -> Vec<f32> { dictionary.w_dec.get(f).unwrap().to_vec1().unwrap() };
            let old = |f: usize| -> Vec<f32> { acts.narrow(1, f, 1).unwrap().squeeze(1).unwrap().to_vec1().unwrap() };
            let features = vec![(3, FeatureSet::Clamp(20.0)), (7, FeatureSet::Scale(3.0))];
            for positions in [None, Some(vec![1, 6])] {
                let request = PassRequest {
                    steering: vec![Steering { dictionary: 0, features: features.clone(), positions: positions.clone() }],
                    ..PassRequest::logits(LogitsRead::None)
                };
                let mut steered = Hooks::none().cache(output);
                engine.pass(&tokens, &request, &mut steered, None).await.unwrap();
                let change: Vec<Vec<f32>> = (&steered.take_cache()[&output] - &clean[&output])
                    .unwrap().squeeze(0).unwrap().to_vec2().unwrap();
                for (position, row) in change.iter().enumerate() {
                    let applies = positions.as_ref().is_none_or(|p| p.contains(&position));
                    for (i, v) in row.iter().enumerate() {
                        let mut expected = 0.0;
                        if applies {
                            for &(f, set) in &features {
                                let before = old(f)[position];
                                let after = match set {
                                    FeatureSet::Clamp(value) => value,
                                    FeatureSet::Scale(factor) => before * factor,
                                };
                                expected += (after - before) * direction(f)[i];
                            }
                        }
                        assert!((v - expected).abs() < 1e-3, "{output}, position {position}: {v} vs {expected}");
                    }
                }
            }
        }
    }
}

async_test! {
    async fn reads_are_the_encoders_and_the_models() {
        let model = tiny();
        let d = model.config().n_embd;
        let vocab = model.config().vocab_size;
        let dictionary = transcoder(d, 50, 7, 21);
        let mut engine = CpuEngine::new(model.clone());
        let (input, output) = transcoder_hooks(0);
        engine.attach_now(&dictionary, input, output).unwrap();
        let tokens = ids(6, 8, vocab);
        let mut keep = Hooks::none().cache(input);
        let logits = model.forward_ids(&tokens, &mut keep).unwrap();
        let acts = dictionary.encode(&keep.take_cache()[&input].squeeze(0).unwrap()).unwrap();
        let rows: Vec<Vec<f32>> = acts.to_vec2().unwrap();
        let request = PassRequest {
            features: vec![FeatureRead { dictionary: 0, top: 100 }, FeatureRead { dictionary: 0, top: 0 }],
            columns: vec![ColumnRead { dictionary: 0, feature: 11 }],
            ..PassRequest::logits(LogitsRead::LastTop(4))
        };
        let output = engine.pass(&tokens, &request, &mut Hooks::none(), None).await.unwrap();
        // A TopK dictionary has at most k active features: a read of 100 gives those.
        let expected: Vec<_> = rows.iter().map(|row| strongest(row, 7)).collect();
        assert_eq!(output.features[0], expected);
        assert!(output.features[0].iter().all(|row| row.len() <= 7 && !row.is_empty()));
        assert_eq!(output.features[1], vec![Vec::new(); tokens.len()], "a read of none");
        let column: Vec<f32> = rows.iter().map(|row| row[11]).collect();
        assert_eq!(output.columns[0], column);
        let last: Vec<f32> = logits.get(tokens.len() - 1).unwrap().to_vec1().unwrap();
        let Some(Logits::Top(top)) = output.logits else { panic!("no top logits") };
        let mut order: Vec<usize> = (0..vocab).collect();
        order.sort_by(|&a, &b| last[b].total_cmp(&last[a]).then(a.cmp(&b)));
        assert_eq!(top.iter().map(|t| t.0 as usize).collect::<Vec<_>>(), order[..4]);
        assert!(top.iter().all(|&(id, v)| v.to_bits() == last[id as usize].to_bits()));
        let all = engine
            .pass(&tokens, &PassRequest::logits(LogitsRead::All), &mut Hooks::none(), None)
            .await
            .unwrap();
        let expected: Vec<f32> = logits.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(all.logits, Some(Logits::Rows { rows: tokens.len(), values: expected }));
        assert_eq!(all.last_logits().unwrap(), last);
    }
}

async_test! {
    async fn bad_requests_are_refused_with_the_reason() {
        let model = tiny();
        let d = model.config().n_embd;
        let mut engine = CpuEngine::new(model.clone());
        let (input, output) = transcoder_hooks(0);
        engine.attach_now(&transcoder(d, 30, 4, 2), input, output).unwrap();
        let steer = |value: f32| PassRequest {
            steering: vec![Steering { dictionary: 0, features: vec![(2, FeatureSet::Clamp(value))], positions: None }],
            ..PassRequest::logits(LogitsRead::Last)
        };
        let column = |dictionary, feature| PassRequest {
            columns: vec![ColumnRead { dictionary, feature }],
            ..PassRequest::logits(LogitsRead::None)
        };
        for (request, expected) in [
            (steer(f32::NAN), "not a number"),
            (column(0, 30), "feature 30 does not exist"),
            (column(1, 0), "dictionary 1 is not attached"),
        ] {
            let error = engine.pass(&[1, 2], &request, &mut Hooks::none(), None).await.unwrap_err();
            assert!(matches!(error, EngineError::Request(ref m) if m.contains(expected)), "{error}");
        }
        // A dictionary cannot write before it reads, nor at a hook the model lacks.
        assert!(engine.attach_now(&transcoder(d, 30, 4, 2), output, input).is_err());
        let beyond = HookPoint::MlpOut(model.config().n_layer);
        assert!(engine.attach_now(&transcoder(d, 30, 4, 2), input, beyond).is_err());
        // And a dictionary of another width is refused when it encodes.
        engine.attach_now(&transcoder(d + 1, 30, 4, 2), input, output).unwrap();
        let error = engine.pass(&[1, 2], &column(1, 0), &mut Hooks::none(), None).await.unwrap_err();
        let expected = format!("a dictionary reading {} values per position", d + 1);
        assert!(error.to_string().contains(&expected), "{error}");
    }
}
