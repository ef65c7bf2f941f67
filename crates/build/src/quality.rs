//! How good a model's transcoders are, measured on held-out text one batch at a time (so
//! a model of any size fits): each block's fraction of variance unexplained, mean L0 and
//! dead features; the held-out loss of the model, with every MLP replaced by its
//! transcoder (with and without the error terms), and with each block's alone.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use glassbox_dict::{Dictionary, splice};
use glassbox_model::{HookPoint, Hooks, Model, Norm};
use indicatif::ProgressBar;

use crate::dictionaries::{DictionaryReport, LayerReport, windows};
use crate::error::{BuildError, Result};
use crate::train::cross_entropy;

/// What to measure on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QualityOptions {
    /// Tokens per window read (each window also gives its next token as a target).
    pub window: usize,
    /// Windows (at most) for FVU, L0 and dead features.
    pub quality_windows: usize,
    /// Windows (at most, the first of the above) for the losses: each costs `3 + n_layer`
    /// passes. With 0 no loss is measured, and the report's losses are NaN.
    pub loss_windows: usize,
    /// Positions at the start of each window left out of FVU, L0 and dead features, and
    /// where the spliced passes keep the MLP's own output (a first position whose
    /// activations are outliers the transcoders were not trained on).
    pub skip_first: usize,
    /// Activation rows each transcoder was trained on (for the report).
    pub training_rows: usize,
}

/// Per block, what is summed over the held-out rows.
#[derive(Debug, Clone)]
struct Sums {
    squared_error: f64,
    target_sum: Vec<f64>,
    target_squares: f64,
    rows: usize,
    active: usize,
    fired: Vec<bool>,
}

impl Sums {
    fn new(d_out: usize, d_sae: usize) -> Self {
        Self {
            squared_error: 0.0,
            target_sum: vec![0.0; d_out],
            target_squares: 0.0,
            rows: 0,
            active: 0,
            fired: vec![false; d_sae],
        }
    }

    fn fvu(&self) -> f64 {
        let n = self.rows.max(1) as f64;
        let mean_squares: f64 = self.target_sum.iter().map(|s| s * s / n).sum();
        self.squared_error / (self.target_squares - mean_squares).max(1e-30)
    }
}

/// Measures `dictionaries` (one per block, in order) on `eval_tokens`.
pub fn measure(
    model: &Model,
    dictionaries: &[Dictionary],
    eval_tokens: &[u32],
    options: QualityOptions,
    progress: &ProgressBar,
) -> Result<DictionaryReport> {
    let QualityOptions {
        window, skip_first, ..
    } = options;
    let all = windows(eval_tokens, window + 1, options.quality_windows);
    let shared: Vec<Arc<Dictionary>> = dictionaries.iter().cloned().map(Arc::new).collect();
    let n = dictionaries.len();
    let mut sums: Vec<Sums> = dictionaries
        .iter()
        .map(|d| Sums::new(d.w_dec.dim(1).unwrap_or(0), d.config.d_sae))
        .collect();
    // Losses: the model, all spliced, all spliced with errors, then each block alone.
    let mut nats = vec![0.0_f64; 3 + n];
    let mut counted = 0_usize;
    progress.set_length(all.len() as u64);
    for (b, batch) in all.chunks(8).enumerate() {
        let inputs = batch_tensor(batch, 0, window)?;
        let with_losses = b * 8 < options.loss_windows;
        let mut clean = Hooks::none();
        for l in 0..n {
            clean = clean
                .cache(HookPoint::LnNormalized(l, Norm::Ln2))
                .cache(HookPoint::MlpOut(l));
        }
        let logits = if with_losses {
            Some(model.forward(&inputs, &mut clean)?)
        } else {
            model.residual(&inputs, &mut clean)?;
            None
        };
        let cache = clean.take_cache();
        let mut all_spliced = Hooks::none();
        let mut with_errors = Hooks::none();
        let mut alone = Vec::new();
        for (l, dictionary) in shared.iter().enumerate() {
            let input = &cache[&HookPoint::LnNormalized(l, Norm::Ln2)];
            let output = &cache[&HookPoint::MlpOut(l)];
            let (rows_b, rows_p, d) = input.dims3()?;
            let features = dictionary.encode(&input.reshape((rows_b * rows_p, d))?)?;
            let predicted =
                dictionary
                    .decode(&features)?
                    .reshape((rows_b, rows_p, output.dim(2)?))?;
            let error = (output - &predicted)?;
            add_sums(
                &mut sums[l],
                &features.reshape((rows_b, rows_p, ()))?,
                &error,
                output,
                skip_first,
            )?;
            if with_losses {
                let kept = keep_first(&error, skip_first)?;
                all_spliced = splice(all_spliced, dictionary.clone(), kept.clone())?;
                with_errors = splice(with_errors, dictionary.clone(), Some(error))?;
                alone.push(splice(Hooks::none(), dictionary.clone(), kept)?);
            }
        }
        if let Some(logits) = logits {
            let targets = batch_tensor(batch, 1, window)?;
            let spliced = [all_spliced, with_errors].into_iter().chain(alone);
            add_losses(model, &inputs, &targets, &logits, spliced, &mut nats)?;
            counted += batch.len() * window;
        }
        progress.inc(batch.len() as u64);
    }
    if counted == 0 && options.loss_windows > 0 {
        return Err(BuildError::Checkpoint(
            "no held-out window to measure the transcoders on".to_owned(),
        ));
    }
    let per_token = |i: usize| {
        if counted == 0 {
            f64::NAN
        } else {
            nats[i] / counted as f64
        }
    };
    let layers = sums
        .iter()
        .enumerate()
        .map(|(layer, s)| LayerReport {
            layer,
            fvu: s.fvu(),
            mean_l0: s.active as f64 / s.rows.max(1) as f64,
            dead_fraction: s.fired.iter().filter(|&&f| !f).count() as f64
                / s.fired.len().max(1) as f64,
            loss_this_layer_spliced: per_token(3 + layer),
        })
        .collect();
    Ok(DictionaryReport {
        layers,
        loss_model: per_token(0),
        loss_all_spliced: per_token(1),
        loss_all_spliced_with_errors: per_token(2),
        training_rows: options.training_rows,
        eval_tokens: counted,
    })
}

