//! SAELens dictionaries added to a loaded model (as a person opens them from their disk):
//! each attaches where its `cfg.json` says, on both engines; their features, which have
//! no precomputed data, are measured live over a sample of the corpus, and what the live
//! view reports is what the engine's own encoder computes on the same text.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

use std::path::Path;
use std::sync::Arc;

use candle_core::{Device, Tensor};
use glassbox_dict::Dictionary;
use glassbox_lab::{AdapterPreference, FeatureSteer, Lab, SAMPLE_WINDOW, SteerMode, SteerRequest};
use glassbox_pack::dir;
use pollster::block_on;

fn pack_lab() -> Lab {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../www/packs/brown");
    Lab::from_pack(dir::load(&root).unwrap()).unwrap()
}

/// A dictionary with fixed pseudo-random weights and this `cfg.json`.
fn dictionary(config: &str, seed: f32) -> Dictionary {
    let config: glassbox_dict::DictConfig = serde_json::from_str(config).unwrap();
    let (d_in, d_sae, d_out) = (config.d_in, config.d_sae, config.d_out());
    let tensor = |shape: &[usize], salt: f32, scale: f32| -> Tensor {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n)
            .map(|i| ((i as f32 * 12.9898 + seed + salt).sin() * 43_758.547).fract() * scale)
            .collect();
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
    };
    Dictionary {
        w_enc: tensor(&[d_in, d_sae], 0.0, 0.4),
        b_enc: tensor(&[d_sae], 1.0, 0.1),
        w_dec: tensor(&[d_sae, d_out], 2.0, 0.3),
        b_dec: tensor(&[d_out], 3.0, 0.05),
        threshold: Some(tensor(&[d_sae], 4.0, 0.5).abs().unwrap()),
        config,
    }
}

fn config(architecture: &str, hook: &str, d_in: usize, extra: &str) -> String {
    format!(
        r#"{{"architecture":"{architecture}","d_in":{d_in},"d_sae":48,"apply_b_dec_to_input":true{extra},
            "metadata":{{"hook_name":"{hook}","model_name":"brown"}}}}"#
    )
}

