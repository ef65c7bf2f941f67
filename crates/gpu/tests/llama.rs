//! The GPU engine on the Llama family against the CPU engine (itself checked against
//! Hugging Face transformers on these fixtures): logits, every hook (`hook_rot_q`/`k`,
//! `mlp.hook_pre_linear`, `ln*.hook_normalized` as `x / scale` …), interventions,
//! frozen attention and norms, generation through a growing KV cache, dictionary
//! features and steering. One body per test, run natively (lavapipe) and in headless
//! Chromium (WebGPU).
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

mod common;

use common::{GQA_CONFIG, GQA_WEIGHTS, llama_fixtures as fixtures};

use common::{TOLERANCE, all_logits, dictionaries, every_hook_matches, ids, max_diff, on_gpu};

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use glassbox_engine::{
    Attach, CpuEngine, Engine, FeatureRead, FeatureSet, LogitsRead, PassRequest, Steering,
    async_test, generate, transcoder_hooks,
};
use glassbox_gpu::check::seeded_values;
use glassbox_gpu::{GpuModel, QuantizedWeights};
use glassbox_model::gguf::TensorType;
use glassbox_model::llama::{LlamaBlockWeights, LlamaWeights};
use glassbox_model::sampling::Sampling;
use glassbox_model::{
    Activation, Edit, HookPoint, Hooks, Intervention, Llama, LlamaConfig, Model, Norm, Rope,
    RopeScaling,
};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// The grouped-query fixture with its config changed (`"key": value` replaced).
fn gqa_with(from: &str, to: &str) -> Model {
    assert!(GQA_CONFIG.contains(from), "{from}");
    Model::from_hf(
        &GQA_CONFIG.replace(from, to),
        &[("model.safetensors", GQA_WEIGHTS)],
    )
    .unwrap()
}

async fn logits_of(engine: &impl Engine, tokens: &[u32], hooks: &mut Hooks) -> Vec<f32> {
    let request = PassRequest::logits(LogitsRead::All);
    all_logits(&engine.pass(tokens, &request, hooks, None).await.unwrap())
}

async_test! {
    async fn logits_match_the_cpu_engine_on_the_llama_fixtures() {
        // A partial rotation (half of each head) too: transformers' Llama has none, the
        // CPU engine's rotation is the reference.
        let mut models = fixtures();
        models.push(("partial rotary", gqa_with("\"rope_theta\": 10000.0", "\"rope_theta\": 10000.0, \"partial_rotary_factor\": 0.5")));
        for (name, model) in models {
            let gpu = on_gpu(model.clone()).await;
            let dims = model.dims();
            let cpu = CpuEngine::new(model);
            for len in [1, 7, dims.n_positions] {
                let tokens = ids(len as u64, len, dims.vocab_size);
                let cpu_logits = logits_of(&cpu, &tokens, &mut Hooks::none()).await;
                let diff = max_diff(&logits_of(&gpu, &tokens, &mut Hooks::none()).await, &cpu_logits);
                assert!(diff < TOLERANCE, "{name}, {len} tokens: logits differ by {diff}");
            }
        }
    }
}

async_test! {
    async fn every_llama_hook_matches_the_cpu_engine() {
        for (name, model) in fixtures() {
            let gpu = on_gpu(model.clone()).await;
            let tokens = ids(3, 9, model.dims().vocab_size);
            let cpu = every_hook_matches(name, &model, &gpu, &tokens).await;
            assert!(cpu.contains_key(&HookPoint::RotK(1)), "{name}: the CPU engine kept no hook_rot_k");
        }
    }
}

/// Interventions at the Llama's own hooks and at hooks of every shape.
fn interventions(model: &Model, len: usize) -> Vec<Intervention> {
    let dims = model.dims();
    let d = dims.d_model;
    let direction = Tensor::from_vec(seeded_values(5, d), d, &Device::Cpu).unwrap();
    let uniform_pattern =
        (Tensor::ones((1, dims.n_head, len, len), DType::F32, &Device::Cpu).unwrap() / len as f64)
            .unwrap();
    vec![
        Intervention::at(
            HookPoint::ResidPre(1),
            vec![0, 2],
            Edit::Add((&direction * 3.0).unwrap()),
        ),
        Intervention::everywhere(HookPoint::RotQ(0), Edit::Scale(2.0)),
        Intervention::at(HookPoint::RotK(1), vec![1, 3], Edit::Scale(-1.5)),
        Intervention::at(HookPoint::Q(1), vec![len - 1], Edit::Zero),
        Intervention::at(HookPoint::V(0), vec![0], Edit::Scale(-2.0)),
        Intervention::everywhere(HookPoint::MlpPreLinear(0), Edit::Scale(0.5)),
        Intervention::at(HookPoint::MlpPre(1), vec![0], Edit::Zero),
        Intervention::everywhere(HookPoint::MlpPost(0), Edit::Scale(-1.0)),
        Intervention::everywhere(HookPoint::LnScale(1, Norm::Ln2), Edit::Scale(2.0)),
        Intervention::at(
            HookPoint::LnNormalized(0, Norm::Ln1),
            vec![2],
            Edit::Add(direction),
        ),
        Intervention::at(
            HookPoint::Pattern(0),
            vec![len - 1],
            Edit::Replace(uniform_pattern),
        ),
        Intervention::at(HookPoint::AttnScores(1), vec![1], Edit::Scale(0.25)),
    ]
}

