//! Attribution graphs on the GPU engine against the CPU engine's: the same nodes, edges
//! and constants for random transcoders on the golden fixtures, at several batch sizes,
//! one submit and one readback per batch. One body per test, run natively (lavapipe) and
//! in headless Chromium (WebGPU).
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

mod common;

use common::{ids, llama_fixtures};

use glassbox_engine::async_test;

use std::sync::Arc;

use glassbox_circuits::{
    AttributionOptions, FrozenWeights, Graph, Replacement, Setup, attribute, attribute_with,
};
use glassbox_dict::{Dictionary, Spread};
use glassbox_engine::attach_transcoders;
use glassbox_gpu::GpuModel;
use glassbox_model::{Gpt2, Model};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

fn tiny() -> Model {
    Gpt2::load(
        include_str!("../../model/tests/fixtures/tiny/config.json"),
        include_bytes!("../../model/tests/fixtures/tiny/model.safetensors"),
    )
    .unwrap()
    .into()
}

/// A random TopK transcoder for each block, `d → d_sae → d`; block 1's subtracts its
/// decoder bias from its input.
fn transcoders(model: &Model, d_sae: usize, k: usize) -> Vec<Arc<Dictionary>> {
    let d = model.dims().d_model;
    let spread = Spread {
        w_dec: 0.3,
        ..Spread::LARGE
    };
    (0..model.dims().n_layer)
        .map(|l| {
            let seed = 1000 + 10 * l as u64;
            let mut dictionary = Dictionary::seeded_topk(d, d_sae, k, seed, spread, None).unwrap();
            dictionary.config.apply_b_dec_to_input = l == 1;
            Arc::new(dictionary)
        })
        .collect()
}

#[allow(
    clippy::arc_with_non_send_sync,
    reason = "in the browser the GPU types are not Send; the tests run on one thread"
)]
async fn bare(model: &Model) -> GpuModel {
    GpuModel::new(Arc::new(common::context().await), model.clone())
        .await
        .unwrap()
}

async fn on_gpu(model: &Model, transcoders: &[Arc<Dictionary>]) -> GpuModel {
    let mut gpu = bare(model).await;
    attach_transcoders(&mut gpu, transcoders).await.unwrap();
    gpu
}

/// The largest difference between two graphs' edges and constants, relative to the
/// largest edge; the graphs must have the same nodes.
fn difference(cpu: &Graph, gpu: &Graph) -> f32 {
    assert_eq!(cpu.nodes, gpu.nodes);
    let largest = cpu
        .adjacency
        .iter()
        .map(|e| e.abs())
        .fold(0.0_f32, f32::max)
        .max(1e-6);
    let edges = cpu
        .adjacency
        .iter()
        .zip(&gpu.adjacency)
        .chain(cpu.constants.iter().zip(&gpu.constants))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0_f32, f32::max);
    edges / largest
}

async_test! {
    async fn gpu_graphs_equal_the_cpu_engines() {
        let model = tiny();
        let transcoders = transcoders(&model, 48, 6);
        let gpu = on_gpu(&model, &transcoders).await;
        for (len, batch) in [(1, 256), (9, 5), (24, 64)] {
            let tokens = ids(len as u64, len, model.dims().vocab_size);
            let replacement = Replacement::trace(&model, &transcoders, &tokens).unwrap();
            let options = AttributionOptions {
                batch,
                ..AttributionOptions::default()
            };
            let cpu = attribute(&model, &replacement, &options).unwrap();
            let setup = Setup::new(&FrozenWeights::of(&model).unwrap(), &replacement, options.logit_probability, options.max_logits)
                .unwrap();
            let carrier = gpu.attribution(&setup, &replacement).await.unwrap();
            let before = gpu.counts();
            let graph = attribute_with(&setup, &replacement, &carrier, &options)
                .await
                .unwrap();
            let after = gpu.counts();
            let worst = difference(&cpu, &graph);
            assert!(worst < 1e-4, "{len} tokens: edges differ by {worst} of the largest");
            assert!(cpu.adjacency.iter().any(|&e| e != 0.0));
            // One submit and one readback per batch: features by block, then the logits.
            let features = setup.feature_targets.len();
            let mut batches = setup.logit_targets.len().div_ceil(batch);
            for l in 0..model.dims().n_layer {
                let at_l = setup.feature_targets.iter().filter(|t| t.layer == Some(l)).count();
                batches += at_l.div_ceil(batch);
            }
            assert!(features > 0);
            assert_eq!(after.submits - before.submits, batches as u64);
            assert_eq!(after.readbacks - before.readbacks, batches as u64);
        }
    }
}

