//! The dictionaries stage: one TopK transcoder per block, trained on the model's
//! activations over the training split and measured on the held-out split — alone, and
//! spliced into the model in place of the MLPs.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use glassbox_dict::Dictionary;
use glassbox_model::{Gpt2, HookPoint, Hooks, Model, Norm};
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

use crate::error::{BuildError, Result};
use crate::quality::{self, QualityOptions};
use crate::transcoder::{self, Activations, TranscoderConfig};

/// How one layer's transcoder does on held-out text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerReport {
    /// The block.
    pub layer: usize,
    /// Fraction of `hook_mlp_out`'s variance left unexplained.
    pub fvu: f64,
    /// Mean active features per token.
    pub mean_l0: f64,
    /// Share of features that never fired on the held-out text.
    pub dead_fraction: f64,
    /// Held-out loss, nats per token, with only this block's MLP replaced.
    pub loss_this_layer_spliced: f64,
}

/// What the dictionaries stage measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DictionaryReport {
    /// Per block.
    pub layers: Vec<LayerReport>,
    /// Held-out loss of the model itself, nats per token.
    pub loss_model: f64,
    /// With every MLP replaced by its transcoder.
    pub loss_all_spliced: f64,
    /// With every MLP replaced by its transcoder plus its error term (the MLP's true
    /// output minus the transcoder's prediction on the clean run): the replacement model
    /// of attribution, which must give back the model's own loss.
    pub loss_all_spliced_with_errors: f64,
    /// Activation rows each transcoder was trained on.
    pub training_rows: usize,
    /// Held-out tokens measured.
    pub eval_tokens: usize,
}

/// Evenly spaced windows of `seq_len` tokens from `tokens`, at most `max_windows`.
#[must_use]
pub fn windows(tokens: &[u32], seq_len: usize, max_windows: usize) -> Vec<&[u32]> {
    let all = tokens.len() / seq_len;
    let take = all.min(max_windows);
    (0..take)
        .map(|i| {
            let start = i * all / take * seq_len;
            &tokens[start..start + seq_len]
        })
        .collect()
}

/// Each block's transcoder input and target over `windows`, read in batches.
pub fn collect_all(model: &Gpt2, windows: &[&[u32]]) -> Result<Vec<Activations>> {
    let n_layer = model.config().n_layer;
    let mut parts: Vec<(Vec<Tensor>, Vec<Tensor>)> = vec![(Vec::new(), Vec::new()); n_layer];
    for batch in windows.chunks(16) {
        let mut hooks = Hooks::none();
        for l in 0..n_layer {
            hooks = hooks
                .cache(HookPoint::LnNormalized(l, Norm::Ln2))
                .cache(HookPoint::MlpOut(l));
        }
        model.forward(&batch_tensor(batch)?, &mut hooks)?;
        let cache = hooks.take_cache();
        for (l, (inputs, targets)) in parts.iter_mut().enumerate() {
            inputs.push(rows(&cache, HookPoint::LnNormalized(l, Norm::Ln2))?);
            targets.push(rows(&cache, HookPoint::MlpOut(l))?);
        }
    }
    parts
        .into_iter()
        .map(|(inputs, targets)| {
            Ok(Activations {
                input: Tensor::cat(&inputs, 0)?,
                target: Tensor::cat(&targets, 0)?,
            })
        })
        .collect()
}

fn batch_tensor(windows: &[&[u32]]) -> Result<Tensor> {
    let len = windows.first().map_or(0, |w| w.len());
    let ids: Vec<u32> = windows.iter().flat_map(|w| w.iter().copied()).collect();
    Ok(Tensor::from_vec(ids, (windows.len(), len), &Device::Cpu)?)
}

/// A cached `[batch, pos, d]` activation as `[batch·pos, d]` rows.
fn rows(cache: &BTreeMap<HookPoint, Tensor>, hook: HookPoint) -> Result<Tensor> {
    let t = cache
        .get(&hook)
        .ok_or_else(|| BuildError::Checkpoint(format!("{hook} was not cached")))?;
    let width = t.dim(2)?;
    Ok(t.reshape(((), width))?)
}

/// The name of the file in the work folder that says its staged transcoders read
/// `ln2.hook_normalized` before the LayerNorm's gain (pack format 2).
pub const FORMAT_2_MARKER: &str = "transcoders-read-before-the-gain";

/// Transcoders staged in `folder` by a build from before pack format 2 read `ln_2`'s
/// output: folds each once (the same features, reading before the gain and bias) and
/// leaves `marker` so that it happens once. Returns how many were folded.
pub fn upgrade_staged(model: &Gpt2, folder: &Path, marker: &Path) -> Result<usize> {
    if marker.exists() {
        return Ok(0);
    }
    let mut folded = 0;
    for l in 0..model.config().n_layer {
        let layer_folder = folder.join(format!("layer_{l}"));
        if let Ok(old) = transcoder::load(&layer_folder) {
            let new = glassbox_pack::read_before_the_gain(model, &old)
                .map_err(|e| BuildError::Checkpoint(format!("{}: {e}", layer_folder.display())))?;
            transcoder::save(&new, &layer_folder)?;
            folded += 1;
        }
    }
    std::fs::write(marker, "2\n").map_err(crate::error::io(marker))?;
    Ok(folded)
}

