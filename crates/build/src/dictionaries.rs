//! The dictionaries stage: one TopK transcoder per block, trained on the model's
//! activations over the training split and measured on the held-out split — alone, and
//! spliced into the model in place of the MLPs.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use glassbox_dict::{Dictionary, splice};
use glassbox_model::{Gpt2, HookPoint, Hooks, Norm};
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

use crate::error::{BuildError, Result};
use crate::train::cross_entropy;
use crate::transcoder::{self, Activations, TranscoderConfig, TranscoderQuality};

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

/// Trains one transcoder per block (each saved into `folder/layer_{l}` in the SAELens
/// layout, and loaded from there instead when already present) and measures them.
pub fn stage(
    model: &Gpt2,
    train_windows: &[&[u32]],
    eval_tokens: &[u32],
    configs: &[TranscoderConfig],
    folder: &Path,
    progress: &ProgressBar,
    report_path: &Path,
) -> Result<(Vec<Dictionary>, DictionaryReport)> {
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
        // Saved in f16 and read back, so everything measured from here on is what ships.
        transcoder::save(&trained, &layer_folder)?;
        dictionaries.push(transcoder::load(&layer_folder)?);
        progress.inc(1);
    }
    drop(training);
    progress.set_message("measuring on held-out text");
    let seq_len = train_windows.first().map_or(0, |w| w.len());
    let report = crate::pipeline::cached_json(report_path, || {
        measure(
            model,
            &dictionaries,
            eval_tokens,
            seq_len,
            train_windows.len() * seq_len,
        )
    })?;
    Ok((dictionaries, report))
}

fn measure(
    model: &Gpt2,
    dictionaries: &[Dictionary],
    eval_tokens: &[u32],
    seq_len: usize,
    training_rows: usize,
) -> Result<DictionaryReport> {
    let eval_windows = windows(eval_tokens, seq_len + 1, usize::MAX);
    let held_out = collect_all(
        model,
        &eval_windows
            .iter()
            .map(|w| &w[..seq_len])
            .collect::<Vec<_>>(),
    )?;
    let shared: Vec<Arc<Dictionary>> = dictionaries.iter().cloned().map(Arc::new).collect();
    let n = dictionaries.len();
    // Losses: the model, all spliced, all spliced with errors, then each block alone.
    let mut nats = vec![0.0_f64; 3 + n];
    let mut counted = 0_usize;
    for batch in eval_windows.chunks(16) {
        let inputs = batch_tensor(&batch.iter().map(|w| &w[..seq_len]).collect::<Vec<_>>())?;
        let targets = batch_tensor(&batch.iter().map(|w| &w[1..]).collect::<Vec<_>>())?;
        let loss = |hooks: &mut Hooks| -> Result<f64> {
            let logits = model.forward(&inputs, hooks)?;
            Ok(f64::from(
                cross_entropy(&logits, &targets)?
                    .to_dtype(DType::F32)?
                    .to_scalar::<f32>()?,
            ))
        };
        let tokens = batch.len() * seq_len;
        let mut clean = Hooks::none();
        for l in 0..n {
            clean = clean
                .cache(HookPoint::LnNormalized(l, Norm::Ln2))
                .cache(HookPoint::MlpOut(l));
        }
        nats[0] += loss(&mut clean)? * tokens as f64;
        let cache = clean.take_cache();
        let mut all = Hooks::none();
        let mut with_errors = Hooks::none();
        for (l, dictionary) in shared.iter().enumerate() {
            let input = &cache[&HookPoint::LnNormalized(l, Norm::Ln2)];
            let output = &cache[&HookPoint::MlpOut(l)];
            let (b, p, d) = input.dims3()?;
            let predicted = dictionary
                .decode(&dictionary.encode(&input.reshape((b * p, d))?)?)?
                .reshape((b, p, output.dim(2)?))?;
            let error = (output - predicted)?;
            all = splice(all, dictionary.clone(), None)?;
            with_errors = splice(with_errors, dictionary.clone(), Some(error))?;
            let mut alone = splice(Hooks::none(), dictionary.clone(), None)?;
            nats[3 + l] += loss(&mut alone)? * tokens as f64;
        }
        nats[1] += loss(&mut all)? * tokens as f64;
        nats[2] += loss(&mut with_errors)? * tokens as f64;
        counted += tokens;
    }
    let per_token = |i: usize| nats[i] / counted as f64;
    let layers = dictionaries
        .iter()
        .zip(&held_out)
        .enumerate()
        .map(|(layer, (dictionary, data))| {
            let TranscoderQuality {
                fvu,
                mean_l0,
                dead_fraction,
            } = transcoder::quality(dictionary, data)?;
            Ok(LayerReport {
                layer,
                fvu,
                mean_l0,
                dead_fraction,
                loss_this_layer_spliced: per_token(3 + layer),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(DictionaryReport {
        layers,
        loss_model: per_token(0),
        loss_all_spliced: per_token(1),
        loss_all_spliced_with_errors: per_token(2),
        training_rows,
        eval_tokens: counted,
    })
}