async_test! {
    async fn llama_interventions_change_the_logits_as_on_the_cpu() {
        for (name, model) in fixtures() {
            let gpu = on_gpu(model.clone()).await;
            let len = 6;
            let tokens = ids(11, len, model.dims().vocab_size);
            let cpu = CpuEngine::new(model.clone());
            let plain = logits_of(&cpu, &tokens, &mut Hooks::none()).await;
            for intervention in interventions(&model, len) {
                let hook = intervention.hook;
                let expected = logits_of(&cpu, &tokens, &mut Hooks::none().intervene(intervention.clone())).await;
                // Each intervention must matter, or the comparison proves nothing.
                assert!(max_diff(&expected, &plain) > 1e-3, "{name}: {hook} changed nothing");
                let ours = logits_of(&gpu, &tokens, &mut Hooks::none().intervene(intervention).cache(hook)).await;
                let diff = max_diff(&ours, &expected);
                assert!(diff < TOLERANCE, "{name}: with an edit at {hook} logits differ by {diff}");
            }
        }
    }
}

async_test! {
    async fn frozen_llama_attention_and_norms_reproduce_the_pass() {
        let (_, model) = fixtures().remove(0);
        let gpu = on_gpu(model.clone()).await;
        let vocab = model.dims().vocab_size;
        let tokens = ids(2, 8, vocab);
        let mut keep = Hooks::none().cache_everything();
        model.forward_ids(&tokens, &mut keep).unwrap();
        let cache = keep.take_cache();
        let other = ids(9, 8, vocab);
        let cpu = CpuEngine::new(model);
        let mut cpu_hooks = Hooks::none().freeze_attention_and_norms(&cache).unwrap();
        let expected = logits_of(&cpu, &other, &mut cpu_hooks).await;
        assert!(max_diff(&expected, &logits_of(&cpu, &other, &mut Hooks::none()).await) > 1e-3);
        let mut gpu_hooks = Hooks::none().freeze_attention_and_norms(&cache).unwrap();
        let diff = max_diff(&logits_of(&gpu, &other, &mut gpu_hooks).await, &expected);
        assert!(diff < TOLERANCE, "frozen logits differ by {diff}");
    }
}

async_test! {
    async fn llama_generation_matches_the_cpu_engine_with_one_submit_per_token() {
        for (name, model) in fixtures() {
            let gpu = on_gpu(model.clone()).await;
            let prompt = ids(4, 5, model.dims().vocab_size);
            let steps = model.dims().n_positions - prompt.len();
            let cpu = CpuEngine::new(model);
            for sampling in [
                Sampling::greedy(steps),
                Sampling { temperature: 0.8, top_k: Some(20), seed: 3, ..Sampling::greedy(steps) },
            ] {
                let expected = generate(&cpu, &prompt, &sampling, &[], &mut Hooks::none()).await.unwrap();
                let before = gpu.counts();
                let ours = generate(&gpu, &prompt, &sampling, &[], &mut Hooks::none()).await.unwrap();
                assert_eq!(ours, expected, "{name}: {sampling:?}");
                let submits = gpu.counts().submits - before.submits;
                assert_eq!(submits, ours.tokens.len() as u64, "{name}: one submit per token");
            }
        }
    }
}

async_test! {
    async fn the_kv_cache_grows_past_its_first_size_and_keeps_what_it_held() {
        // A context longer than the cache's first 1024 positions: generation crosses it.
        let model = gqa_with("\"max_position_embeddings\": 32", "\"max_position_embeddings\": 1040");
        let gpu = on_gpu(model.clone()).await;
        let prompt = ids(6, 1020, model.dims().vocab_size);
        let sampling = Sampling::greedy(12);
        let cpu = CpuEngine::new(model);
        let expected = generate(&cpu, &prompt, &sampling, &[], &mut Hooks::none()).await.unwrap();
        let ours = generate(&gpu, &prompt, &sampling, &[], &mut Hooks::none()).await.unwrap();
        assert_eq!(ours, expected);
    }
}

