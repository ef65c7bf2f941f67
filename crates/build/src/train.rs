//! Training the GPT-2 on the tokenized training split with our own model code: random
//! windows of the token stream, cross-entropy, AdamW with warm-up and cosine decay,
//! checkpoints that a later run resumes from exactly.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use candle_core::{D, DType, Device, Tensor, Var};
use glassbox_model::rng::SplitMix64;
use glassbox_model::{Gpt2, Gpt2Config, Gpt2Weights, Hooks};
use serde::{Deserialize, Serialize};

use crate::adamw::{AdamW, AdamWConfig, learning_rate};
use crate::error::{BuildError, Result, io};
use crate::loss::nll_rows;

/// What to train and for how long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The model's shape.
    pub model: Gpt2Config,
    /// Sequences per step.
    pub batch_size: usize,
    /// Tokens per sequence (at most the model's context).
    pub seq_len: usize,
    /// Optimiser steps.
    pub steps: usize,
    /// Warm-up steps.
    pub warmup: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// The final learning rate as a share of the peak.
    pub min_lr_ratio: f64,
    /// Seed of the initial weights and of the batches.
    pub seed: u64,
    /// Steps between checkpoints.
    pub checkpoint_every: usize,
}

/// Checkpoint file names inside the model's work folder.
const CHECKPOINT: &str = "checkpoint.safetensors";
const CHECKPOINT_META: &str = "checkpoint.json";

#[derive(Debug, Serialize, Deserialize)]
struct CheckpointMeta {
    step: usize,
    config: TrainConfig,
    losses: Vec<(usize, f32)>,
}

/// Trains (or resumes training) in `work` and returns the trained model.
pub fn train(
    config: &TrainConfig,
    tokens: &[u32],
    work: &Path,
    progress: &indicatif::ProgressBar,
) -> Result<Gpt2> {
    train_until(config, tokens, work, progress, config.steps)
}

/// Like [`train`], but stops after step `stop_at` (with a checkpoint), as an interrupted
/// run would; the next call resumes from there.
pub fn train_until(
    config: &TrainConfig,
    tokens: &[u32],
    work: &Path,
    progress: &indicatif::ProgressBar,
    stop_at: usize,
) -> Result<Gpt2> {
    if tokens.len() <= config.seq_len + 1 {
        return Err(BuildError::Corpus("too few training tokens".to_owned()));
    }
    std::fs::create_dir_all(work).map_err(io(work))?;
    let init = Gpt2Weights::init(&config.model, config.seed)?;
    let mut vars: Vec<(String, Var)> = Vec::new();
    let weights = init.try_map(|name, tensor| {
        let var = Var::from_tensor(tensor)?;
        let shared = var.as_tensor().clone();
        vars.push((name.to_owned(), var));
        Ok(shared)
    })?;
    let model = Gpt2::new(config.model.clone(), weights)?;
    let mut optimizer = AdamW::new(AdamWConfig::default(), vars)?;
    let mut losses = resume(config, work, &mut optimizer)?;

    progress.set_length(config.steps as u64);
    progress.set_position(optimizer.step as u64);
    let started = Instant::now();
    let first_step = optimizer.step;
    while optimizer.step < config.steps.min(stop_at) {
        let step = optimizer.step;
        let (inputs, targets) = batch(tokens, config, step)?;
        let logits = model.forward(&inputs, &mut Hooks::none())?;
        let loss = cross_entropy(&logits, &targets)?;
        let grads = loss.backward()?;
        let lr = learning_rate(
            step,
            config.warmup,
            config.steps,
            config.lr,
            config.min_lr_ratio,
        );
        let norm = optimizer.step(&grads, lr)?;
        let loss = loss.to_scalar::<f32>()?;
        if !loss.is_finite() {
            return Err(BuildError::Checkpoint(format!(
                "the loss became {loss} at step {step}; lower the learning rate"
            )));
        }
        losses.push((step, loss));
        let done = optimizer.step - first_step;
        let rate =
            (done * config.batch_size * config.seq_len) as f64 / started.elapsed().as_secs_f64();
        progress.set_message(format!(
            "loss {loss:.3}, grad norm {norm:.2}, lr {lr:.2e}, {rate:.0} tokens/s"
        ));
        progress.set_position(optimizer.step as u64);
        if optimizer.step % config.checkpoint_every == 0
            || optimizer.step == config.steps.min(stop_at)
        {
            save_checkpoint(config, work, &optimizer, &losses)?;
            if progress.is_hidden() {
                // No terminal (a log file): a line per checkpoint instead of the bar.
                eprintln!(
                    "step {}/{}: {}",
                    optimizer.step,
                    config.steps,
                    progress.message()
                );
            }
        }
    }
    Ok(model)
}