async_test! {
    async fn gpu_graphs_equal_the_cpu_engines_on_the_llama_fixtures() {
        // Grouped queries, a head width apart from the model's, one key/value head with
        // biases: the RMSNorm (no centring) and the shared values carried back the same.
        for (name, model) in llama_fixtures() {
            let transcoders = transcoders(&model, 40, 5);
            let gpu = on_gpu(&model, &transcoders).await;
            for (len, batch) in [(1, 64), (11, 7)] {
                let tokens = ids(3 + len as u64, len, model.dims().vocab_size);
                let replacement = Replacement::trace(&model, &transcoders, &tokens).unwrap();
                assert!(replacement.position_embeddings.is_none());
                let options = AttributionOptions {
                    batch,
                    ..AttributionOptions::default()
                };
                let cpu = attribute(&model, &replacement, &options).unwrap();
                let frozen = FrozenWeights::of(&model).unwrap();
                let setup = Setup::new(&frozen, &replacement, options.logit_probability, options.max_logits)
                    .unwrap();
                let carrier = gpu.attribution(&setup, &replacement).await.unwrap();
                let graph = attribute_with(&setup, &replacement, &carrier, &options)
                    .await
                    .unwrap();
                let worst = difference(&cpu, &graph);
                assert!(worst < 1e-4, "{name}, {len} tokens: edges differ by {worst} of the largest");
                assert!(cpu.adjacency.iter().any(|&e| e != 0.0), "{name}");
            }
        }
    }
}

async_test! {
    async fn capped_gpu_graphs_choose_the_cpu_engines_features() {
        let model = tiny();
        let transcoders = transcoders(&model, 48, 6);
        let gpu = on_gpu(&model, &transcoders).await;
        let tokens = ids(77, 16, model.dims().vocab_size);
        let replacement = Replacement::trace(&model, &transcoders, &tokens).unwrap();
        let options = AttributionOptions {
            batch: 16,
            update_interval: 1,
            max_feature_nodes: Some(60),
            ..AttributionOptions::default()
        };
        let cpu = attribute(&model, &replacement, &options).unwrap();
        let setup = Setup::new(&FrozenWeights::of(&model).unwrap(), &replacement, options.logit_probability, options.max_logits)
            .unwrap();
        let carrier = gpu.attribution(&setup, &replacement).await.unwrap();
        let graph = attribute_with(&setup, &replacement, &carrier, &options)
            .await
            .unwrap();
        assert_eq!(cpu.feature_nodes(), 60);
        assert!(cpu.active_features > 60);
        let worst = difference(&cpu, &graph);
        assert!(worst < 1e-4, "edges differ by {worst} of the largest");
    }
}

async_test! {
    async fn a_carrier_needs_every_blocks_transcoder_attached() {
        let model = tiny();
        let transcoders = transcoders(&model, 48, 6);
        // Transcoders attached to no block: the carrier names the block it misses.
        let bare = bare(&model).await;
        let tokens = ids(3, 5, model.dims().vocab_size);
        let replacement = Replacement::trace(&model, &transcoders, &tokens).unwrap();
        let setup = Setup::new(&FrozenWeights::of(&model).unwrap(), &replacement, 0.95, 10).unwrap();
        let error = bare
            .attribution(&setup, &replacement)
            .await
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(error.contains("block 0"), "{error}");
    }
}