async_test! {
    async fn a_transcoder_reads_and_steers_a_llama_as_on_the_cpu() {
        let (_, model) = fixtures().remove(0);
        let dims = model.dims();
        let dictionary = Arc::new(dictionaries(dims.d_model, 40).remove(0));
        let (input, output) = transcoder_hooks(1);
        let mut cpu = CpuEngine::new(model.clone());
        let mut gpu = on_gpu(model.clone()).await;
        cpu.attach(&dictionary, input, output).await.unwrap();
        gpu.attach(&dictionary, input, output).await.unwrap();
        let tokens = ids(8, 10, dims.vocab_size);
        let read = PassRequest {
            features: vec![FeatureRead { dictionary: 0, top: 5 }],
            ..PassRequest::logits(LogitsRead::All)
        };
        let expected = cpu.pass(&tokens, &read, &mut Hooks::none(), None).await.unwrap();
        let ours = gpu.pass(&tokens, &read, &mut Hooks::none(), None).await.unwrap();
        assert!(expected.features[0].iter().all(|row| row.len() == 5), "every position fires its 5");
        for (position, (a, b)) in ours.features[0].iter().zip(&expected.features[0]).enumerate() {
            assert_eq!(a.iter().map(|f| f.0).collect::<Vec<_>>(), b.iter().map(|f| f.0).collect::<Vec<_>>(), "position {position}");
            for (x, y) in a.iter().zip(b) {
                assert!((x.1 - y.1).abs() < TOLERANCE, "{x:?} vs {y:?}");
            }
        }
        let feature = expected.features[0][3][0].0 as usize;
        for positions in [None, Some(vec![3, 7])] {
            let steer = PassRequest {
                steering: vec![Steering {
                    dictionary: 0,
                    features: vec![(feature, FeatureSet::Clamp(20.0)), (1, FeatureSet::Scale(3.0))],
                    positions: positions.clone(),
                }],
                ..PassRequest::logits(LogitsRead::All)
            };
            let reference = all_logits(&cpu.pass(&tokens, &steer, &mut Hooks::none(), None).await.unwrap());
            assert!(max_diff(&reference, &all_logits(&expected)) > 1e-2, "the steering changed nothing");
            let steered = all_logits(&gpu.pass(&tokens, &steer, &mut Hooks::none(), None).await.unwrap());
            let diff = max_diff(&steered, &reference);
            assert!(diff < TOLERANCE, "steered logits ({positions:?}) differ by {diff}");
        }
    }
}

/// A random Llama whose linear layers are stored quantized (`Q8_0`, `Q4_0`, `Q4_1` in
/// turn), their f32 weights the blocks' dequantization: the CPU engine computes on those.
fn quantized_llama() -> Model {
    let config = LlamaConfig {
        n_layer: 2,
        n_head: 4,
        n_kv_head: 2,
        d_head: 16,
        d_model: 64,
        d_mlp: 96,
        n_positions: 24,
        vocab_size: 50,
        rms_norm_eps: 1e-5,
        activation: Activation::Silu,
        rope: Rope {
            theta: 10_000.0,
            rotary_dim: 16,
            scaling: RopeScaling::None,
        },
        tie_word_embeddings: false,
        attention_bias: true,
        mlp_bias: false,
    };
    let mut weights = LlamaWeights::init(&config, 5).unwrap();
    let kinds = [TensorType::Q8_0, TensorType::Q4_0, TensorType::Q4_1];
    for (i, layer) in weights
        .blocks
        .iter_mut()
        .flat_map(LlamaBlockWeights::linears_mut)
        .enumerate()
    {
        // Weights large enough that every format's steps matter.
        layer.weight = (&layer.weight * 10.0).unwrap();
        layer.quantize(kinds[i % 3]).unwrap();
    }
    Model::from(Llama::new(config, weights).unwrap())
}

#[allow(
    clippy::arc_with_non_send_sync,
    reason = "in the browser the GPU types are not Send; the tests run on one thread"
)]
async fn quantized_on_gpu(model: &Model) -> GpuModel {
    GpuModel::with_weights(
        Arc::new(common::context().await),
        model.clone(),
        QuantizedWeights::AsStored,
    )
    .await
    .unwrap()
}

async_test! {
    async fn weights_kept_in_their_blocks_compute_what_the_cpu_computes_on_their_dequantization() {
        let model = quantized_llama();
        let stored = quantized_on_gpu(&model).await;
        let plain = on_gpu(model.clone()).await;
        // The blocks take far less memory than their f32 dequantization.
        assert!(stored.weight_bytes() * 2 < plain.weight_bytes(), "{} vs {}", stored.weight_bytes(), plain.weight_bytes());
        let cpu = CpuEngine::new(model.clone());
        let vocab = model.dims().vocab_size;
        // Prefill through the tiled kernel, a few rows through the matrix-vector one.
        for len in [3, 17] {
            let tokens = ids(len as u64, len, vocab);
            let expected = logits_of(&cpu, &tokens, &mut Hooks::none()).await;
            let diff = max_diff(&logits_of(&stored, &tokens, &mut Hooks::none()).await, &expected);
            assert!(diff < TOLERANCE, "{len} tokens: logits differ by {diff}");
        }
        let prompt = ids(2, 6, vocab);
        let sampling = Sampling::greedy(12);
        let expected = generate(&cpu, &prompt, &sampling, &[], &mut Hooks::none()).await.unwrap();
        let ours = generate(&stored, &prompt, &sampling, &[], &mut Hooks::none()).await.unwrap();
        assert_eq!(ours, expected);
    }
}
