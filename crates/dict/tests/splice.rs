//! Splicing transcoders into a model: the replaced MLP output is the transcoder's
//! prediction from the same pass, an error term restores the model exactly, and splices
//! compose in block order.
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use glassbox_dict::{Architecture, DictConfig, DictMetadata, Dictionary, splice, transcoder_layer};
use glassbox_model::{Gpt2, HookPoint, Hooks, Norm};

fn model() -> Gpt2 {
    Gpt2::load(
        include_str!("../../model/tests/fixtures/tiny/config.json"),
        include_bytes!("../../model/tests/fixtures/tiny/model.safetensors"),
    )
    .unwrap()
}

/// A random ReLU transcoder for block `layer` of a width-`d` model.
fn transcoder(layer: usize, d: usize, seed: f64) -> Dictionary {
    let cpu = &Device::Cpu;
    let d_sae = 12;
    let values = |n: usize, scale: f64| -> Vec<f32> {
        (0..n)
            .map(|i| ((i as f64 * 0.7 + seed).sin() * scale) as f32)
            .collect()
    };
    Dictionary {
        config: DictConfig {
            architecture: Architecture::Transcoder,
            d_in: d,
            d_sae,
            d_out: None,
            k: None,
            apply_b_dec_to_input: false,
            metadata: DictMetadata {
                hook_name: format!("blocks.{layer}.ln2.hook_normalized"),
                hook_name_out: Some(format!("blocks.{layer}.hook_mlp_out")),
                model_name: None,
            },
        },
        w_enc: Tensor::from_vec(values(d * d_sae, 0.5), (d, d_sae), cpu).unwrap(),
        b_enc: Tensor::from_vec(values(d_sae, 0.1), d_sae, cpu).unwrap(),
        w_dec: Tensor::from_vec(values(d_sae * d, 0.3), (d_sae, d), cpu).unwrap(),
        b_dec: Tensor::zeros(d, DType::F32, cpu).unwrap(),
        threshold: None,
    }
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
}

const TOKENS: [u32; 6] = [3, 1, 4, 1, 5, 9];

#[test]
fn a_spliced_mlp_outputs_the_transcoders_prediction() {
    let model = model();
    let d = model.config().n_embd;
    let t = Arc::new(transcoder(0, d, 1.0));
    let mut hooks = splice(Hooks::none(), t.clone(), None)
        .unwrap()
        .cache(HookPoint::MlpOut(0));
    model.forward_ids(&TOKENS, &mut hooks).unwrap();
    let cache = hooks.take_cache();
    let input = cache[&HookPoint::LnNormalized(0, Norm::Ln2)]
        .squeeze(0)
        .unwrap();
    let expected = t.decode(&t.encode(&input).unwrap()).unwrap();
    let actual = cache[&HookPoint::MlpOut(0)].squeeze(0).unwrap();
    assert!(max_diff(&expected, &actual) < 1e-6);
}

#[test]
fn error_terms_give_back_the_model_and_splices_compose() {
    let model = model();
    let d = model.config().n_embd;
    let n = model.config().n_layer;
    let transcoders: Vec<Arc<Dictionary>> = (0..n)
        .map(|l| Arc::new(transcoder(l, d, l as f64 + 0.5)))
        .collect();
    let mut clean = Hooks::none();
    for l in 0..n {
        clean = clean
            .cache(HookPoint::LnNormalized(l, Norm::Ln2))
            .cache(HookPoint::MlpOut(l));
    }
    let clean_logits = model.forward_ids(&TOKENS, &mut clean).unwrap();
    let cache = clean.take_cache();
    let mut with_errors = Hooks::none();
    let mut without = Hooks::none();
    for (l, t) in transcoders.iter().enumerate() {
        let input = cache[&HookPoint::LnNormalized(l, Norm::Ln2)]
            .squeeze(0)
            .unwrap();
        let predicted = t
            .decode(&t.encode(&input).unwrap())
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let error = (&cache[&HookPoint::MlpOut(l)] - predicted).unwrap();
        with_errors = splice(with_errors, t.clone(), Some(error)).unwrap();
        without = splice(without, t.clone(), None).unwrap();
    }
    let restored = model.forward_ids(&TOKENS, &mut with_errors).unwrap();
    assert!(max_diff(&clean_logits, &restored) < 1e-4);
    // Without error terms the last block's transcoder reads an input changed by the
    // earlier splices, not the clean one.
    without = without.cache(HookPoint::MlpOut(n - 1));
    let spliced = model.forward_ids(&TOKENS, &mut without).unwrap();
    assert!(max_diff(&clean_logits, &spliced) > 1e-3);
    let kept = without.take_cache();
    let input = kept[&HookPoint::LnNormalized(n - 1, Norm::Ln2)]
        .squeeze(0)
        .unwrap();
    let clean_input = cache[&HookPoint::LnNormalized(n - 1, Norm::Ln2)]
        .squeeze(0)
        .unwrap();
    assert!(max_diff(&input, &clean_input) > 1e-4);
    let t = &transcoders[n - 1];
    let expected = t.decode(&t.encode(&input).unwrap()).unwrap();
    let actual = kept[&HookPoint::MlpOut(n - 1)].squeeze(0).unwrap();
    assert!(max_diff(&expected, &actual) < 1e-6);
}

#[test]
fn only_mlp_transcoders_splice() {
    let mut sae = transcoder(0, 4, 0.0);
    sae.config.metadata.hook_name = "blocks.0.hook_resid_pre".to_owned();
    let error = transcoder_layer(&sae).unwrap_err().to_string();
    assert!(error.contains("not an MLP transcoder"), "{error}");
    let mut mismatched = transcoder(0, 4, 0.0);
    mismatched.config.metadata.hook_name_out = Some("blocks.1.hook_mlp_out".to_owned());
    assert!(splice(Hooks::none(), Arc::new(mismatched), None).is_err());
    let mut bad_name = transcoder(0, 4, 0.0);
    bad_name.config.metadata.hook_name = "blocks.0.nothing".to_owned();
    assert!(transcoder_layer(&bad_name).is_err());
}
