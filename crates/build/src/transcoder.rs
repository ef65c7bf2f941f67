//! Training a TopK transcoder (Dunefsky et al., 2024; TopK after Gao et al., 2024) for one
//! MLP: it reads `blocks.{l}.ln2.hook_normalized` and predicts `blocks.{l}.hook_mlp_out`
//! through a few thousand sparse features. Saved in the SAELens layout.

use std::collections::HashMap;

use candle_core::{D, DType, Device, Tensor, Var};
use glassbox_dict::{Architecture, DictConfig, Dictionary};
use glassbox_model::rng::SplitMix64;
use glassbox_model::{Gpt2, HookPoint, Hooks, Norm};

use crate::adamw::{AdamW, AdamWConfig, learning_rate};
use crate::error::{BuildError, Result};

/// What to train.
#[derive(Debug, Clone, PartialEq)]
pub struct TranscoderConfig {
    /// The block whose MLP it replaces.
    pub layer: usize,
    /// Features.
    pub d_sae: usize,
    /// Active features per token.
    pub k: usize,
    /// Optimiser steps.
    pub steps: usize,
    /// Activation rows per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Seed of the initial weights and the batches.
    pub seed: u64,
}

/// Input and target activations, `[rows, d]` each, for one layer.
#[derive(Debug, Clone)]
pub struct Activations {
    /// `blocks.{l}.ln2.hook_normalized`.
    pub input: Tensor,
    /// `blocks.{l}.hook_mlp_out`.
    pub target: Tensor,
}

/// Runs the model over `tokens` in windows of `seq_len` and keeps the transcoder's input
/// and target at `layer`.
pub fn collect(model: &Gpt2, tokens: &[u32], seq_len: usize, layer: usize) -> Result<Activations> {
    let (input_hook, target_hook) = (
        HookPoint::LnNormalized(layer, Norm::Ln2),
        HookPoint::MlpOut(layer),
    );
    let (mut inputs, mut targets) = (Vec::new(), Vec::new());
    for window in tokens.chunks(seq_len) {
        let mut hooks = Hooks::none().cache(input_hook).cache(target_hook);
        model.forward_ids(window, &mut hooks)?;
        let cache = hooks.take_cache();
        let take = |hook| -> Result<Tensor> {
            let t = cache
                .get(&hook)
                .ok_or_else(|| BuildError::Checkpoint(format!("{hook} was not cached")))?;
            Ok(t.squeeze(0)?)
        };
        inputs.push(take(input_hook)?);
        targets.push(take(target_hook)?);
    }
    Ok(Activations {
        input: Tensor::cat(&inputs, 0)?,
        target: Tensor::cat(&targets, 0)?,
    })
}

