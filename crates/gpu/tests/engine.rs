//! The GPU engine against the CPU engine (candle-core), which is itself checked against
//! Hugging Face transformers: the same passes through the one engine interface, compared
//! for logits, every hook, interventions, generation, dictionary features and steering.
//! One body per test, run natively (lavapipe) and in headless Chromium (WebGPU).
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

mod common;

use common::{
    TOLERANCE, all_logits, dictionaries, every_hook_matches, flat, ids, max_diff, on_gpu,
};

use glassbox_engine::async_test;

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use glassbox_dict::Dictionary;
use glassbox_engine::{
    Attach, ColumnRead, CpuEngine, Engine, EngineError, FeatureRead, FeatureSet, Logits,
    LogitsRead, PassRequest, Steering, generate, strongest,
};
use glassbox_gpu::GpuModel;
use glassbox_gpu::check::seeded_values;
use glassbox_model::rng::SplitMix64;
use glassbox_model::sampling::Sampling;
use glassbox_model::{
    Activation, Edit, EditContext, Gpt2, Gpt2Config, Gpt2Weights, HookPoint, Hooks, Intervention,
    Norm,
};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

macro_rules! fixture {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!(
                "../../model/tests/fixtures/",
                $name,
                "/config.json"
            )),
            include_bytes!(concat!(
                "../../model/tests/fixtures/",
                $name,
                "/model.safetensors"
            ))
            .as_slice(),
        )
    };
}

/// The golden fixtures of the CPU engine: random GPT-2s checked against transformers.
fn fixtures() -> Vec<(&'static str, Gpt2)> {
    [
        fixture!("tiny"),
        fixture!("wide_mlp_erf"),
        fixture!("tiny_f16"),
    ]
    .into_iter()
    .map(|(name, config, weights)| (name, Gpt2::load(config, weights).unwrap()))
    .collect()
}

/// The same pass on both engines: how far apart the logits of every position are.
async fn compare_logits(
    cpu: &CpuEngine,
    gpu: &GpuModel,
    tokens: &[u32],
    cpu_hooks: &mut Hooks,
    gpu_hooks: &mut Hooks,
) -> f32 {
    let request = PassRequest::logits(LogitsRead::All);
    let expected = cpu.pass(tokens, &request, cpu_hooks, None).await.unwrap();
    let output = gpu.pass(tokens, &request, gpu_hooks, None).await.unwrap();
    max_diff(&all_logits(&output), &all_logits(&expected))
}

async_test! {
    async fn logits_match_the_cpu_engine_on_the_golden_fixtures() {
        for (name, model) in fixtures() {
            let gpu = on_gpu(&model).await;
            let vocab = model.config().vocab_size;
            let n_positions = model.config().n_positions;
            let cpu = CpuEngine::new(model);
            for len in [1, 7, n_positions] {
                let tokens = ids(len as u64, len, vocab);
                let diff = compare_logits(&cpu, &gpu, &tokens, &mut Hooks::none(), &mut Hooks::none()).await;
                assert!(diff < TOLERANCE, "{name}, {len} tokens: logits differ by {diff}");
            }
        }
    }
}

async_test! {
    async fn every_hook_matches_the_cpu_engine() {
        for (name, model) in fixtures() {
            let gpu = on_gpu(&model).await;
            let tokens = ids(3, 9, model.config().vocab_size);
            every_hook_matches(name, &model.into(), &gpu, &tokens).await;
        }
    }
}

