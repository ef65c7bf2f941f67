//! `dictionary`: SAELens files through `Dictionary::load`. Each input is loaded as the
//! weights under every seed config, and as the config with every seed's weights.
//!
//! The configs are the default pack's transcoder `cfg.json` made small and given each
//! architecture (its 2 MB weights would make every execution slow); their weights are
//! written here, in f32 and bf16.

use glassbox_dict::Dictionary;
use serde_json::{Value, json};

use super::{Target, text};
use crate::Behaviour;
use crate::seeds::{Dtype, repo_file, safetensors, values};

const CFG: &str = "www/packs/brown/transcoders/layer_0/cfg.json";
/// The seeds' input width, features, and a transcoder's output width.
const D_IN: usize = 8;
const D_SAE: usize = 16;
const D_OUT: usize = 12;

pub(super) fn target() -> Result<Target, String> {
    let brown: Value =
        serde_json::from_slice(&repo_file(CFG)?).map_err(|e| format!("{CFG}: {e}"))?;
    let mut pairs = Vec::new();
    for (architecture, dtype) in [
        ("topk", Dtype::F32),
        ("standard", Dtype::Bf16),
        ("jumprelu", Dtype::F32),
        ("transcoder", Dtype::Bf16),
    ] {
        let mut cfg = brown.clone();
        cfg["architecture"] = json!(architecture);
        cfg["d_in"] = json!(D_IN);
        cfg["d_sae"] = json!(D_SAE);
        cfg["k"] = json!(4);
        cfg["apply_b_dec_to_input"] = json!(architecture == "standard");
        let d_out = if architecture == "transcoder" {
            cfg["d_out"] = json!(D_OUT);
            D_OUT
        } else {
            D_IN
        };
        let mut tensors = vec![
            ("W_enc", vec![D_IN, D_SAE], values(1, D_IN * D_SAE)),
            ("b_enc", vec![D_SAE], values(2, D_SAE)),
            ("W_dec", vec![D_SAE, d_out], values(3, D_SAE * d_out)),
            ("b_dec", vec![d_out], values(4, d_out)),
        ];
        if architecture == "jumprelu" {
            tensors.push(("threshold", vec![D_SAE], values(5, D_SAE)));
        }
        pairs.push((cfg.to_string(), safetensors(&tensors, dtype)));
    }
    let seeds = pairs
        .iter()
        .flat_map(|(cfg, weights)| [cfg.clone().into_bytes(), weights.clone()])
        .collect();
    Ok(Target {
        name: "dictionary",
        text: true,
        seeds,
        run: Box::new(move |input| {
            let mut b = Behaviour::default();
            let as_cfg = text(input);
            for (cfg, weights) in &pairs {
                b.stage("weights", Dictionary::load(cfg, input));
                b.stage("cfg", Dictionary::load(&as_cfg, weights));
            }
            b
        }),
    })
}
