//! Transcoders for every block of a model too large to keep its activations: each step
//! runs the model on a few windows drawn at random from the training text and hands each
//! block's `ln2.hook_normalized` and `hook_mlp_out` straight to that block's trainer
//! ([`SparseTopK`]), so no layer's activations outlive the step. Every few minutes the
//! whole state is written to `work/state`; a stopped build resumes at the step it reached,
//! with the same windows it would have drawn.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use glassbox_dict::Dictionary;
use glassbox_model::rng::SplitMix64;
use glassbox_model::{HookPoint, Hooks, Model, Norm};
use indicatif::ProgressBar;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{BuildError, Result, io};
use crate::sparse_topk::{SparseTopK, SparseTopKConfig};
use crate::transcoder;

/// How the transcoders are trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamedConfig {
    /// Features per transcoder.
    pub d_sae: usize,
    /// Active features per token.
    pub k: usize,
    /// Tokens per window the model reads.
    pub window: usize,
    /// Windows per step (rows per step: `window · windows_per_step`).
    pub windows_per_step: usize,
    /// Optimiser steps.
    pub steps: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Seed of the weights and the windows.
    pub seed: u64,
    /// Positions at the start of each window left out of training (the first token's
    /// activations are outliers that no feature should have to explain).
    pub skip_first: usize,
}

impl StreamedConfig {
    /// Rows each transcoder learns from in all.
    #[must_use]
    pub fn rows(&self) -> usize {
        self.steps * self.windows_per_step * (self.window - self.skip_first)
    }

    fn trainer(&self, layer: usize, d_model: usize) -> SparseTopKConfig {
        SparseTopKConfig {
            d_in: d_model,
            d_out: d_model,
            d_sae: self.d_sae,
            k: self.k,
            k_aux: 8 * self.k,
            aux_coefficient: 1.0 / 8.0,
            dead_after_rows: 50_000,
            lr: self.lr,
            warmup: (self.steps / 50).max(1),
            total_steps: self.steps,
            resample_every: (self.steps / 12).max(1),
            resample_until: self.steps * 7 / 10,
            beta1: 0.9,
            beta2: 0.999,
            hook_name: HookPoint::LnNormalized(layer, Norm::Ln2).to_string(),
            hook_name_out: HookPoint::MlpOut(layer).to_string(),
        }
    }
}

/// Where the stage keeps its state: `state/` (the last complete checkpoint), written
/// through `state.next/` and swapped in whole.
#[derive(Debug, Clone)]
pub struct StateFolder {
    root: PathBuf,
}

/// What a checkpoint says about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Checkpoint {
    config: StreamedConfig,
    step: usize,
    /// Each block's fraction of variance unexplained, averaged over the last steps.
    recent_fvu: Vec<f32>,
    /// Wall-clock seconds of training so far, over every run.
    #[serde(default)]
    seconds: f64,
}