/// Adds one batch's nats to `nats`: the clean pass's (from its `logits`), then each
/// spliced pass's in order.
fn add_losses(
    model: &Model,
    inputs: &Tensor,
    targets: &Tensor,
    logits: &Tensor,
    spliced: impl Iterator<Item = Hooks>,
    nats: &mut [f64],
) -> Result<()> {
    let tokens = targets.elem_count() as f64;
    let loss = |logits: &Tensor| -> Result<f64> {
        let nats = cross_entropy(logits, targets)?
            .to_dtype(DType::F32)?
            .to_scalar::<f32>()?;
        Ok(f64::from(nats) * tokens)
    };
    nats[0] += loss(logits)?;
    for (i, mut hooks) in spliced.enumerate() {
        nats[1 + i] += loss(&model.forward(inputs, &mut hooks)?)?;
    }
    Ok(())
}

/// `[batch, window]` ids: each window's tokens from `shift` on.
fn batch_tensor(batch: &[&[u32]], shift: usize, window: usize) -> Result<Tensor> {
    let ids: Vec<u32> = batch
        .iter()
        .flat_map(|w| w[shift..shift + window].iter().copied())
        .collect();
    Ok(Tensor::from_vec(ids, (batch.len(), window), &Device::Cpu)?)
}

/// Adds one batch of one block to its sums, positions before `skip_first` left out.
fn add_sums(
    sums: &mut Sums,
    features: &Tensor,
    error: &Tensor,
    target: &Tensor,
    skip_first: usize,
) -> Result<()> {
    let len = target.dim(1)?;
    let from = skip_first.min(len);
    let rows = |t: &Tensor| -> Result<Vec<Vec<f32>>> {
        let t = t.narrow(1, from, len - from)?;
        let width = t.dim(2)?;
        Ok(t.reshape(((), width))?.to_vec2()?)
    };
    for row in rows(error)? {
        sums.squared_error += row.iter().map(|e| f64::from(e * e)).sum::<f64>();
    }
    for row in rows(target)? {
        for (s, v) in sums.target_sum.iter_mut().zip(&row) {
            *s += f64::from(*v);
        }
        sums.target_squares += row.iter().map(|v| f64::from(v * v)).sum::<f64>();
        sums.rows += 1;
    }
    for row in rows(features)? {
        for (f, &a) in row.iter().enumerate() {
            if a > 0.0 {
                sums.active += 1;
                sums.fired[f] = true;
            }
        }
    }
    Ok(())
}

