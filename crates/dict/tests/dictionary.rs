//! Dictionaries against activations worked out by hand, and bad files.
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use glassbox_dict::Dictionary;

/// A 2-in, 3-feature dictionary: `W_enc = [[1, 0, 1], [0, 1, 1]]`, `b_enc = [0, -1, -0.5]`,
/// `W_dec = [[1, 0], [0, 1], [1, 1]]`, `b_dec = [0.5, -0.5]`.
fn file(extra: &[(&str, Tensor)]) -> Vec<u8> {
    let cpu = &Device::Cpu;
    let mut tensors: HashMap<String, Tensor> = HashMap::from([
        (
            "W_enc".into(),
            Tensor::new(&[[1.0_f32, 0.0, 1.0], [0.0, 1.0, 1.0]], cpu).unwrap(),
        ),
        (
            "b_enc".into(),
            Tensor::new(&[0.0_f32, -1.0, -0.5], cpu).unwrap(),
        ),
        (
            "W_dec".into(),
            Tensor::new(&[[1.0_f32, 0.0], [0.0, 1.0], [1.0, 1.0]], cpu).unwrap(),
        ),
        ("b_dec".into(), Tensor::new(&[0.5_f32, -0.5], cpu).unwrap()),
    ]);
    for (name, t) in extra {
        tensors.insert((*name).to_owned(), t.clone());
    }
    safetensors::serialize(tensors.iter().map(|(name, t)| (name.as_str(), t)), None).unwrap()
}

fn config(architecture: &str, extra: &str) -> String {
    format!(
        r#"{{"architecture": "{architecture}", "d_in": 2, "d_sae": 3, "apply_b_dec_to_input": false{extra},
        "metadata": {{"hook_name": "blocks.0.ln2.hook_normalized", "hook_name_out": "blocks.0.hook_mlp_out"}}, "lr": 0.001}}"#
    )
}

fn input() -> Tensor {
    Tensor::new(&[[2.0_f32, 3.0], [0.2, 0.1]], &Device::Cpu).unwrap()
}

#[test]
fn standard_relu_encodes_and_decodes_by_hand() {
    let dict = Dictionary::load(&config("standard", ""), &file(&[])).unwrap();
    // pre = [2, 3-1, 5-0.5] = [2, 2, 4.5] and [0.2, -0.9, -0.2] → ReLU
    let acts: Vec<Vec<f32>> = dict.encode(&input()).unwrap().to_vec2().unwrap();
    assert_eq!(acts, vec![vec![2.0, 2.0, 4.5], vec![0.2, 0.0, 0.0]]);
    // decode row 0: [2 + 4.5, 2 + 4.5] + b_dec = [7, 6]
    let out: Vec<Vec<f32>> = dict
        .decode(&dict.encode(&input()).unwrap())
        .unwrap()
        .to_vec2()
        .unwrap();
    assert_eq!(out[0], vec![7.0, 6.0]);
    assert_eq!(
        dict.config.metadata.hook_name_out.as_deref(),
        Some("blocks.0.hook_mlp_out")
    );
}