/// The interventions every engine supports, at hooks of every shape.
fn interventions(config: &Gpt2Config, len: usize) -> Vec<Intervention> {
    let d = config.n_embd;
    let heads = config.n_head;
    let direction = Tensor::from_vec(seeded_values(5, d), d, &Device::Cpu).unwrap();
    let per_position =
        Tensor::from_vec(seeded_values(6, len * d), (1, len, d), &Device::Cpu).unwrap();
    let uniform_pattern = (Tensor::ones((1, heads, len, len), DType::F32, &Device::Cpu).unwrap()
        / len as f64)
        .unwrap();
    vec![
        Intervention::at(
            HookPoint::ResidPre(1),
            vec![0, 2],
            Edit::Add((&direction * 3.0).unwrap()),
        ),
        Intervention::everywhere(HookPoint::MlpPost(0), Edit::Scale(0.5)),
        Intervention::at(HookPoint::AttnOut(0), vec![1], Edit::Zero),
        Intervention::everywhere(HookPoint::Embed, Edit::Replace(per_position)),
        Intervention::at(HookPoint::V(1), vec![len - 1], Edit::Scale(-2.0)),
        Intervention::at(
            HookPoint::Pattern(0),
            vec![len - 1],
            Edit::Replace(uniform_pattern),
        ),
        Intervention::at(HookPoint::AttnScores(1), vec![1], Edit::Scale(0.25)),
        Intervention::everywhere(HookPoint::LnScale(1, Norm::Ln2), Edit::Scale(2.0)),
        Intervention::at(HookPoint::MlpPre(1), vec![0], Edit::Zero),
    ]
}

async_test! {
    async fn interventions_change_the_logits_as_on_the_cpu() {
        for (name, model) in fixtures() {
            let gpu = on_gpu(&model).await;
            let len = 6;
            let tokens = ids(11, len, model.config().vocab_size);
            let all = PassRequest::logits(LogitsRead::All);
            let engine = CpuEngine::new(model.clone());
            let plain = all_logits(&engine.pass(&tokens, &all, &mut Hooks::none(), None).await.unwrap());
            for intervention in interventions(model.config(), len) {
                let hook = intervention.hook;
                let mut cpu_hooks = Hooks::none().intervene(intervention.clone());
                let mut gpu_hooks = Hooks::none().intervene(intervention).cache(hook);
                let cpu = all_logits(&engine.pass(&tokens, &all, &mut cpu_hooks, None).await.unwrap());
                // Each intervention must matter, or the comparison proves nothing.
                assert!(max_diff(&cpu, &plain) > 1e-3, "{name}: {hook} changed nothing");
                let output = gpu.pass(&tokens, &all, &mut gpu_hooks, None).await.unwrap();
                let diff = max_diff(&all_logits(&output), &cpu);
                assert!(diff < TOLERANCE, "{name}: with an edit at {hook} logits differ by {diff}");
            }
        }
    }
}

async_test! {
    async fn frozen_attention_and_norms_reproduce_the_pass() {
        let (_, model) = fixtures().remove(0);
        let gpu = on_gpu(&model).await;
        let tokens = ids(2, 8, model.config().vocab_size);
        let mut keep = Hooks::none().cache_everything();
        model.forward_ids(&tokens, &mut keep).unwrap();
        let cache = keep.take_cache();
        // Frozen at another prompt's values, the logits change, the same on both engines.
        let other = ids(9, 8, model.config().vocab_size);
        let mut cpu_hooks = Hooks::none().freeze_attention_and_norms(&cache).unwrap();
        let mut gpu_hooks = Hooks::none().freeze_attention_and_norms(&cache).unwrap();
        let cpu = CpuEngine::new(model);
        let diff = compare_logits(&cpu, &gpu, &other, &mut cpu_hooks, &mut gpu_hooks).await;
        assert!(diff < TOLERANCE, "frozen logits differ by {diff}");
    }
}

async_test! {
    async fn random_shapes_match_the_cpu_engine() {
        // Widths, heads, vocabularies and lengths that are not multiples of any tile.
        let mut rng = SplitMix64::new(77);
        for case in 0..6_u64 {
            let mut pick = |lo: u64, hi: u64| (lo + rng.next_u64() % (hi - lo + 1)) as usize;
            let heads = pick(1, 4);
            let config = Gpt2Config {
                n_layer: pick(1, 3),
                n_head: heads,
                n_embd: heads * pick(3, 20),
                n_positions: pick(2, 70),
                vocab_size: pick(2, 300),
                layer_norm_epsilon: 1e-5,
                n_inner: Some(pick(1, 90)),
                activation_function: [Activation::GeluTanh, Activation::GeluErf, Activation::Relu][case as usize % 3],
            };
            let model = Gpt2::new(config.clone(), Gpt2Weights::init(&config, case).unwrap()).unwrap();
            let gpu = on_gpu(&model).await;
            let len = pick(1, config.n_positions as u64);
            let tokens = ids(case, len, config.vocab_size);
            let cpu = CpuEngine::new(model);
            let diff = compare_logits(&cpu, &gpu, &tokens, &mut Hooks::none(), &mut Hooks::none()).await;
            assert!(diff < TOLERANCE, "{config:?}, {len} tokens: logits differ by {diff}");
        }
    }
}