/// The error term that keeps the MLP's own output at the first `skip_first` positions and
/// the transcoder's elsewhere (`None` when nothing is kept).
fn keep_first(error: &Tensor, skip_first: usize) -> Result<Option<Tensor>> {
    if skip_first == 0 {
        return Ok(None);
    }
    let (batch, len, width) = error.dims3()?;
    let kept = skip_first.min(len);
    let mask: Vec<f32> = (0..len).map(|p| if p < kept { 1.0 } else { 0.0 }).collect();
    let mask = Tensor::from_vec(mask, (1, len, 1), &Device::Cpu)?;
    Ok(Some(
        error.broadcast_mul(&mask)?.reshape((batch, len, width))?,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

    use super::*;
    use crate::dictionaries::collect_all;
    use crate::transcoder::{self, TranscoderConfig};
    use glassbox_model::{Gpt2, Gpt2Config, Gpt2Weights};

    fn tiny() -> (Gpt2, Vec<Dictionary>, Vec<u32>) {
        let config = Gpt2Config {
            n_layer: 2,
            n_head: 2,
            n_embd: 16,
            n_positions: 32,
            vocab_size: 24,
            layer_norm_epsilon: 1e-5,
            n_inner: Some(32),
            activation_function: glassbox_model::Activation::GeluTanh,
        };
        let model = Gpt2::new(config.clone(), Gpt2Weights::init(&config, 4).unwrap()).unwrap();
        let mut rng = glassbox_model::rng::SplitMix64::new(9);
        let tokens: Vec<u32> = (0..40 * 9).map(|_| (rng.next_u64() % 24) as u32).collect();
        let windows: Vec<&[u32]> = tokens.chunks(8).collect();
        let data = collect_all(&model, &windows).unwrap();
        let dictionaries = (0..2)
            .map(|l| {
                let c = TranscoderConfig {
                    k: 4,
                    steps: 20,
                    batch_size: 32,
                    ..TranscoderConfig::for_layer(l, 24, 1)
                };
                transcoder::train(&c, &data[l]).unwrap()
            })
            .collect();
        (model, dictionaries, tokens)
    }

    #[test]
    fn streamed_quality_equals_the_dense_measure_and_errors_give_back_the_model() {
        let (gpt2, dictionaries, tokens) = tiny();
        let model = Model::from(gpt2.clone());
        let options = QualityOptions {
            window: 8,
            quality_windows: usize::MAX,
            loss_windows: usize::MAX,
            skip_first: 0,
            training_rows: 0,
        };
        let report = measure(
            &model,
            &dictionaries,
            &tokens,
            options,
            &ProgressBar::hidden(),
        )
        .unwrap();
        // The same windows' activations all at once, measured densely.
        let inputs: Vec<&[u32]> = windows(&tokens, 9, usize::MAX)
            .into_iter()
            .map(|w| &w[..8])
            .collect();
        let held_out = collect_all(&gpt2, &inputs).unwrap();
        for (layer, (d, data)) in dictionaries.iter().zip(&held_out).enumerate() {
            let dense = transcoder::quality(d, data).unwrap();
            let streamed = &report.layers[layer];
            assert!((streamed.fvu - dense.fvu).abs() < 1e-4 * dense.fvu.max(1.0));
            assert!((streamed.mean_l0 - dense.mean_l0).abs() < 1e-9);
            assert!((streamed.dead_fraction - dense.dead_fraction).abs() < 1e-12);
        }
        assert!(report.loss_model > 0.0);
        assert!((report.loss_all_spliced - report.loss_model).abs() > 1e-6);
        assert!(
            (report.loss_all_spliced_with_errors - report.loss_model).abs() < 1e-4,
            "with its error terms the replacement is the model: {} vs {}",
            report.loss_all_spliced_with_errors,
            report.loss_model
        );
        // Keeping the MLP at every position undoes the splice.
        let everywhere = QualityOptions {
            skip_first: 8,
            ..options
        };
        let kept = measure(
            &model,
            &dictionaries,
            &tokens,
            everywhere,
            &ProgressBar::hidden(),
        )
        .unwrap();
        assert!((kept.loss_all_spliced - report.loss_model).abs() < 1e-4);
        assert!(
            kept.layers[0].mean_l0.abs() < f64::EPSILON,
            "no rows are left to measure"
        );
        // Without losses, the same fit and no loss.
        let fit_only = QualityOptions {
            loss_windows: 0,
            ..options
        };
        let fit = measure(
            &model,
            &dictionaries,
            &tokens,
            fit_only,
            &ProgressBar::hidden(),
        )
        .unwrap();
        for (a, b) in fit.layers.iter().zip(&report.layers) {
            assert!((a.fvu - b.fvu).abs() < 1e-12 && a.loss_this_layer_spliced.is_nan());
        }
        assert!(fit.loss_model.is_nan() && fit.eval_tokens == 0);
    }
}
