//! What every GPU test shares: the device (one test body runs natively and in the browser
//! through `glassbox_engine::async_test`), models on it, and how results are compared.
#![allow(dead_code, reason = "each test file uses a different part")]

use std::collections::BTreeMap;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use glassbox_dict::{Architecture, DictConfig, Dictionary};
use glassbox_engine::{CpuEngine, Engine, Logits, LogitsRead, PassOutput, PassRequest};
use glassbox_gpu::check::seeded_values;
use glassbox_gpu::{AdapterPreference, GpuContext, GpuModel};
use glassbox_model::rng::SplitMix64;
use glassbox_model::{HookPoint, Hooks, Model};

/// f32 on both engines, summed in different orders: far below any real mistake.
pub(crate) const TOLERANCE: f32 = 1e-3;

/// The test device: lavapipe natively (or a hardware GPU with `GLASSBOX_ADAPTER=gpu`),
/// the browser's WebGPU adapter in wasm. No adapter fails the test: it never skips.
pub(crate) async fn context() -> GpuContext {
    match GpuContext::new(AdapterPreference::from_env()).await {
        Ok(ctx) => ctx,
        Err(e) => panic!("GPU tests need an adapter and found none: {e}"),
    }
}

/// `model` on the test device, its weights in f32.
#[allow(
    clippy::arc_with_non_send_sync,
    reason = "in the browser the GPU types are not Send; the tests run on one thread"
)]
pub(crate) async fn on_gpu(model: impl Into<Model>) -> GpuModel {
    GpuModel::new(Arc::new(context().await), model)
        .await
        .unwrap()
}

/// `len` token ids below `vocab`, from `seed`.
pub(crate) fn ids(seed: u64, len: usize, vocab: usize) -> Vec<u32> {
    let mut rng = SplitMix64::new(seed);
    (0..len)
        .map(|_| (rng.next_u64() % vocab as u64) as u32)
        .collect()
}

/// The largest difference; equal infinities (masked attention scores) count as equal.
pub(crate) fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            if x.is_infinite() && x.to_bits() == y.to_bits() {
                0.0
            } else {
                (x - y).abs()
            }
        })
        .fold(
            0.0,
            |worst, d| if d.is_nan() || d > worst { d } else { worst },
        )
}

/// A tensor's values in row-major order, as f32.
pub(crate) fn flat(t: &Tensor) -> Vec<f32> {
    t.to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// Every row of logits a pass read.
pub(crate) fn all_logits(output: &PassOutput) -> Vec<f32> {
    match &output.logits {
        Some(Logits::Rows { values, .. }) => values.clone(),
        other => panic!("expected rows of logits, got {other:?}"),
    }
}

/// One pass over `tokens` keeping every hook, on the CPU engine and on `gpu` (`model` on
/// the device): every hook of the family kept, each of the CPU's shape and within
/// [`TOLERANCE`] of it. Returns the CPU engine's hooks.
pub(crate) async fn every_hook_matches(
    name: &str,
    model: &Model,
    gpu: &GpuModel,
    tokens: &[u32],
) -> BTreeMap<HookPoint, Tensor> {
    let request = PassRequest::logits(LogitsRead::None);
    let mut cpu_hooks = Hooks::none().cache_everything();
    CpuEngine::new(model.clone())
        .pass(tokens, &request, &mut cpu_hooks, None)
        .await
        .unwrap();
    let mut gpu_hooks = Hooks::none().cache_everything();
    gpu.pass(tokens, &request, &mut gpu_hooks, None)
        .await
        .unwrap();
    let (cpu, ours) = (cpu_hooks.take_cache(), gpu_hooks.take_cache());
    assert_eq!(ours.len(), model.hook_points().len(), "{name}");
    for (hook, expected) in &cpu {
        let got = &ours[hook];
        assert_eq!(got.dims(), expected.dims(), "{name}: {hook}");
        let diff = max_diff(&flat(got), &flat(expected));
        assert!(diff < TOLERANCE, "{name}: {hook} differs by {diff}");
    }
    cpu
}

/// A random dictionary of each architecture on `d` inputs (the first a TopK keeping 5).
pub(crate) fn dictionaries(d: usize, d_sae: usize) -> Vec<Dictionary> {
    let tensor = |seed, shape: &[usize], scale: f64| {
        let count = shape.iter().product();
        (Tensor::from_vec(seeded_values(seed, count), shape, &Device::Cpu).unwrap() * scale)
            .unwrap()
    };
    [
        (Architecture::TopK, Some(5), false),
        (Architecture::Standard, None, true),
        (Architecture::JumpReLU, None, false),
        (Architecture::Transcoder, None, false),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (architecture, k, apply_b_dec_to_input))| {
        let seed = 100 * i as u64;
        Dictionary {
            config: DictConfig {
                architecture,
                d_in: d,
                d_sae,
                d_out: None,
                k,
                apply_b_dec_to_input,
                metadata: glassbox_dict::DictMetadata::default(),
            },
            w_enc: tensor(seed, &[d, d_sae], 0.5),
            b_enc: tensor(seed + 1, &[d_sae], 0.3),
            w_dec: tensor(seed + 2, &[d_sae, d], 0.5),
            b_dec: tensor(seed + 3, &[d], 0.2),
            threshold: (architecture == Architecture::JumpReLU)
                .then(|| tensor(seed + 4, &[d_sae], 0.5).abs().unwrap()),
        }
    })
    .collect()
}

pub(crate) const GQA_CONFIG: &str =
    include_str!("../../../model/tests/fixtures/llama_gqa/config.json");
pub(crate) const GQA_WEIGHTS: &[u8] =
    include_bytes!("../../../model/tests/fixtures/llama_gqa/model.safetensors");

/// The Llama golden fixtures: grouped queries (6 heads over 2, untied); tied with
/// `head_dim` apart from the width and Llama 3 rope scaling; one key/value head with
/// biases, in f16, in two shards.
pub(crate) fn llama_fixtures() -> Vec<(&'static str, Model)> {
    let tied = (
        include_str!("../../../model/tests/fixtures/llama_tied_llama3/config.json"),
        include_bytes!("../../../model/tests/fixtures/llama_tied_llama3/model.safetensors")
            .as_slice(),
    );
    let mqa_config = include_str!("../../../model/tests/fixtures/llama_mqa_bias_f16/config.json");
    let mqa_shards: [(&str, &[u8]); 2] = [
        (
            "model-00001-of-00002.safetensors",
            include_bytes!(
                "../../../model/tests/fixtures/llama_mqa_bias_f16/model-00001-of-00002.safetensors"
            ),
        ),
        (
            "model-00002-of-00002.safetensors",
            include_bytes!(
                "../../../model/tests/fixtures/llama_mqa_bias_f16/model-00002-of-00002.safetensors"
            ),
        ),
    ];
    vec![
        (
            "llama_gqa",
            Model::from_hf(GQA_CONFIG, &[("model.safetensors", GQA_WEIGHTS)]).unwrap(),
        ),
        (
            "llama_tied_llama3",
            Model::from_hf(tied.0, &[("model.safetensors", tied.1)]).unwrap(),
        ),
        (
            "llama_mqa_bias_f16",
            Model::from_hf(mqa_config, &mqa_shards).unwrap(),
        ),
    ]
}
