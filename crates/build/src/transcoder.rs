//! Training a TopK transcoder (Dunefsky et al., 2024; TopK after Gao et al., 2024) for one
//! MLP: it reads `blocks.{l}.ln2.hook_normalized` and predicts `blocks.{l}.hook_mlp_out`
//! through a few thousand sparse features. Saved in the SAELens layout.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{D, DType, Device, Tensor, Var};
use glassbox_dict::{Architecture, DictConfig, Dictionary};
use glassbox_model::rng::SplitMix64;
use glassbox_model::{Gpt2, HookPoint, Hooks, Norm};

use crate::adamw::{AdamW, AdamWConfig, learning_rate};
use crate::error::{BuildError, Result, io};

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
    /// A feature that has not fired for this many rows counts as dead and is trained by
    /// the auxiliary loss.
    pub dead_after_rows: usize,
    /// Dead features the auxiliary loss uses per row.
    pub k_aux: usize,
    /// The auxiliary loss's weight.
    pub aux_coefficient: f64,
}

impl TranscoderConfig {
    /// Settings that suit the default pack's width-256 model.
    #[must_use]
    pub fn for_layer(layer: usize, d_sae: usize, seed: u64) -> Self {
        Self {
            layer,
            d_sae,
            k: 32,
            steps: 1500,
            batch_size: 1024,
            lr: 2e-3,
            seed: seed ^ (layer as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            dead_after_rows: 10_000,
            k_aux: 128,
            aux_coefficient: 1.0 / 8.0,
        }
    }
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
///
/// TopK keeps each row's `k` largest pre-activations (Gao et al., 2024). Decoder rows are
/// kept at unit norm, so activations are comparable across features, and an auxiliary
/// loss (AuxK) teaches features that stopped firing to predict what the live ones miss,
/// which brings most of them back.
pub fn train(config: &TranscoderConfig, data: &Activations) -> Result<Dictionary> {
    let (rows, d) = data.input.dims2()?;
    if rows == 0 || config.k == 0 || config.k > config.d_sae {
        return Err(BuildError::Checkpoint(
            "transcoder: no data, or k outside 1..=d_sae".to_owned(),
        ));
    }
    let mut rng = SplitMix64::new(config.seed);
    let (w_enc, w_dec) = initial_weights(d, config.d_sae, &mut rng)?;
    let w_enc = Var::from_tensor(&w_enc)?;
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
    let mut rows_since_fired = vec![0_usize; config.d_sae];
    let params = Params {
        w_enc: &w_enc,
        b_enc: &b_enc,
        w_dec: &w_dec,
        b_dec: &b_dec,
    };
    for step in 0..config.steps {
        if RESAMPLE_AT
            .iter()
            .any(|f| step == (config.steps as f64 * f) as usize)
            && step > 0
        {
            resample_dead(config, data, &params, &mut rows_since_fired, &mut rng)?;
        }
        let picks: Vec<u32> = (0..config.batch_size)
            .map(|_| (rng.next_u64() % rows as u64) as u32)
            .collect();
        let picks = Tensor::new(picks.as_slice(), &Device::Cpu)?;
        let x = data.input.index_select(&picks, 0)?;
        let y = data.target.index_select(&picks, 0)?;
        let linear = x
            .matmul(w_enc.as_tensor())?
            .broadcast_add(b_enc.as_tensor())?;
        let pre = linear.relu()?;
        let (mask, fired) = top_k_mask(&pre, config.k, None)?;
        let acts = (&pre * mask)?;
        let prediction = acts
            .matmul(w_dec.as_tensor())?
            .broadcast_add(b_dec.as_tensor())?;
        let error = (&y - prediction)?;
        // Mean squared error relative to the target's variance: the fraction unexplained.
        let mut loss = error.sqr()?.mean_all()?.broadcast_div(&variance)?;
        let dead = track_dead(config, &mut rows_since_fired, &fired);
        let n_dead = dead.iter().filter(|&&d| d).count();
        if n_dead > 0 {
            // The dead features' largest pre-activations, before the ReLU: a feature whose
            // pre-activation never rises above zero still gets a gradient that lifts it
            // where it would help.
            let (aux_mask, _) = top_k_mask(&linear, config.k_aux.min(n_dead), Some(&dead))?;
            let aux_prediction = (&linear * aux_mask)?.matmul(w_dec.as_tensor())?;
            let aux_loss = (error.detach() - aux_prediction)?
                .sqr()?
                .mean_all()?
                .broadcast_div(&variance)?;
            loss = (loss + (aux_loss * config.aux_coefficient)?)?;
        }
        let grads = loss.backward()?;
        optimizer.step(
            &grads,
            learning_rate(step, config.steps / 20 + 1, config.steps, config.lr, 0.1),
        )?;
        w_dec.set(&unit_rows(w_dec.as_tensor())?)?;
    }
    Ok(finished(config, d, &params))
}

/// Counts rows since each feature last fired; returns which count as dead.
fn track_dead(
    config: &TranscoderConfig,
    rows_since_fired: &mut [usize],
    fired: &[bool],
) -> Vec<bool> {
    for (since, fired) in rows_since_fired.iter_mut().zip(fired) {
        *since = if *fired {
            0
        } else {
            *since + config.batch_size
        };
    }
    rows_since_fired
        .iter()
        .map(|&since| since >= config.dead_after_rows)
        .collect()
}

/// The trained tensors as a SAELens-layout TopK transcoder.
fn finished(config: &TranscoderConfig, d: usize, params: &Params<'_>) -> Dictionary {
    Dictionary {
        config: DictConfig {
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
        },
        w_enc: params.w_enc.as_tensor().detach(),
        b_enc: params.b_enc.as_tensor().detach(),
        w_dec: params.w_dec.as_tensor().detach(),
        b_dec: params.b_dec.as_tensor().detach(),
        threshold: None,
    }
}

/// The starting `W_enc` and `W_dec`: decoder rows of unit norm in random directions, the
/// encoder their transpose over `sqrt(d)`, so each feature first reads the direction it
/// writes.
fn initial_weights(d: usize, d_sae: usize, rng: &mut SplitMix64) -> Result<(Tensor, Tensor)> {
    let raw: Vec<f32> = (0..d_sae * d).map(|_| rng.next_normal() as f32).collect();
    let w_dec = unit_rows(&Tensor::from_vec(raw, (d_sae, d), &Device::Cpu)?)?;
    let w_enc = (w_dec.t()?.contiguous()? * (1.0 / (d as f64).sqrt()))?;
    Ok((w_enc, w_dec))
}

/// When in training (as fractions of the steps) features that have not fired for a long
/// while are given a fresh start.
const RESAMPLE_AT: [f64; 3] = [0.2, 0.4, 0.6];

/// Rows without firing after which a feature is resampled.
const RESAMPLE_AFTER_ROWS: usize = 100_000;

/// The trained tensors.
struct Params<'a> {
    w_enc: &'a Var,
    b_enc: &'a Var,
    w_dec: &'a Var,
    b_dec: &'a Var,
}

/// Gives each long-dead feature a fresh start where the transcoder does worst (after
/// Bricken et al., 2023): rows are drawn with probability proportional to their squared
/// error; the feature's decoder row becomes that row's error direction and its encoder
/// column that row's input direction, scaled to a fifth of the live columns' mean norm.
fn resample_dead(
    config: &TranscoderConfig,
    data: &Activations,
    params: &Params<'_>,
    rows_since_fired: &mut [usize],
    rng: &mut SplitMix64,
) -> Result<()> {
    let dead: Vec<usize> = (0..config.d_sae)
        .filter(|&f| rows_since_fired[f] >= RESAMPLE_AFTER_ROWS)
        .collect();
    if dead.is_empty() {
        return Ok(());
    }
    let (rows, d) = data.input.dims2()?;
    let sample = (8 * config.batch_size).min(rows);
    let picks: Vec<u32> = (0..sample)
        .map(|_| (rng.next_u64() % rows as u64) as u32)
        .collect();
    let picks = Tensor::new(picks.as_slice(), &Device::Cpu)?;
    let x = data.input.index_select(&picks, 0)?;
    let y = data.target.index_select(&picks, 0)?;
    let pre = x
        .matmul(params.w_enc.as_tensor())?
        .broadcast_add(params.b_enc.as_tensor())?
        .relu()?;
    let (mask, _) = top_k_mask(&pre, config.k, None)?;
    let prediction = (&pre * mask)?
        .matmul(params.w_dec.as_tensor())?
        .broadcast_add(params.b_dec.as_tensor())?;
    let errors: Vec<Vec<f32>> = (y - prediction)?.to_vec2()?;
    let inputs: Vec<Vec<f32>> = x.to_vec2()?;
    let weights: Vec<f64> = errors
        .iter()
        .map(|e| e.iter().map(|v| f64::from(v * v)).sum())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut w_enc: Vec<Vec<f32>> = params.w_enc.as_tensor().t()?.to_vec2()?;
    let mut w_dec: Vec<Vec<f32>> = params.w_dec.as_tensor().to_vec2()?;
    let mut b_enc: Vec<f32> = params.b_enc.as_tensor().to_vec1()?;
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    let live: Vec<f32> = (0..config.d_sae)
        .filter(|f| !dead.contains(f))
        .map(|f| norm(&w_enc[f]))
        .collect();
    let scale = 0.2 * live.iter().sum::<f32>() / live.len().max(1) as f32;
    for &f in &dead {
        let mut target = rng.next_f64() * total;
        let row = weights
            .iter()
            .position(|&w| {
                target -= w;
                target <= 0.0
            })
            .unwrap_or(sample - 1);
        let (e, i) = (&errors[row], &inputs[row]);
        let (en, inn) = (norm(e), norm(i));
        w_dec[f] = e.iter().map(|v| v / en).collect();
        w_enc[f] = i.iter().map(|v| v / inn * scale).collect();
        b_enc[f] = 0.0;
        rows_since_fired[f] = 0;
    }
    let flat = |m: Vec<Vec<f32>>| -> Vec<f32> { m.into_iter().flatten().collect() };
    params.w_enc.set(
        &Tensor::from_vec(flat(w_enc), (config.d_sae, d), &Device::Cpu)?
            .t()?
            .contiguous()?,
    )?;
    params.w_dec.set(&Tensor::from_vec(
        flat(w_dec),
        (config.d_sae, d),
        &Device::Cpu,
    )?)?;
    params
        .b_enc
        .set(&Tensor::from_vec(b_enc, config.d_sae, &Device::Cpu)?)?;
    Ok(())
}

/// `x` with every row scaled to unit L2 norm.
fn unit_rows(x: &Tensor) -> Result<Tensor> {
    let norms = (x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()? + 1e-12)?;
    Ok(x.broadcast_div(&norms)?)
}

/// 1 at each row's `k` largest entries (among the columns `allowed`, if given), 0
/// elsewhere; and, per column, whether any row kept it with a value above zero. The mask
/// is a constant: no gradient flows through the choice, only through the kept values.
fn top_k_mask(x: &Tensor, k: usize, allowed: Option<&[bool]>) -> Result<(Tensor, Vec<bool>)> {
    let (rows, width) = x.dims2()?;
    let values: Vec<f32> = x.flatten_all()?.to_vec1()?;
    let columns: Vec<usize> = match allowed {
        Some(allowed) => (0..width).filter(|&i| allowed[i]).collect(),
        None => (0..width).collect(),
    };
    let k = k.min(columns.len());
    let mut mask = vec![0.0_f32; rows * width];
    let mut fired = vec![false; width];
    let mut order = columns.clone();
    for r in 0..rows {
        let row = &values[r * width..(r + 1) * width];
        order.copy_from_slice(&columns);
        if k > 0 && k < order.len() {
            order.select_nth_unstable_by(k - 1, |&a, &b| row[b].total_cmp(&row[a]));
        }
        for &i in &order[..k] {
            mask[r * width + i] = 1.0;
            fired[i] |= row[i] > 0.0;
        }
    }
    Ok((Tensor::from_vec(mask, (rows, width), &Device::Cpu)?, fired))
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

/// Writes the SAELens files, `cfg.json` and `sae_weights.safetensors` (f16, as the pack
/// ships them), into `folder`.
pub fn save(dictionary: &Dictionary, folder: &Path) -> Result<()> {
    std::fs::create_dir_all(folder).map_err(io(folder))?;
    let cfg = serde_json::to_string_pretty(&dictionary.config)
        .map_err(|e| BuildError::Checkpoint(e.to_string()))?;
    let cfg_path = folder.join("cfg.json");
    std::fs::write(&cfg_path, cfg).map_err(io(&cfg_path))?;
    let mut tensors = HashMap::new();
    for (name, tensor) in [
        ("W_enc", &dictionary.w_enc),
        ("b_enc", &dictionary.b_enc),
        ("W_dec", &dictionary.w_dec),
        ("b_dec", &dictionary.b_dec),
    ] {
        tensors.insert(name.to_owned(), tensor.to_dtype(DType::F16)?);
    }
    candle_core::safetensors::save(&tensors, folder.join(WEIGHTS_FILE))?;
    Ok(())
}

/// Writes `cfg.json` and `sae_weights.safetensors` with 8-bit matrices (see
/// `Dictionary::to_safetensors_8bit`), as a large pack ships its transcoders.
pub fn save_8bit(dictionary: &Dictionary, folder: &Path) -> Result<()> {
    std::fs::create_dir_all(folder).map_err(io(folder))?;
    let cfg = serde_json::to_string_pretty(&dictionary.config)
        .map_err(|e| BuildError::Checkpoint(e.to_string()))?;
    let cfg_path = folder.join("cfg.json");
    std::fs::write(&cfg_path, cfg).map_err(io(&cfg_path))?;
    let weights = folder.join(WEIGHTS_FILE);
    std::fs::write(&weights, dictionary.to_safetensors_8bit()?).map_err(io(&weights))
}

/// The weights file's name in the SAELens layout.
pub const WEIGHTS_FILE: &str = "sae_weights.safetensors";

/// Reads what [`save`] wrote.
pub fn load(folder: &Path) -> Result<Dictionary> {
    let cfg_path = folder.join("cfg.json");
    let weights_path = folder.join(WEIGHTS_FILE);
    let cfg = std::fs::read_to_string(&cfg_path).map_err(io(&cfg_path))?;
    let weights = std::fs::read(&weights_path).map_err(io(&weights_path))?;
    Ok(Dictionary::load(&cfg, &weights)?)
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
        // GPT-2's initialisation makes a fresh MLP's output tiny; scale it up to the size
        // a trained MLP writes.
        let weights = Gpt2Weights::init(&config, 3)
            .unwrap()
            .try_map(|name, t| {
                if name.ends_with("mlp.c_proj.weight") {
                    Ok((t * 30.0)?)
                } else {
                    Ok(t.clone())
                }
            })
            .unwrap();
        let model = Gpt2::new(config.clone(), weights).unwrap();
        let mut rng = SplitMix64::new(5);
        let tokens: Vec<u32> = (0..2048).map(|_| (rng.next_u64() % 50) as u32).collect();
        let data = collect(&model, &tokens[..1536], 32, 0).unwrap();
        let held_out = collect(&model, &tokens[1536..], 32, 0).unwrap();
        assert_eq!(data.input.dims(), &[1536, 16]);
        let transcoder_config = TranscoderConfig {
            d_sae: 128,
            k: 8,
            steps: 800,
            batch_size: 256,
            lr: 3e-3,
            dead_after_rows: 2048,
            k_aux: 8,
            ..TranscoderConfig::for_layer(0, 128, 1)
        };
        let transcoder = train(&transcoder_config, &data).unwrap();
        let q = quality(&transcoder, &held_out).unwrap();
        assert!(q.fvu < 0.3, "{q:?}");
        assert!(q.mean_l0 > 7.0 && q.mean_l0 <= 8.0, "{q:?}");
        let folder =
            std::env::temp_dir().join(format!("glassbox-transcoder-{}", std::process::id()));
        save(&transcoder, &folder).unwrap();
        let reloaded = load(&folder).unwrap();
        let _ = std::fs::remove_dir_all(&folder);
        assert_eq!(
            reloaded.config.metadata.hook_name,
            "blocks.0.ln2.hook_normalized"
        );
        // Stored in f16: the same quality within rounding.
        let q16 = quality(&reloaded, &held_out).unwrap();
        assert!((q16.fvu - q.fvu).abs() < 1e-3, "{q:?} {q16:?}");
    }
}