async_test! {
    async fn generation_matches_the_cpu_engine_with_one_submit_per_token() {
        let (_, model) = fixtures().remove(0);
        let gpu = on_gpu(&model).await;
        let prompt = ids(4, 5, model.config().vocab_size);
        let engine = CpuEngine::new(model);
        for sampling in [
            Sampling::greedy(10),
            Sampling { temperature: 0.8, top_k: Some(20), seed: 3, ..Sampling::greedy(12) },
            Sampling { temperature: 1.0, top_p: Some(0.9), seed: 5, ..Sampling::greedy(30) },
        ] {
            let cpu = generate(&engine, &prompt, &sampling, &[], &mut Hooks::none()).await.unwrap();
            let before = gpu.counts();
            let ours = generate(&gpu, &prompt, &sampling, &[], &mut Hooks::none()).await.unwrap();
            assert_eq!(ours, cpu, "{sampling:?}");
            let after = gpu.counts();
            let steps = ours.tokens.len() as u64;
            assert_eq!(after.submits - before.submits, steps, "one submit per token");
            assert_eq!(after.readbacks - before.readbacks, steps, "one readback per token");
        }
    }
}

/// Each row's `top` strongest active features, strongest first (ties to the lower index),
/// computed from the encoder directly.
fn strongest_rows(acts: &Tensor, top: usize) -> Vec<Vec<(u32, f32)>> {
    let rows: Vec<Vec<f32>> = acts.to_vec2().unwrap();
    rows.iter().map(|row| strongest(row, top)).collect()
}

/// Both engines with the same dictionaries attached between `input` and `output`.
async fn with_dictionaries(
    model: &Gpt2,
    dictionaries: &[Arc<Dictionary>],
    (input, output): (HookPoint, HookPoint),
) -> (CpuEngine, GpuModel) {
    let mut cpu = CpuEngine::new(model.clone());
    let mut gpu = on_gpu(model).await;
    for (i, dictionary) in dictionaries.iter().enumerate() {
        assert_eq!(cpu.attach(dictionary, input, output).await.unwrap(), i);
        assert_eq!(gpu.attach(dictionary, input, output).await.unwrap(), i);
    }
    (cpu, gpu)
}

/// The same features, rank by rank, and activations within the tolerance.
fn same_features(ours: &[Vec<(u32, f32)>], theirs: &[Vec<(u32, f32)>], what: &str) {
    assert_eq!(ours.len(), theirs.len(), "{what}");
    for (position, (a, b)) in ours.iter().zip(theirs).enumerate() {
        let ids = |row: &[(u32, f32)]| row.iter().map(|f| f.0).collect::<Vec<_>>();
        assert_eq!(ids(a), ids(b), "{what}, position {position}");
        for (x, y) in a.iter().zip(b) {
            assert!((x.1 - y.1).abs() < TOLERANCE, "{what}: {x:?} vs {y:?}");
        }
    }
}