impl StateFolder {
    /// State under `root`.
    #[must_use]
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
        }
    }

    fn current(&self) -> PathBuf {
        self.root.join("state")
    }

    /// The wall time training has taken so far, over every run (the killed ones up to
    /// their last checkpoint); `None` without a checkpoint.
    #[must_use]
    pub fn trained_seconds(&self) -> Option<f64> {
        let bytes = std::fs::read(self.current().join("checkpoint.json")).ok()?;
        let record: Checkpoint = serde_json::from_slice(&bytes).ok()?;
        Some(record.seconds)
    }

    fn layer_file(folder: &Path, layer: usize) -> PathBuf {
        folder.join(format!("layer_{layer}.safetensors"))
    }

    /// The trainers and the checkpoint's record, if a complete checkpoint for `config` is
    /// there (one left half-swapped by an interruption is finished first).
    fn load(
        &self,
        config: &StreamedConfig,
        d_model: usize,
        n_layer: usize,
    ) -> Result<Option<(Vec<SparseTopK>, Checkpoint)>> {
        let (current, old) = (self.current(), self.root.join("state.old"));
        if !current.exists() && old.exists() {
            std::fs::rename(&old, &current).map_err(io(&current))?;
        }
        let record_path = current.join("checkpoint.json");
        let Ok(bytes) = std::fs::read(&record_path) else {
            return Ok(None);
        };
        let record: Checkpoint = serde_json::from_slice(&bytes)
            .map_err(|e| BuildError::Checkpoint(format!("{}: {e}", record_path.display())))?;
        if record.config != *config {
            return Err(BuildError::Checkpoint(format!(
                "{} was made with other settings ({:?}); remove it to start again",
                current.display(),
                record.config
            )));
        }
        let trainers = (0..n_layer)
            .map(|l| SparseTopK::load(config.trainer(l, d_model), &Self::layer_file(&current, l)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some((trainers, record)))
    }

    /// Writes every trainer and the record, then swaps the new state in.
    fn save(&self, trainers: &[SparseTopK], record: &Checkpoint) -> Result<()> {
        let next = self.root.join("state.next");
        if next.exists() {
            std::fs::remove_dir_all(&next).map_err(io(&next))?;
        }
        std::fs::create_dir_all(&next).map_err(io(&next))?;
        for (l, trainer) in trainers.iter().enumerate() {
            trainer.save(&Self::layer_file(&next, l))?;
        }
        let record_path = next.join("checkpoint.json");
        let json =
            serde_json::to_vec_pretty(record).map_err(|e| BuildError::Checkpoint(e.to_string()))?;
        std::fs::write(&record_path, json).map_err(io(&record_path))?;
        let (current, old) = (self.current(), self.root.join("state.old"));
        if current.exists() {
            std::fs::rename(&current, &old).map_err(io(&old))?;
        }
        std::fs::rename(&next, &current).map_err(io(&current))?;
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(io(&old))?;
        }
        Ok(())
    }
}