/// Trains a transcoder on `data` and returns it as a SAELens-layout [`Dictionary`].
pub fn train(config: &TranscoderConfig, data: &Activations) -> Result<Dictionary> {
    let (rows, d) = data.input.dims2()?;
    if rows == 0 || config.k == 0 || config.k > config.d_sae {
        return Err(BuildError::Checkpoint(
            "transcoder: no data, or k outside 1..=d_sae".to_owned(),
        ));
    }
    let mut rng = SplitMix64::new(config.seed);
    // Decoder rows of norm 0.1 in random directions; the encoder starts as its transpose.
    let raw: Vec<f32> = (0..config.d_sae * d)
        .map(|_| rng.next_normal() as f32)
        .collect();
    let w_dec = Tensor::from_vec(raw, (config.d_sae, d), &Device::Cpu)?;
    let w_dec = (w_dec.broadcast_div(&w_dec.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?)? * 0.1)?;
    let w_enc = Var::from_tensor(&w_dec.t()?.contiguous()?)?;
    let w_dec = Var::from_tensor(&w_dec)?;
    let b_enc = Var::from_tensor(&Tensor::zeros(config.d_sae, DType::F32, &Device::Cpu)?)?;
    let b_dec = Var::from_tensor(&data.target.mean(0)?)?;
    let variance = data
        .target
        .broadcast_sub(&data.target.mean_keepdim(0)?)?
        .sqr()?
        .mean_all()?;
    let mut optimizer = AdamW::new(
        AdamWConfig {
            weight_decay: 0.0,
            ..AdamWConfig::default()
        },
        vec![
            ("W_enc".to_owned(), w_enc.clone()),
            ("b_enc".to_owned(), b_enc.clone()),
            ("W_dec".to_owned(), w_dec.clone()),
            ("b_dec".to_owned(), b_dec.clone()),
        ],
    )?;
    for step in 0..config.steps {
        let picks: Vec<u32> = (0..config.batch_size)
            .map(|_| (rng.next_u64() % rows as u64) as u32)
            .collect();
        let picks = Tensor::new(picks.as_slice(), &Device::Cpu)?;
        let x = data.input.index_select(&picks, 0)?;
        let y = data.target.index_select(&picks, 0)?;
        let pre = x
            .matmul(w_enc.as_tensor())?
            .broadcast_add(b_enc.as_tensor())?
            .relu()?;
        let acts = (&pre * top_k_mask(&pre, config.k)?)?;
        let prediction = acts
            .matmul(w_dec.as_tensor())?
            .broadcast_add(b_dec.as_tensor())?;
        // Mean squared error relative to the target's variance: the fraction unexplained.
        let loss = (prediction - &y)?
            .sqr()?
            .mean_all()?
            .broadcast_div(&variance)?;
        let grads = loss.backward()?;
        optimizer.step(
            &grads,
            learning_rate(step, config.steps / 20 + 1, config.steps, config.lr, 0.1),
        )?;
    }
    let dictionary_config = DictConfig {
        architecture: Architecture::TopK,
        d_in: d,
        d_sae: config.d_sae,
        d_out: None,
        k: Some(config.k),
        apply_b_dec_to_input: false,
        metadata: glassbox_dict::DictMetadata {
            hook_name: HookPoint::LnNormalized(config.layer, Norm::Ln2).to_string(),
            hook_name_out: Some(HookPoint::MlpOut(config.layer).to_string()),
            model_name: None,
        },
    };
    Ok(Dictionary {
        config: dictionary_config,
        w_enc: w_enc.as_tensor().detach(),
        b_enc: b_enc.as_tensor().detach(),
        w_dec: w_dec.as_tensor().detach(),
        b_dec: b_dec.as_tensor().detach(),
        threshold: None,
    })
}

/// 1 at each row's `k` largest entries, 0 elsewhere (a constant: no gradient flows
/// through the choice, only through the kept values).
fn top_k_mask(x: &Tensor, k: usize) -> Result<Tensor> {
    let rows: Vec<Vec<f32>> = x.to_vec2()?;
    let width = x.dim(1)?;
    let mut mask = vec![0.0_f32; rows.len() * width];
    for (r, row) in rows.iter().enumerate() {
        let mut order: Vec<usize> = (0..width).collect();
        order.select_nth_unstable_by(k - 1, |&a, &b| row[b].total_cmp(&row[a]));
        for &i in &order[..k] {
            mask[r * width + i] = 1.0;
        }
    }
    Ok(Tensor::from_vec(mask, (rows.len(), width), &Device::Cpu)?)
}

/// How well a transcoder does on held-out activations.
#[derive(Debug, Clone, PartialEq)]
pub struct TranscoderQuality {
    /// Fraction of the target's variance left unexplained.
    pub fvu: f64,
    /// Mean number of active features per token.
    pub mean_l0: f64,
    /// Share of features that never fired.
    pub dead_fraction: f64,
}