/// Loads the checkpoint in `work`, if any, into `optimizer`; returns the losses so far.
fn resume(config: &TrainConfig, work: &Path, optimizer: &mut AdamW) -> Result<Vec<(usize, f32)>> {
    let meta_path = work.join(CHECKPOINT_META);
    if !meta_path.exists() {
        return Ok(Vec::new());
    }
    let meta: CheckpointMeta =
        serde_json::from_slice(&std::fs::read(&meta_path).map_err(io(&meta_path))?)
            .map_err(|e| BuildError::Checkpoint(format!("{}: {e}", meta_path.display())))?;
    if meta.config != *config {
        return Err(BuildError::Checkpoint(format!(
            "{} was made with other settings; delete the folder to start over",
            work.display()
        )));
    }
    let tensors = candle_core::safetensors::load(work.join(CHECKPOINT), &Device::Cpu)?;
    for p in &optimizer.params {
        for (suffix, var) in [("", &p.var), (".adam_m", &p.m), (".adam_v", &p.v)] {
            let name = format!("{}{suffix}", p.name);
            let saved = tensors
                .get(&name)
                .ok_or_else(|| BuildError::Checkpoint(format!("checkpoint lacks `{name}`")))?;
            var.set(saved)?;
        }
    }
    optimizer.step = meta.step;
    Ok(meta.losses)
}

fn save_checkpoint(
    config: &TrainConfig,
    work: &Path,
    optimizer: &AdamW,
    losses: &[(usize, f32)],
) -> Result<()> {
    let mut tensors = HashMap::new();
    for p in &optimizer.params {
        tensors.insert(p.name.clone(), p.var.as_tensor().clone());
        tensors.insert(format!("{}.adam_m", p.name), p.m.as_tensor().clone());
        tensors.insert(format!("{}.adam_v", p.name), p.v.as_tensor().clone());
    }
    // Write to a temporary name and rename, so an interrupted save never leaves a torn file.
    let partial = work.join(format!("{CHECKPOINT}.partial"));
    candle_core::safetensors::save(&tensors, &partial)?;
    std::fs::rename(&partial, work.join(CHECKPOINT)).map_err(io(work.join(CHECKPOINT)))?;
    let meta = CheckpointMeta {
        step: optimizer.step,
        config: config.clone(),
        losses: losses.to_vec(),
    };
    let json = serde_json::to_vec(&meta).map_err(|e| BuildError::Checkpoint(e.to_string()))?;
    let meta_path = work.join(CHECKPOINT_META);
    std::fs::write(&meta_path, json).map_err(io(&meta_path))
}

/// The batch for `step`: random windows, drawn from a generator seeded by the run's seed
/// and the step, so a resumed run sees the same batches.
fn batch(tokens: &[u32], config: &TrainConfig, step: usize) -> Result<(Tensor, Tensor)> {
    let mut rng = SplitMix64::new(config.seed ^ (step as u64).wrapping_mul(0xA076_1D64_78BD_642F));
    let windows = tokens.len() - config.seq_len - 1;
    let mut inputs = Vec::with_capacity(config.batch_size * config.seq_len);
    let mut targets = Vec::with_capacity(config.batch_size * config.seq_len);
    for _ in 0..config.batch_size {
        let start = (rng.next_u64() % windows as u64) as usize;
        inputs.extend_from_slice(&tokens[start..start + config.seq_len]);
        targets.extend_from_slice(&tokens[start + 1..=start + config.seq_len]);
    }
    let shape = (config.batch_size, config.seq_len);
    Ok((
        Tensor::from_vec(inputs, shape, &Device::Cpu)?,
        Tensor::from_vec(targets, shape, &Device::Cpu)?,
    ))
}