/// The pack's lab with a TopK SAE on block 2's residual stream and a JumpReLU SAE on
/// block 1's MLP output.
fn extended(lab: &Lab) -> Lab {
    let d = lab.model().dims().d_model;
    lab.with_dictionaries(vec![
        (
            "topk/cfg.json".to_owned(),
            Arc::new(dictionary(
                &config("topk", "blocks.2.hook_resid_post", d, r#","k":5"#),
                0.5,
            )),
        ),
        (
            "jumprelu/cfg.json".to_owned(),
            Arc::new(dictionary(
                &config("jumprelu", "blocks.1.hook_mlp_out", d, ""),
                1.5,
            )),
        ),
    ])
    .unwrap()
}

/// The sample's token ids, cut as the lab cuts them.
fn windows(lab: &Lab, texts: &[String]) -> Vec<Vec<u32>> {
    texts
        .iter()
        .map(|t| {
            let mut ids = lab.tokenizer.encode_ids(t).unwrap();
            ids.truncate(SAMPLE_WINDOW);
            ids
        })
        .collect()
}

/// Checks every live number of `layer`'s first features against the engine's encoder
/// run on each sample window.
fn live_matches_the_engine(lab: &Lab, layer: usize, texts: &[String]) {
    let windows = windows(lab, texts);
    for feature in 0..6 {
        let live = lab.live_feature(layer, feature).unwrap();
        let columns: Vec<Vec<f32>> = windows
            .iter()
            .map(|ids| block_on(lab.feature_activations(ids, layer, feature)).unwrap())
            .collect();
        let all: Vec<f32> = columns.iter().flatten().copied().collect();
        assert_eq!(live.positions, all.len());
        assert_eq!(live.texts, windows.len());
        let active = all.iter().filter(|&&a| a > 0.0).count();
        // A TopK tie at the k-th place may fall either way on another engine.
        assert!(
            live.active.abs_diff(active) <= 1,
            "{layer}/{feature}: {} vs {active}",
            live.active
        );
        let max = all.iter().copied().fold(0.0_f32, f32::max);
        assert!(
            (live.max - max).abs() < 1e-3,
            "{layer}/{feature}: max {} vs {max}",
            live.max
        );
        assert_eq!(live.histogram.iter().sum::<u32>() as usize, live.active);
        assert!(!live.top.is_empty(), "{layer}/{feature} never fires");
        for example in &live.top {
            let column = &columns[example.window];
            let strongest = column.iter().copied().fold(0.0_f32, f32::max);
            assert!((example.activations[example.at] - strongest).abs() < 1e-3);
        }
        assert!(
            live.top
                .windows(2)
                .all(|w| w[0].activations[w[0].at] >= w[1].activations[w[1].at])
        );
        assert_eq!(live.promotes.len(), 10);
        assert!(live.promotes[0].1 >= live.suppresses[0].1);
    }
}

#[test]
fn added_dictionaries_are_measured_live_as_their_encoders_compute() {
    let lab = extended(&pack_lab());
    assert_eq!(lab.dictionaries.len(), 6);
    assert_eq!(
        lab.dictionary_names()[4..],
        ["blocks.2.hook_resid_post", "blocks.1.hook_mlp_out"]
    );
    assert!(lab.has_feature_data(3) && !lab.has_feature_data(4));
    let texts = lab.corpus_texts(10, 40);
    assert_eq!(texts.len(), 10);
    let heard = std::cell::RefCell::new(Vec::new());
    block_on(lab.measure_sample(&texts, &|done, total| {
        heard.borrow_mut().push((done, total));
    }))
    .unwrap();
    assert_eq!(heard.borrow().first(), Some(&(0, 10)));
    assert_eq!(heard.borrow().last(), Some(&(10, 10)));
    assert!(lab.is_measured(4) && lab.is_measured(5) && !lab.is_measured(0));
    for layer in [4, 5] {
        live_matches_the_engine(&lab, layer, &texts);
    }
    let error = lab.live_feature(9, 1).unwrap_err().to_string();
    assert!(
        error.contains("there is no dictionary 9: 6 are attached"),
        "{error}"
    );
    let error = lab.live_feature(0, 1).unwrap_err().to_string();
    assert!(error.contains("precomputed"), "{error}");
    // The prompt view reads the added dictionaries too, and the pack's circuits still run.
    let analysis = block_on(lab.analyze("The jury said that", 5, 3)).unwrap();
    assert!(analysis.features.iter().all(|per| per.len() == 6));
    lab.transcoders().unwrap();
}

#[test]
fn steering_through_an_added_sae_and_the_gpu_engine_agree() {
    let lab = extended(&pack_lab());
    let texts = lab.corpus_texts(6, 40);
    block_on(lab.measure_sample(&texts, &|_, _| {})).unwrap();
    let cpu = lab.live_feature(4, 2).unwrap();
    let request = SteerRequest {
        prompt: "The jury said that".to_owned(),
        features: vec![FeatureSteer {
            layer: 4,
            feature: 2,
            mode: SteerMode::Clamp(8.0 * cpu.max),
        }],
        max_tokens: 8,
        temperature: 0.0,
        seed: 1,
    };
    let steered = block_on(lab.steer(&request)).unwrap();
    assert_ne!(
        steered.steered, steered.baseline,
        "clamping the feature changed nothing"
    );
    // On the GPU engine (lavapipe natively): the same sites, the same features.
    let gpu = extended(&pack_lab());
    block_on(gpu.start_gpu(AdapterPreference::from_env(), true)).unwrap();
    assert!(gpu.engine_info().gpu.is_some());
    block_on(gpu.measure_sample(&texts, &|_, _| {})).unwrap();
    for (layer, feature) in [(4, 2), (5, 7)] {
        let (a, b) = (
            lab.live_feature(layer, feature).unwrap(),
            gpu.live_feature(layer, feature).unwrap(),
        );
        assert!(
            (a.max - b.max).abs() < 1e-3 * a.max.max(1.0),
            "{layer}/{feature}: {} vs {}",
            a.max,
            b.max
        );
        assert!(a.active.abs_diff(b.active) <= 1);
    }
    let on_gpu = block_on(gpu.steer(&request)).unwrap();
    assert_eq!(on_gpu.steered, steered.steered);
}

#[test]
fn dictionaries_that_do_not_fit_the_model_are_refused_by_name() {
    let lab = pack_lab();
    let d = lab.model().dims().d_model;
    for (cfg, expected) in [
        (
            config("standard", "blocks.9.hook_resid_post", d, ""),
            "blocks.9.hook_resid_post does not exist",
        ),
        (
            config("standard", "blocks.1.hook_resid_post", d + 2, ""),
            "258 values per token at blocks.1.hook_resid_post, which is 256 wide",
        ),
        (config("standard", "", d, ""), "names no hook_name"),
        (
            config("standard", "blocks.1.hook_nothing", d, ""),
            "hook_name `blocks.1.hook_nothing`",
        ),
    ] {
        let added = vec![("mine/cfg.json".to_owned(), Arc::new(dictionary(&cfg, 0.0)))];
        let error = lab.with_dictionaries(added).unwrap_err().to_string();
        assert!(
            error.contains("mine/cfg.json") && error.contains(expected),
            "{error}"
        );
    }
    // A model opened alone with an SAE: features, but no attribution graphs.
    let alone = Lab::from_model(
        "brown".to_owned(),
        lab.model().clone(),
        lab.tokenizer.clone(),
    )
    .unwrap()
    .with_dictionaries(vec![(
        "sae".to_owned(),
        Arc::new(dictionary(
            &config("standard", "blocks.0.hook_resid_pre", d, ""),
            2.0,
        )),
    )])
    .unwrap();
    let error = alone.transcoders().unwrap_err().to_string();
    assert!(
        error.contains("a transcoder for each of the model's 4 blocks"),
        "{error}"
    );
    // Without a corpus there is no sample text of its own: the caller brings one.
    assert!(alone.corpus_texts(4, 40).is_empty());
    let error = block_on(alone.measure_sample(&[], &|_, _| {}))
        .unwrap_err()
        .to_string();
    assert!(error.contains("no sample text"), "{error}");
}