async_test! {
    async fn dictionary_features_match_the_cpu_encoder() {
        let (_, model) = fixtures().remove(0);
        let d = model.config().n_embd;
        let input = HookPoint::LnNormalized(1, Norm::Ln2);
        let tokens = ids(8, 10, model.config().vocab_size);
        let mut keep = Hooks::none().cache(input);
        model.forward_ids(&tokens, &mut keep).unwrap();
        let x = keep.take_cache()[&input].squeeze(0).unwrap();
        let dictionaries: Vec<Arc<Dictionary>> = dictionaries(d, 77).into_iter().map(Arc::new).collect();
        let (cpu, gpu) = with_dictionaries(&model, &dictionaries, (input, HookPoint::MlpOut(1))).await;
        for (index, dictionary) in dictionaries.iter().enumerate() {
            let architecture = dictionary.config.architecture;
            let acts = dictionary.encode(&x).unwrap();
            let expected = strongest_rows(&acts, 8);
            assert!(expected.iter().any(|row| !row.is_empty()), "{architecture:?}: nothing fires");
            let request = PassRequest {
                logits: LogitsRead::None,
                // 8 takes the barrier-free top-k, 70 the one for large k.
                features: vec![FeatureRead { dictionary: index, top: 8 }, FeatureRead { dictionary: index, top: 70 }],
                columns: vec![ColumnRead { dictionary: index, feature: 5 }],
                steering: Vec::new(),
            };
            let output = gpu.pass(&tokens, &request, &mut Hooks::none(), None).await.unwrap();
            let reference = cpu.pass(&tokens, &request, &mut Hooks::none(), None).await.unwrap();
            let columns_only = PassRequest {
                columns: vec![ColumnRead { dictionary: index, feature: 5 }],
                ..PassRequest::logits(LogitsRead::None)
            };
            let alone = gpu.pass(&tokens, &columns_only, &mut Hooks::none(), None).await.unwrap();
            assert_eq!(alone.columns[0].len(), tokens.len(), "a request for a column alone");
            let column: Vec<f32> = acts.narrow(1, 5, 1).unwrap().squeeze(1).unwrap().to_vec1().unwrap();
            assert!(max_diff(&output.columns[0], &column) < TOLERANCE, "feature 5's column");
            assert!(max_diff(&reference.columns[0], &column) < TOLERANCE, "the CPU engine's column");
            let many = strongest_rows(&acts, 70);
            let ids_of = |rows: &[Vec<(u32, f32)>]| rows.iter().map(|r| r.iter().map(|f| f.0).collect::<Vec<_>>()).collect::<Vec<_>>();
            assert_eq!(ids_of(&output.features[1]), ids_of(&many), "top 70");
            same_features(&output.features[0], &expected, &format!("{architecture:?} on the GPU"));
            same_features(&reference.features[0], &expected, &format!("{architecture:?} on the CPU"));
            same_features(&reference.features[1], &output.features[1], &format!("{architecture:?}, top 70"));
        }
    }
}

async_test! {
    async fn steering_matches_the_cpu_engine() {
        let (_, model) = fixtures().remove(0);
        let d = model.config().n_embd;
        let dictionary = Arc::new(dictionaries(d, 64).remove(0));
        // A transcoder (reads one hook, writes another) and a sparse autoencoder (reads
        // and writes the residual stream at one hook).
        for hooks in [
            (HookPoint::LnNormalized(0, Norm::Ln2), HookPoint::MlpOut(0)),
            (HookPoint::ResidPre(1), HookPoint::ResidPre(1)),
        ] {
            steer_at(&model, &dictionary, hooks).await;
        }
    }
}

/// Steering through `dictionary` attached at `hooks` gives the CPU engine's logits.
async fn steer_at(model: &Gpt2, dictionary: &Arc<Dictionary>, hooks: (HookPoint, HookPoint)) {
    let (cpu, gpu) = with_dictionaries(model, std::slice::from_ref(dictionary), hooks).await;
    let features = vec![
        (3_usize, FeatureSet::Clamp(4.0)),
        (10, FeatureSet::Scale(0.0)),
        (20, FeatureSet::Scale(3.0)),
    ];
    let tokens = ids(12, 7, model.config().vocab_size);
    let all = PassRequest::logits(LogitsRead::All);
    let plain = all_logits(
        &cpu.pass(&tokens, &all, &mut Hooks::none(), None)
            .await
            .unwrap(),
    );
    // Everywhere, and at two positions only.
    for positions in [None, Some(vec![2, 5])] {
        let request = PassRequest {
            steering: vec![Steering {
                dictionary: 0,
                features: features.clone(),
                positions: positions.clone(),
            }],
            ..all.clone()
        };
        let reference = all_logits(
            &cpu.pass(&tokens, &request, &mut Hooks::none(), None)
                .await
                .unwrap(),
        );
        assert!(
            max_diff(&reference, &plain) > 1e-2,
            "the steering changed nothing"
        );
        let ours = gpu
            .pass(&tokens, &request, &mut Hooks::none(), None)
            .await
            .unwrap();
        let diff = max_diff(&all_logits(&ours), &reference);
        assert!(
            diff < TOLERANCE,
            "steered logits at {hooks:?} ({positions:?}) differ by {diff}"
        );
        if let Some(positions) = &positions {
            // Causal: the positions before the first steered one are untouched.
            let vocab = model.config().vocab_size;
            let before = positions[0] * vocab;
            assert!(max_diff(&all_logits(&ours)[..before], &plain[..before]) < TOLERANCE);
        }
    }
}