/// Mean negative log-likelihood, in nats, of `targets` `[batch, seq]` under `logits`
/// `[batch, seq, vocab]`.
pub fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let vocab = logits.dim(D::Minus1)?;
    let rows = logits.reshape(((), vocab))?;
    Ok(nll_rows(&rows, targets.flatten_all()?.to_vec1::<u32>()?)?.mean_all()?)
}

/// Total nats of `tokens` under the model, read in consecutive windows of `seq_len`
/// (each window's first token is predicted from nothing and not counted).
pub fn evaluate(model: &Gpt2, tokens: &[u32], seq_len: usize) -> Result<(f64, usize)> {
    let mut nats = 0.0;
    let mut counted = 0;
    for window in tokens.chunks(seq_len + 1) {
        if window.len() < 2 {
            continue;
        }
        let len = window.len() - 1;
        let inputs = Tensor::new(&window[..len], &Device::Cpu)?.unsqueeze(0)?;
        let targets = Tensor::new(&window[1..], &Device::Cpu)?.unsqueeze(0)?;
        let logits = model.forward(&inputs, &mut Hooks::none())?;
        nats += f64::from(
            cross_entropy(&logits, &targets)?
                .to_dtype(DType::F32)?
                .to_scalar::<f32>()?,
        ) * len as f64;
        counted += len;
    }
    Ok((nats, counted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_entropy_of_uniform_logits_is_log_vocab() {
        let logits = Tensor::zeros((2, 3, 8), DType::F32, &Device::Cpu).unwrap();
        let targets = Tensor::new(&[[1_u32, 2, 3], [4, 5, 6]], &Device::Cpu).unwrap();
        let loss = cross_entropy(&logits, &targets)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((loss - 8f32.ln()).abs() < 1e-6);
    }

    #[test]
    fn training_lowers_the_loss_and_resumes_exactly() {
        let model = Gpt2Config {
            n_layer: 1,
            n_head: 2,
            n_embd: 16,
            n_positions: 16,
            vocab_size: 12,
            layer_norm_epsilon: 1e-5,
            n_inner: None,
            activation_function: glassbox_model::Activation::GeluTanh,
        };
        let config = TrainConfig {
            model,
            batch_size: 4,
            seq_len: 8,
            steps: 40,
            warmup: 4,
            lr: 1e-2,
            min_lr_ratio: 0.1,
            seed: 1,
            checkpoint_every: 20,
        };
        // A repeating pattern the model can learn.
        let tokens: Vec<u32> = (0..400).map(|i| [1, 2, 3, 4, 5, 3, 2][i % 7]).collect();
        let dir = std::env::temp_dir().join(format!("glassbox-train-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let hidden = indicatif::ProgressBar::hidden();
        let before = evaluate(
            &Gpt2::new(
                config.model.clone(),
                Gpt2Weights::init(&config.model, 1).unwrap(),
            )
            .unwrap(),
            &tokens,
            8,
        )
        .unwrap();
        let trained = train(&config, &tokens, &dir.join("full"), &hidden).unwrap();
        let after = evaluate(&trained, &tokens, 8).unwrap();
        assert!(after.0 < 0.5 * before.0, "{before:?} → {after:?}");
        // Stop at 20, as if interrupted, then resume to 40: the same weights.
        let resumed_dir = dir.join("resumed");
        train_until(&config, &tokens, &resumed_dir, &hidden, 20).unwrap();
        let resumed = train(&config, &tokens, &resumed_dir, &hidden).unwrap();
        let a = trained.weights().token_embedding.to_vec2::<f32>().unwrap();
        let b = resumed.weights().token_embedding.to_vec2::<f32>().unwrap();
        assert_eq!(a, b);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