#[test]
fn topk_keeps_the_k_largest() {
    let dict = Dictionary::load(&config("topk", r#", "k": 1"#), &file(&[])).unwrap();
    let acts: Vec<Vec<f32>> = dict.encode(&input()).unwrap().to_vec2().unwrap();
    assert_eq!(acts, vec![vec![0.0, 0.0, 4.5], vec![0.2, 0.0, 0.0]]);
    assert!(Dictionary::load(&config("topk", r#", "k": 4"#), &file(&[])).is_err());
}

#[test]
fn jumprelu_keeps_what_passes_each_threshold() {
    let threshold = Tensor::new(&[2.5_f32, 1.0, 0.0], &Device::Cpu).unwrap();
    let dict =
        Dictionary::load(&config("jumprelu", ""), &file(&[("threshold", threshold)])).unwrap();
    let acts: Vec<Vec<f32>> = dict.encode(&input()).unwrap().to_vec2().unwrap();
    assert_eq!(acts, vec![vec![0.0, 2.0, 4.5], vec![0.0, 0.0, 0.0]]);
}

#[test]
fn b_dec_is_subtracted_when_asked() {
    let json = config("standard", "").replace(
        r#""apply_b_dec_to_input": false"#,
        r#""apply_b_dec_to_input": true"#,
    );
    let dict = Dictionary::load(&json, &file(&[])).unwrap();
    // x − b_dec = [1.5, 3.5] → pre = [1.5, 2.5, 4.5]
    let acts: Vec<Vec<f32>> = dict.encode(&input()).unwrap().to_vec2().unwrap();
    assert_eq!(acts[0], vec![1.5, 2.5, 4.5]);
}

#[test]
fn bad_files_and_inputs_are_named() {
    let error = Dictionary::load(
        &config("standard", "").replace("\"d_sae\": 3", "\"d_sae\": 4"),
        &file(&[]),
    )
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("`W_enc` has shape [2, 3], but the config implies [2, 4]"),
        "{error}"
    );
    let error = Dictionary::load(&config("jumprelu", ""), &file(&[])).unwrap_err();
    assert_eq!(
        error.to_string(),
        "bad dictionary weights: missing tensor `threshold`"
    );
    let bytes = file(&[]);
    assert!(Dictionary::load(&config("standard", ""), &bytes[..bytes.len() / 2]).is_err());
    assert!(
        Dictionary::load("{}", &bytes)
            .unwrap_err()
            .to_string()
            .starts_with("bad dictionary config")
    );
    let dict = Dictionary::load(&config("standard", ""), &bytes).unwrap();
    let wide = Tensor::zeros((1, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert_eq!(
        dict.encode(&wide).unwrap_err().to_string(),
        "bad input: inputs are 3 wide, the dictionary reads 2"
    );
}

#[test]
fn a_folded_transcoder_reads_before_the_gain_and_bias_and_computes_the_same() {
    let cpu = &Device::Cpu;
    let gain = Tensor::new(&[2.0_f32, -0.5], cpu).unwrap();
    let bias = Tensor::new(&[0.25_f32, 1.0], cpu).unwrap();
    let normalized = Tensor::new(&[[0.3_f32, -1.2], [1.5, 0.7], [-0.4, 0.9]], cpu).unwrap();
    let after = normalized
        .broadcast_mul(&gain)
        .unwrap()
        .broadcast_add(&bias)
        .unwrap();
    for subtract in ["false", "true"] {
        let cfg = config("transcoder", "").replace(
            "\"apply_b_dec_to_input\": false",
            &format!("\"apply_b_dec_to_input\": {subtract}"),
        );
        let dictionary = Dictionary::load(&cfg, &file(&[])).unwrap();
        let folded = dictionary.fold_input_affine(&gain, &bias).unwrap();
        let expected: Vec<Vec<f32>> = dictionary.encode(&after).unwrap().to_vec2().unwrap();
        let found: Vec<Vec<f32>> = folded.encode(&normalized).unwrap().to_vec2().unwrap();
        assert!(expected.iter().flatten().any(|&v| v > 0.0), "nothing fires");
        for (e, f) in expected.iter().flatten().zip(found.iter().flatten()) {
            assert!(
                (e - f).abs() < 1e-6,
                "apply_b_dec_to_input {subtract}: {e} vs {f}"
            );
        }
        assert_eq!(
            folded.w_dec.to_vec2::<f32>().unwrap(),
            dictionary.w_dec.to_vec2::<f32>().unwrap()
        );
    }
    // An autoencoder reconstructs where it reads: its decoder would have to change too.
    let sae = config("standard", "").replace(", \"hook_name_out\": \"blocks.0.hook_mlp_out\"", "");
    let sae = Dictionary::load(&sae, &file(&[])).unwrap();
    assert!(sae.fold_input_affine(&gain, &bias).is_err());
}