async_test! {
    async fn a_pass_is_one_submit_and_one_readback_of_what_was_asked() {
        let (_, model) = fixtures().remove(0);
        let gpu = on_gpu(&model).await;
        let tokens = ids(1, 12, model.config().vocab_size);
        let before = gpu.counts();
        let output = gpu
            .pass(&tokens, &PassRequest::logits(LogitsRead::LastTop(3)), &mut Hooks::none().cache(HookPoint::ResidPost(0)), None)
            .await
            .unwrap();
        let after = gpu.counts();
        assert_eq!((after.submits - before.submits, after.readbacks - before.readbacks), (1, 1));
        let cpu = flat(&model.forward_ids(&tokens, &mut Hooks::none()).unwrap());
        let vocab = model.config().vocab_size;
        let last = &cpu[(tokens.len() - 1) * vocab..];
        let mut order: Vec<usize> = (0..vocab).collect();
        order.sort_by(|&a, &b| last[b].total_cmp(&last[a]).then(a.cmp(&b)));
        let Some(Logits::Top(top)) = output.logits else { panic!("no top logits") };
        assert_eq!(top.iter().map(|t| t.0 as usize).collect::<Vec<_>>(), order[..3].to_vec());
        // Nothing asked for, nothing read.
        let before = gpu.counts();
        gpu.pass(&tokens, &PassRequest::logits(LogitsRead::None), &mut Hooks::none(), None).await.unwrap();
        assert_eq!(gpu.counts().readbacks, before.readbacks);
    }
}

async_test! {
    async fn bad_requests_are_errors() {
        let (_, model) = fixtures().remove(0);
        let gpu = on_gpu(&model).await;
        let cpu = CpuEngine::new(model.clone());
        let config = model.config();
        let logits = PassRequest::logits(LogitsRead::Last);
        let too_long = ids(1, config.n_positions + 1, config.vocab_size);
        let computed = Intervention::everywhere(
            HookPoint::MlpOut(0),
            Edit::Computed(Arc::new(|x: &Tensor, _: EditContext<'_>| Ok(x.clone()))),
        );
        let unattached = PassRequest { features: vec![FeatureRead { dictionary: 0, top: 3 }], ..logits.clone() };
        let hooks_of_a_deeper_model = Hooks::none().cache(HookPoint::ResidPost(config.n_layer));
        let cases: Vec<(Vec<u32>, PassRequest, Hooks, &str)> = vec![
            (too_long, logits.clone(), Hooks::none(), "context"),
            (vec![config.vocab_size as u32], logits.clone(), Hooks::none(), "out of range"),
            (Vec::new(), logits.clone(), Hooks::none(), "no tokens"),
            (vec![1, 2], unattached, Hooks::none(), "not attached"),
            (vec![1], logits.clone(), hooks_of_a_deeper_model, "does not exist"),
        ];
        for (tokens, request, hooks, expected) in cases {
            // Both engines refuse it, with the same words.
            let error = gpu.pass(&tokens, &request, &mut hooks.clone(), None).await.unwrap_err();
            assert!(matches!(error, EngineError::Request(ref m) if m.contains(expected)), "{error}");
            let on_cpu = cpu.pass(&tokens, &request, &mut hooks.clone(), None).await.unwrap_err();
            assert_eq!(on_cpu, error);
        }
        let error = gpu.pass(&[1, 2], &logits, &mut Hooks::none().intervene(computed), None).await.unwrap_err();
        assert!(matches!(error, EngineError::Unsupported(_)), "{error}");
        // The engine still works after every refusal.
        let output = gpu.pass(&[1, 2], &logits, &mut Hooks::none(), None).await.unwrap();
        assert!(matches!(output.logits, Some(Logits::Rows { rows: 1, .. })));
    }
}