/// The windows of step `step`: `count` starts drawn from a generator seeded by the seed
/// and the step alone, so a resumed run draws what the first would have.
#[must_use]
pub fn step_windows(
    tokens: &[u32],
    window: usize,
    count: usize,
    seed: u64,
    step: usize,
) -> Vec<&[u32]> {
    let mut rng = SplitMix64::new(seed ^ (step as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
    let starts = (tokens.len().saturating_sub(window) + 1) as u64;
    (0..count)
        .map(|_| {
            let start = (rng.next_u64() % starts) as usize;
            &tokens[start..(start + window).min(tokens.len())]
        })
        .collect()
}

/// Each block's transcoder input and target rows for a batch of equal windows, without
/// the first `skip_first` positions of each: `(inputs, targets)` per block, row-major.
pub fn block_activations(
    model: &Model,
    windows: &[&[u32]],
    skip_first: usize,
) -> Result<Vec<(Vec<f32>, Vec<f32>)>> {
    let n_layer = model.dims().n_layer;
    let ids: Vec<u32> = windows.iter().flat_map(|w| w.iter().copied()).collect();
    let len = windows.first().map_or(0, |w| w.len());
    if windows.iter().any(|w| w.len() != len) || len <= skip_first {
        return Err(BuildError::Checkpoint(
            "windows of one batch must be equally long, longer than the positions skipped"
                .to_owned(),
        ));
    }
    let tokens = Tensor::from_vec(ids, (windows.len(), len), &Device::Cpu)?;
    let mut hooks = Hooks::none();
    for l in 0..n_layer {
        hooks = hooks
            .cache(HookPoint::LnNormalized(l, Norm::Ln2))
            .cache(HookPoint::MlpOut(l));
    }
    model.residual(&tokens, &mut hooks)?;
    let cache = hooks.take_cache();
    let rows = |hook: HookPoint| -> Result<Vec<f32>> {
        let t = cache
            .get(&hook)
            .ok_or_else(|| BuildError::Checkpoint(format!("{hook} was not cached")))?;
        let t = t.narrow(1, skip_first, len - skip_first)?;
        Ok(t.flatten_all()?.to_vec1()?)
    };
    (0..n_layer)
        .map(|l| {
            Ok((
                rows(HookPoint::LnNormalized(l, Norm::Ln2))?,
                rows(HookPoint::MlpOut(l))?,
            ))
        })
        .collect()
}

/// How often the state is written.
const CHECKPOINT_EVERY: Duration = Duration::from_mins(15);

/// Trains one transcoder per block on `tokens` (resuming from `state` when it holds a
/// checkpoint), stopping early after `stop_after` steps if given (the state is saved).
/// Returns the transcoders when all steps are done, `None` when stopped early.
pub fn train(
    model: &Model,
    tokens: &[u32],
    config: &StreamedConfig,
    state: &StateFolder,
    stop_after: Option<usize>,
    progress: &ProgressBar,
) -> Result<Option<Vec<Dictionary>>> {
    let dims = model.dims();
    let (mut trainers, mut recent, seconds_before) =
        match state.load(config, dims.d_model, dims.n_layer)? {
            Some((trainers, record)) => (trainers, record.recent_fvu, record.seconds),
            None => (
                (0..dims.n_layer)
                    .map(|l| {
                        SparseTopK::new(
                            config.trainer(l, dims.d_model),
                            config.seed ^ (l as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                        )
                    })
                    .collect::<Result<Vec<_>>>()?,
                vec![1.0; dims.n_layer],
                0.0,
            ),
        };
    let start = trainers.first().map_or(0, SparseTopK::steps_taken);
    let end = stop_after.map_or(config.steps, |s| s.min(config.steps));
    progress.set_length(config.steps as u64);
    progress.set_position(start as u64);
    progress.reset_eta();
    let mut saved_at = Instant::now();
    let run_started = Instant::now();
    for step in start..end {
        let windows = step_windows(
            tokens,
            config.window,
            config.windows_per_step,
            config.seed,
            step,
        );
        let batches = block_activations(model, &windows, config.skip_first)?;
        // The blocks' trainers are independent: one per core at a time.
        let stats = trainers
            .par_iter_mut()
            .zip(&batches)
            .map(|(trainer, (x, y))| trainer.step(x, y))
            .collect::<Result<Vec<_>>>()?;
        for (r, s) in recent.iter_mut().zip(&stats) {
            *r = 0.95 * *r + 0.05 * s.fvu;
        }
        let dead: usize = stats.iter().map(|s| s.dead).sum();
        let message = format!(
            "FVU (recent) median {:.3}, worst {:.3}; dead {:.1}%",
            median(&recent),
            recent.iter().fold(0.0_f32, |m, v| m.max(*v)),
            100.0 * dead as f64 / (config.d_sae * dims.n_layer) as f64
        );
        if (step + 1) % 100 == 0 {
            let per_step = run_started.elapsed().as_secs_f64() / (step + 1 - start) as f64;
            let left = per_step * (config.steps - step - 1) as f64 / 3600.0;
            say(
                progress,
                &format!(
                    "step {}/{}: {message}; {per_step:.1} s a step, about {left:.1} h left",
                    step + 1,
                    config.steps
                ),
            );
        }
        progress.set_message(message);
        progress.inc(1);
        if saved_at.elapsed() >= CHECKPOINT_EVERY || step + 1 == end {
            state.save(
                &trainers,
                &Checkpoint {
                    config: config.clone(),
                    step: step + 1,
                    recent_fvu: recent.clone(),
                    seconds: seconds_before + run_started.elapsed().as_secs_f64(),
                },
            )?;
            saved_at = Instant::now();
        }
    }
    if end < config.steps {
        return Ok(None);
    }
    trainers
        .iter()
        .map(SparseTopK::to_dictionary)
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// Saves each block's transcoder in the SAELens layout under `folder/layer_{l}`: in f16,
/// or with 8-bit matrices when `eight_bit`.
pub fn save_all(dictionaries: &[Dictionary], folder: &Path, eight_bit: bool) -> Result<()> {
    for (l, dictionary) in dictionaries.iter().enumerate() {
        let layer = folder.join(format!("layer_{l}"));
        if eight_bit {
            transcoder::save_8bit(dictionary, &layer)?;
        } else {
            transcoder::save(dictionary, &layer)?;
        }
    }
    Ok(())
}

/// A line above the progress bar, or on standard output when the bar is hidden (output
/// to a file): a long build's log keeps its milestones.
pub(crate) fn say(progress: &ProgressBar, line: &str) {
    if progress.is_hidden() {
        println!("{line}");
    } else {
        progress.println(line);
    }
}

fn median(values: &[f32]) -> f32 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f32::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}