/// Trains one transcoder per block (each saved into `folder/layer_{l}` in the SAELens
/// layout in f16, and loaded from there instead when already present); [`measure`]
/// measures them.
pub fn stage(
    model: &Gpt2,
    train_windows: &[&[u32]],
    configs: &[TranscoderConfig],
    folder: &Path,
    progress: &ProgressBar,
) -> Result<Vec<Dictionary>> {
    let mut dictionaries = Vec::new();
    let mut training: Option<Vec<Activations>> = None;
    for config in configs {
        let layer_folder = folder.join(format!("layer_{}", config.layer));
        if let Ok(existing) = transcoder::load(&layer_folder) {
            dictionaries.push(existing);
            progress.inc(1);
            continue;
        }
        if training.is_none() {
            progress.set_message("collecting activations");
            training = Some(collect_all(model, train_windows)?);
        }
        let data = training
            .as_ref()
            .and_then(|t| t.get(config.layer))
            .ok_or_else(|| BuildError::Checkpoint(format!("no block {}", config.layer)))?;
        progress.set_message(format!("training block {}", config.layer));
        let trained = transcoder::train(config, data)?;
        // Saved in f16 and read back: what the pack's 8-bit copies are made from.
        transcoder::save(&trained, &layer_folder)?;
        dictionaries.push(transcoder::load(&layer_folder)?);
        progress.inc(1);
    }
    Ok(dictionaries)
}

/// Measures `dictionaries` on every held-out window (of the training windows' length),
/// the losses included.
pub fn measure(
    model: &Gpt2,
    dictionaries: &[Dictionary],
    eval_tokens: &[u32],
    train_windows: &[&[u32]],
) -> Result<DictionaryReport> {
    let seq_len = train_windows.first().map_or(0, |w| w.len());
    quality::measure(
        &Model::from(model.clone()),
        dictionaries,
        eval_tokens,
        QualityOptions {
            window: seq_len,
            quality_windows: usize::MAX,
            loss_windows: usize::MAX,
            skip_first: 0,
            training_rows: train_windows.len() * seq_len,
        },
        &ProgressBar::hidden(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

    use super::*;
    use glassbox_dict::{Architecture, DictConfig, DictMetadata};
    use glassbox_model::{Gpt2Config, Gpt2Weights};

    #[test]
    fn transcoders_staged_before_format_2_are_folded_once() {
        let config = Gpt2Config {
            n_layer: 1,
            n_head: 2,
            n_embd: 32,
            n_positions: 16,
            vocab_size: 40,
            layer_norm_epsilon: 1e-5,
            n_inner: Some(32),
            activation_function: glassbox_model::Activation::GeluTanh,
        };
        let weights = Gpt2Weights::init(&config, 2)
            .unwrap()
            .try_map(|name, t| {
                if name.ends_with("ln_2.weight") {
                    Ok((t * 3.0)?)
                } else {
                    Ok(t.clone())
                }
            })
            .unwrap();
        let model = Gpt2::new(config, weights).unwrap();
        let random = |seed: u64, shape: &[usize]| {
            let mut rng = glassbox_model::rng::SplitMix64::new(seed);
            let values: Vec<f32> = (0..shape.iter().product::<usize>())
                .map(|_| rng.next_normal() as f32)
                .collect();
            Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
        };
        let old = Dictionary {
            config: DictConfig {
                architecture: Architecture::TopK,
                d_in: 32,
                d_sae: 64,
                d_out: None,
                k: Some(4),
                apply_b_dec_to_input: false,
                metadata: DictMetadata {
                    hook_name: "blocks.0.ln2.hook_normalized".to_owned(),
                    hook_name_out: Some("blocks.0.hook_mlp_out".to_owned()),
                    model_name: None,
                },
            },
            w_enc: random(1, &[32, 64]),
            b_enc: random(2, &[64]),
            w_dec: random(3, &[64, 32]),
            b_dec: random(4, &[32]),
            threshold: None,
        };
        let work = std::env::temp_dir().join(format!("glassbox-upgrade-{}", std::process::id()));
        let folder = work.join("transcoders");
        transcoder::save(&old, &folder.join("layer_0")).unwrap();
        let old = transcoder::load(&folder.join("layer_0")).unwrap();
        let marker = work.join(FORMAT_2_MARKER);
        assert_eq!(upgrade_staged(&model, &folder, &marker).unwrap(), 1);
        let folded = transcoder::load(&folder.join("layer_0")).unwrap();
        // Three times the gain: the folded encoder is three times the old one.
        let ratio = (folded.w_enc.sum_all().unwrap().to_scalar::<f32>().unwrap())
            / old.w_enc.sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert!((ratio - 3.0).abs() < 1e-2, "{ratio}");
        // Once only.
        assert_eq!(upgrade_staged(&model, &folder, &marker).unwrap(), 0);
        let again = transcoder::load(&folder.join("layer_0")).unwrap();
        let _ = std::fs::remove_dir_all(&work);
        assert_eq!(
            again.w_enc.to_vec2::<f32>().unwrap(),
            folded.w_enc.to_vec2::<f32>().unwrap()
        );
    }
}