/// Measures `dictionary` on `data`.
pub fn quality(dictionary: &Dictionary, data: &Activations) -> Result<TranscoderQuality> {
    let acts = dictionary
        .encode(&data.input)
        .map_err(|e| BuildError::Checkpoint(e.to_string()))?;
    let prediction = dictionary
        .decode(&acts)
        .map_err(|e| BuildError::Checkpoint(e.to_string()))?;
    let residual = (prediction - &data.target)?
        .sqr()?
        .sum_all()?
        .to_scalar::<f32>()?;
    let total = data
        .target
        .broadcast_sub(&data.target.mean_keepdim(0)?)?
        .sqr()?
        .sum_all()?
        .to_scalar::<f32>()?;
    let active = acts.gt(0.0)?.to_dtype(DType::F32)?;
    let rows = active.dim(0)? as f64;
    let mean_l0 = f64::from(active.sum_all()?.to_scalar::<f32>()?) / rows;
    let fired: Vec<f32> = active.sum(0)?.to_vec1()?;
    let dead = fired.iter().filter(|&&n| n == 0.0).count() as f64 / fired.len() as f64;
    Ok(TranscoderQuality {
        fvu: f64::from(residual / total),
        mean_l0,
        dead_fraction: dead,
    })
}

/// The SAELens files: `cfg.json` and `sae_weights.safetensors`.
pub fn save(dictionary: &Dictionary, folder: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(folder).map_err(crate::error::io(folder))?;
    let cfg = serde_json::to_string_pretty(&dictionary.config)
        .map_err(|e| BuildError::Checkpoint(e.to_string()))?;
    std::fs::write(folder.join("cfg.json"), cfg)
        .map_err(crate::error::io(folder.join("cfg.json")))?;
    let tensors = HashMap::from([
        ("W_enc".to_owned(), dictionary.w_enc.clone()),
        ("b_enc".to_owned(), dictionary.b_enc.clone()),
        ("W_dec".to_owned(), dictionary.w_dec.clone()),
        ("b_dec".to_owned(), dictionary.b_dec.clone()),
    ]);
    candle_core::safetensors::save(&tensors, folder.join("sae_weights.safetensors"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use glassbox_model::{Gpt2Config, Gpt2Weights};

    #[test]
    fn a_transcoder_learns_a_small_mlp_and_round_trips_through_saelens_files() {
        let config = Gpt2Config {
            n_layer: 1,
            n_head: 2,
            n_embd: 16,
            n_positions: 32,
            vocab_size: 50,
            layer_norm_epsilon: 1e-5,
            n_inner: Some(32),
            activation_function: glassbox_model::Activation::GeluTanh,
        };
        let model = Gpt2::new(config.clone(), Gpt2Weights::init(&config, 3).unwrap()).unwrap();
        let mut rng = SplitMix64::new(5);
        let tokens: Vec<u32> = (0..2048).map(|_| (rng.next_u64() % 50) as u32).collect();
        let data = collect(&model, &tokens[..1536], 32, 0).unwrap();
        let held_out = collect(&model, &tokens[1536..], 32, 0).unwrap();
        assert_eq!(data.input.dims(), &[1536, 16]);
        let transcoder_config = TranscoderConfig {
            layer: 0,
            d_sae: 128,
            k: 8,
            steps: 300,
            batch_size: 256,
            lr: 3e-3,
            seed: 1,
        };
        let transcoder = train(&transcoder_config, &data).unwrap();
        let q = quality(&transcoder, &held_out).unwrap();
        assert!(q.fvu < 0.3, "{q:?}");
        assert!(q.mean_l0 > 7.0 && q.mean_l0 <= 8.0, "{q:?}");
        let folder =
            std::env::temp_dir().join(format!("glassbox-transcoder-{}", std::process::id()));
        save(&transcoder, &folder).unwrap();
        let reloaded = Dictionary::load(
            &std::fs::read_to_string(folder.join("cfg.json")).unwrap(),
            &std::fs::read(folder.join("sae_weights.safetensors")).unwrap(),
        )
        .unwrap();
        let _ = std::fs::remove_dir_all(&folder);
        assert_eq!(
            reloaded.config.metadata.hook_name,
            "blocks.0.ln2.hook_normalized"
        );
        assert_eq!(quality(&reloaded, &held_out).unwrap(), q);
    }
}
