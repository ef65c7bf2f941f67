//! A TopK transcoder trained with hand-written sparse gradients, for models too wide for the
//! dense autograd of [`crate::transcoder`]: only the encoder's forward matmul is dense; the
//! decoder, the backward pass and the auxiliary loss touch the `k` (and `k_aux`) features a
//! row uses. The state (weights, Adam moments, firing counts, step) saves and loads whole,
//! so a streamed build resumes exactly.
//!
//! The objective is [`crate::transcoder::train`]'s: squared error over the target's
//! variance, plus AuxK on the features that have not fired for a while, with decoder rows
//! kept at unit norm.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use glassbox_dict::{Architecture, DictConfig, DictMetadata, Dictionary};
use glassbox_model::rng::SplitMix64;

use crate::adamw::learning_rate;
use crate::error::{BuildError, Result};

/// What to train and how.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseTopKConfig {
    /// The input's width.
    pub d_in: usize,
    /// The output's width.
    pub d_out: usize,
    /// Features.
    pub d_sae: usize,
    /// Active features per row.
    pub k: usize,
    /// Dead features the auxiliary loss uses per row.
    pub k_aux: usize,
    /// The auxiliary loss's weight.
    pub aux_coefficient: f32,
    /// A feature that has not fired for this many rows counts as dead.
    pub dead_after_rows: u64,
    /// Peak learning rate.
    pub lr: f64,
    /// Steps of linear warm-up.
    pub warmup: usize,
    /// Steps of the cosine schedule (training may stop earlier).
    pub total_steps: usize,
    /// Every this many steps (before `resample_until`), dead features restart where the
    /// transcoder does worst; 0 never.
    pub resample_every: usize,
    /// No resampling from this step on (the last features need time to settle).
    pub resample_until: usize,
    /// Adam's first-moment decay.
    pub beta1: f32,
    /// Adam's second-moment decay.
    pub beta2: f32,
    /// The hooks it reads and writes, for its `cfg.json`.
    pub hook_name: String,
    /// See `hook_name`.
    pub hook_name_out: String,
}

/// One transcoder in training.
#[derive(Debug, Clone)]
pub struct SparseTopK {
    /// Settings.
    pub config: SparseTopKConfig,
    /// Encoder rows, `[d_sae, d_in]` (the transpose of SAELens' `W_enc`, so that a
    /// feature's row is contiguous).
    enc: Vec<f32>,
    b_enc: Vec<f32>,
    /// Decoder rows `[d_sae, d_out]`, unit norm.
    dec: Vec<f32>,
    b_dec: Vec<f32>,
    moments: [Moments; 4],
    rows_since_fired: Vec<u64>,
    step: usize,
}

/// Adam's moment estimates of one parameter.
#[derive(Debug, Clone)]
struct Moments {
    m: Vec<f32>,
    v: Vec<f32>,
}

impl Moments {
    fn zeros(n: usize) -> Self {
        Self {
            m: vec![0.0; n],
            v: vec![0.0; n],
        }
    }
}

/// Gradients of the loss with respect to each parameter, dense.
#[derive(Debug, Clone, PartialEq)]
pub struct Gradients {
    /// `[d_sae, d_in]`.
    pub enc: Vec<f32>,
    /// `[d_sae]`.
    pub b_enc: Vec<f32>,
    /// `[d_sae, d_out]`.
    pub dec: Vec<f32>,
    /// `[d_out]`.
    pub b_dec: Vec<f32>,
}

/// What one step measured on its batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// Squared error over the target's variance (the fraction of variance unexplained).
    pub fvu: f32,
    /// Features that count as dead after the step.
    pub dead: usize,
}

/// The names of the saved tensors, in [`SparseTopK::save`]'s order.
const PARAMS: [&str; 4] = ["enc", "b_enc", "dec", "b_dec"];

impl SparseTopK {
    /// A fresh transcoder: decoder rows of unit norm in random directions, each encoder
    /// row the same direction over `sqrt(d_in)` where the widths agree (else its own),
    /// biases zero; `b_dec` is set to the first batch's mean target.
    pub fn new(config: SparseTopKConfig, seed: u64) -> Result<Self> {
        let (d_in, d_out, d_sae) = (config.d_in, config.d_out, config.d_sae);
        if d_in == 0 || d_out == 0 || config.k == 0 || config.k > d_sae {
            return Err(BuildError::Checkpoint(
                "transcoder: zero widths, or k outside 1..=d_sae".to_owned(),
            ));
        }
        let mut rng = SplitMix64::new(seed);
        let mut dec: Vec<f32> = (0..d_sae * d_out)
            .map(|_| rng.next_normal() as f32)
            .collect();
        unit_rows(&mut dec, d_out);
        let scale = 1.0 / (d_in as f32).sqrt();
        let enc = if d_in == d_out {
            dec.iter().map(|v| v * scale).collect()
        } else {
            let mut enc: Vec<f32> = (0..d_sae * d_in)
                .map(|_| rng.next_normal() as f32)
                .collect();
            unit_rows(&mut enc, d_in);
            enc.iter().map(|v| v * scale).collect()
        };
        Ok(Self {
            moments: [
                Moments::zeros(d_sae * d_in),
                Moments::zeros(d_sae),
                Moments::zeros(d_sae * d_out),
                Moments::zeros(d_out),
            ],
            enc,
            b_enc: vec![0.0; d_sae],
            dec,
            b_dec: vec![0.0; d_out],
            rows_since_fired: vec![0; d_sae],
            step: 0,
            config,
        })
    }

    /// Steps taken.
    #[must_use]
    pub fn steps_taken(&self) -> usize {
        self.step
    }

    /// The encoder's pre-activations `x · W_enc + b_enc`, `[rows, d_sae]`, row-major.
    pub fn pre_activations(&self, x: &[f32]) -> Result<Vec<f32>> {
        let c = &self.config;
        let rows = x.len() / c.d_in;
        let x = Tensor::from_slice(x, (rows, c.d_in), &Device::Cpu)?;
        let enc = Tensor::from_slice(&self.enc, (c.d_sae, c.d_in), &Device::Cpu)?;
        let b_enc = Tensor::from_slice(&self.b_enc, c.d_sae, &Device::Cpu)?;
        let pre = x.matmul(&enc.t()?)?.broadcast_add(&b_enc)?;
        Ok(pre.flatten_all()?.to_vec1()?)
    }

    /// The loss's gradients on one batch (`x` `[rows, d_in]`, `y` `[rows, d_out]`), the
    /// features each row fired, and the batch's fraction of variance unexplained. `dead`
    /// marks the features the auxiliary loss may use.
    pub fn gradients(
        &self,
        x: &[f32],
        y: &[f32],
        dead: &[bool],
    ) -> Result<(Gradients, Vec<bool>, f32)> {
        let c = &self.config;
        let (d_in, d_out, d_sae) = (c.d_in, c.d_out, c.d_sae);
        let rows = x.len() / d_in;
        if rows == 0 || x.len() != rows * d_in || y.len() != rows * d_out {
            return Err(BuildError::Checkpoint(format!(
                "transcoder batch: {} inputs and {} targets do not make rows of {d_in} and {d_out}",
                x.len(),
                y.len()
            )));
        }
        let pre = self.pre_activations(x)?;
        let variance = variance(y, d_out);
        // d(loss)/d(prediction) = -2 · error / (rows · d_out · variance).
        let scale = -2.0 / (rows as f32 * d_out as f32 * variance);
        let dead_columns: Vec<usize> = (0..d_sae).filter(|&f| dead[f]).collect();
        let k_aux = c.k_aux.min(dead_columns.len());
        let mut grads = Gradients {
            enc: vec![0.0; d_sae * d_in],
            b_enc: vec![0.0; d_sae],
            dec: vec![0.0; d_sae * d_out],
            b_dec: vec![0.0; d_out],
        };
        let mut fired = vec![false; d_sae];
        let mut squared_error = 0.0_f64;
        let mut order: Vec<usize> = (0..d_sae).collect();
        let mut aux_order = dead_columns.clone();
        let mut error = vec![0.0_f32; d_out];
        let mut g = vec![0.0_f32; d_out];
        for r in 0..rows {
            let pre_r = &pre[r * d_sae..(r + 1) * d_sae];
            let (x_r, y_r) = (&x[r * d_in..(r + 1) * d_in], &y[r * d_out..(r + 1) * d_out]);
            let active = top_k(pre_r, c.k, &mut order);
            // The prediction and its error.
            error.copy_from_slice(y_r);
            for (e, b) in error.iter_mut().zip(&self.b_dec) {
                *e -= b;
            }
            for &f in active {
                let a = pre_r[f];
                if a > 0.0 {
                    fired[f] = true;
                    axpy(-a, &self.dec[f * d_out..(f + 1) * d_out], &mut error);
                }
            }
            squared_error += error.iter().map(|e| f64::from(e * e)).sum::<f64>();
            for (g, e) in g.iter_mut().zip(&error) {
                *g = scale * e;
            }
            axpy(1.0, &g, &mut grads.b_dec);
            for &f in active {
                let a = pre_r[f];
                if a > 0.0 {
                    self.backward_feature(f, a, &g, x_r, &mut grads);
                }
            }
            if k_aux > 0 {
                // AuxK: the dead features' largest pre-activations (before the ReLU, so a
                // feature that never rises above zero still learns) predict the error.
                aux_order.copy_from_slice(&dead_columns);
                let aux = top_k(pre_r, k_aux, &mut aux_order);
                let mut aux_error = error.clone();
                for &f in aux {
                    axpy(
                        -pre_r[f],
                        &self.dec[f * d_out..(f + 1) * d_out],
                        &mut aux_error,
                    );
                }
                let aux_scale = scale * c.aux_coefficient;
                let aux_g: Vec<f32> = aux_error.iter().map(|e| aux_scale * e).collect();
                for &f in aux {
                    self.backward_feature(f, pre_r[f], &aux_g, x_r, &mut grads);
                }
            }
        }
        let fvu = (squared_error / (rows as f64 * d_out as f64 * f64::from(variance))) as f32;
        Ok((grads, fired, fvu))
    }

    /// Adds one used feature's share of the gradients: its decoder row by `value · g`, its
    /// encoder row and bias by `(g · decoder row) · x`.
    fn backward_feature(&self, f: usize, value: f32, g: &[f32], x: &[f32], grads: &mut Gradients) {
        let (d_in, d_out) = (self.config.d_in, self.config.d_out);
        let row = &self.dec[f * d_out..(f + 1) * d_out];
        let d_value: f32 = row.iter().zip(g).map(|(w, g)| w * g).sum();
        axpy(value, g, &mut grads.dec[f * d_out..(f + 1) * d_out]);
        axpy(d_value, x, &mut grads.enc[f * d_in..(f + 1) * d_in]);
        grads.b_enc[f] += d_value;
    }

    /// Fits the starting point to the data: `b_dec` becomes the target's mean, and each
    /// encoder row is divided by the input's standard deviation per dimension, with
    /// `b_enc` taking away the mean's share. A model's residual stream has a few
    /// dimensions far larger than the rest; without this every feature would read mostly
    /// those, the same few would win every row's top k, and the rest would never fire.
    fn fit_to_first_batch(&mut self, x: &[f32], y: &[f32]) {
        let d_in = self.config.d_in;
        self.b_dec = column_means(y, self.config.d_out);
        let means = column_means(x, d_in);
        let rows = (x.len() / d_in).max(1) as f64;
        let mut spread = vec![0.0_f64; d_in];
        for row in x.chunks(d_in) {
            for ((s, v), mu) in spread.iter_mut().zip(row).zip(&means) {
                *s += f64::from(v - mu).powi(2);
            }
        }
        let deviations: Vec<f32> = spread
            .iter()
            .map(|s| ((s / rows).sqrt() as f32).max(1e-6))
            .collect();
        for (row, b) in self.enc.chunks_mut(d_in).zip(&mut self.b_enc) {
            for (w, sd) in row.iter_mut().zip(&deviations) {
                *w /= sd;
            }
            *b = -row.iter().zip(&means).map(|(w, mu)| w * mu).sum::<f32>();
        }
    }

    /// One optimiser step on a batch.
    pub fn step(&mut self, x: &[f32], y: &[f32]) -> Result<StepStats> {
        if self.step == 0 {
            self.fit_to_first_batch(x, y);
        }
        let dead: Vec<bool> = self
            .rows_since_fired
            .iter()
            .map(|&n| n >= self.config.dead_after_rows)
            .collect();
        let c = &self.config;
        if c.resample_every > 0
            && self.step > 0
            && self.step.is_multiple_of(c.resample_every)
            && self.step < c.resample_until
        {
            self.resample(x, y, &dead)?;
        }
        let (grads, fired, fvu) = self.gradients(x, y, &dead)?;
        let rows = (x.len() / self.config.d_in) as u64;
        for (since, fired) in self.rows_since_fired.iter_mut().zip(&fired) {
            *since = if *fired { 0 } else { *since + rows };
        }
        let c = &self.config;
        let lr = learning_rate(self.step, c.warmup, c.total_steps, c.lr, 0.1) as f32;
        let t = i32::try_from(self.step + 1).unwrap_or(i32::MAX);
        let (b1, b2) = (c.beta1, c.beta2);
        let corrections = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        let params = [
            (&mut self.enc, &grads.enc),
            (&mut self.b_enc, &grads.b_enc),
            (&mut self.dec, &grads.dec),
            (&mut self.b_dec, &grads.b_dec),
        ];
        for ((param, grad), moments) in params.into_iter().zip(&mut self.moments) {
            adam(param, grad, moments, lr, (b1, b2), corrections);
        }
        unit_rows(&mut self.dec, self.config.d_out);
        self.step += 1;
        let dead = self
            .rows_since_fired
            .iter()
            .filter(|&&n| n >= self.config.dead_after_rows)
            .count();
        Ok(StepStats { fvu, dead })
    }

    /// Restarts dead features on the rows of this batch the transcoder predicts worst
    /// (after Bricken et al., 2023): rows drawn without replacement with probability
    /// proportional to their squared error, at most one feature per row. The feature's
    /// decoder row becomes that row's error direction; its encoder row the row's input
    /// direction scaled to a fifth of the live rows' mean norm, its bias zero; its
    /// moments are cleared and its count of rows without firing starts again.
    fn resample(&mut self, x: &[f32], y: &[f32], dead: &[bool]) -> Result<()> {
        let (d_in, d_out, d_sae) = (self.config.d_in, self.config.d_out, self.config.d_sae);
        let dead_features: Vec<usize> = (0..d_sae).filter(|&f| dead[f]).collect();
        if dead_features.is_empty() {
            return Ok(());
        }
        let rows = x.len() / d_in;
        let pre = self.pre_activations(x)?;
        let mut order: Vec<usize> = (0..d_sae).collect();
        let mut errors = Vec::with_capacity(rows);
        for r in 0..rows {
            let pre_r = &pre[r * d_sae..(r + 1) * d_sae];
            let mut error: Vec<f32> = y[r * d_out..(r + 1) * d_out]
                .iter()
                .zip(&self.b_dec)
                .map(|(y, b)| y - b)
                .collect();
            for &f in top_k(pre_r, self.config.k, &mut order) {
                if pre_r[f] > 0.0 {
                    axpy(-pre_r[f], &self.dec[f * d_out..(f + 1) * d_out], &mut error);
                }
            }
            errors.push(error);
        }
        // Weighted sampling without replacement: each row's key is u^(1/w).
        let mut rng = SplitMix64::new(self.step as u64 ^ 0x5EED_0FDE_AD00);
        let mut keyed: Vec<(f64, usize)> = errors
            .iter()
            .enumerate()
            .map(|(r, e)| {
                let w: f64 = e.iter().map(|v| f64::from(v * v)).sum::<f64>().max(1e-30);
                (rng.next_f64().max(1e-300).ln() / w, r)
            })
            .collect();
        keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
        let live_norm = {
            let live: Vec<f32> = (0..d_sae)
                .filter(|&f| !dead[f])
                .map(|f| norm(&self.enc[f * d_in..(f + 1) * d_in]))
                .collect();
            live.iter().sum::<f32>() / live.len().max(1) as f32
        };
        let scale = if live_norm > 0.0 {
            0.2 * live_norm
        } else {
            1.0
        };
        for (&f, &(_, r)) in dead_features.iter().zip(&keyed) {
            let error = &errors[r];
            let e_norm = norm(error);
            for (w, e) in self.dec[f * d_out..(f + 1) * d_out].iter_mut().zip(error) {
                *w = e / e_norm;
            }
            let input = &x[r * d_in..(r + 1) * d_in];
            let i_norm = norm(input);
            for (w, v) in self.enc[f * d_in..(f + 1) * d_in].iter_mut().zip(input) {
                *w = scale * v / i_norm;
            }
            self.b_enc[f] = 0.0;
            self.rows_since_fired[f] = 0;
            for (moments, (start, width)) in
                self.moments
                    .iter_mut()
                    .zip([(f * d_in, d_in), (f, 1), (f * d_out, d_out), (0, 0)])
            {
                moments.m[start..start + width].fill(0.0);
                moments.v[start..start + width].fill(0.0);
            }
        }
        Ok(())
    }

    /// The transcoder as a SAELens-layout [`Dictionary`].
    pub fn to_dictionary(&self) -> Result<Dictionary> {
        let c = &self.config;
        let enc = Tensor::from_slice(&self.enc, (c.d_sae, c.d_in), &Device::Cpu)?;
        Ok(Dictionary {
            config: DictConfig {
                architecture: Architecture::TopK,
                d_in: c.d_in,
                d_sae: c.d_sae,
                d_out: (c.d_out != c.d_in).then_some(c.d_out),
                k: Some(c.k),
                apply_b_dec_to_input: false,
                metadata: DictMetadata {
                    hook_name: c.hook_name.clone(),
                    hook_name_out: Some(c.hook_name_out.clone()),
                    model_name: None,
                },
            },
            w_enc: enc.t()?.contiguous()?,
            b_enc: Tensor::from_slice(&self.b_enc, c.d_sae, &Device::Cpu)?,
            w_dec: Tensor::from_slice(&self.dec, (c.d_sae, c.d_out), &Device::Cpu)?,
            b_dec: Tensor::from_slice(&self.b_dec, c.d_out, &Device::Cpu)?,
            threshold: None,
        })
    }

    /// Writes the whole state (weights, moments, firing counts, step) to `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut tensors = HashMap::new();
        let values = [&self.enc, &self.b_enc, &self.dec, &self.b_dec];
        for ((name, value), moments) in PARAMS.iter().zip(values).zip(&self.moments) {
            for (suffix, data) in [("", value), (".m", &moments.m), (".v", &moments.v)] {
                let t = Tensor::from_slice(data, data.len(), &Device::Cpu)?;
                tensors.insert(format!("{name}{suffix}"), t);
            }
        }
        let since: Vec<i64> = self
            .rows_since_fired
            .iter()
            .map(|&n| i64::try_from(n).unwrap_or(i64::MAX))
            .collect();
        tensors.insert(
            "rows_since_fired".to_owned(),
            Tensor::from_vec(since, self.config.d_sae, &Device::Cpu)?,
        );
        tensors.insert(
            "step".to_owned(),
            Tensor::new(
                &[i64::try_from(self.step).unwrap_or(i64::MAX)],
                &Device::Cpu,
            )?,
        );
        candle_core::safetensors::save(&tensors, path)?;
        Ok(())
    }

    /// Reads what [`Self::save`] wrote, for `config` (which must give the same widths).
    pub fn load(config: SparseTopKConfig, path: &Path) -> Result<Self> {
        let tensors = candle_core::safetensors::load(path, &Device::Cpu)
            .map_err(|e| BuildError::Checkpoint(format!("{}: {e}", path.display())))?;
        let get = |name: &str, len: usize| -> Result<Vec<f32>> {
            let t = tensors.get(name).ok_or_else(|| {
                BuildError::Checkpoint(format!("{}: no tensor {name}", path.display()))
            })?;
            let v: Vec<f32> = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
            if v.len() == len {
                Ok(v)
            } else {
                Err(BuildError::Checkpoint(format!(
                    "{}: {name} holds {} values, not {len}",
                    path.display(),
                    v.len()
                )))
            }
        };
        let integers = |name: &str| -> Result<Vec<i64>> {
            let t = tensors.get(name).ok_or_else(|| {
                BuildError::Checkpoint(format!("{}: no tensor {name}", path.display()))
            })?;
            Ok(t.flatten_all()?.to_vec1()?)
        };
        let (d_in, d_out, d_sae) = (config.d_in, config.d_out, config.d_sae);
        let lens = [d_sae * d_in, d_sae, d_sae * d_out, d_out];
        let mut values = Vec::new();
        let mut moments = Vec::new();
        for (name, len) in PARAMS.iter().zip(lens) {
            values.push(get(name, len)?);
            moments.push(Moments {
                m: get(&format!("{name}.m"), len)?,
                v: get(&format!("{name}.v"), len)?,
            });
        }
        let since = integers("rows_since_fired")?;
        if since.len() != d_sae {
            return Err(BuildError::Checkpoint(format!(
                "{}: firing counts for {} features, not {d_sae}",
                path.display(),
                since.len()
            )));
        }
        let step = integers("step")?.first().copied().unwrap_or(0);
        let [enc, b_enc, dec, b_dec]: [Vec<f32>; 4] = values
            .try_into()
            .map_err(|_| BuildError::Checkpoint("four parameters".to_owned()))?;
        let moments: [Moments; 4] = moments
            .try_into()
            .map_err(|_| BuildError::Checkpoint("four parameters".to_owned()))?;
        Ok(Self {
            config,
            enc,
            b_enc,
            dec,
            b_dec,
            moments,
            rows_since_fired: since.iter().map(|&n| n.max(0) as u64).collect(),
            step: usize::try_from(step).unwrap_or(0),
        })
    }
}

/// The indices of the `k` largest values of `values` among `order` (which it reorders).
fn top_k<'a>(values: &[f32], k: usize, order: &'a mut [usize]) -> &'a [usize] {
    let k = k.min(order.len());
    if k > 0 && k < order.len() {
        order.select_nth_unstable_by(k - 1, |&a, &b| values[b].total_cmp(&values[a]));
    }
    &order[..k]
}

/// The L2 norm of `v` (at least a tiny positive number).
fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12)
}

/// `y += a · x`.
fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// Scales each row of `m` (rows of `width`) to unit L2 norm.
fn unit_rows(m: &mut [f32], width: usize) {
    for row in m.chunks_mut(width) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt() + 1e-12;
        for v in row {
            *v /= norm;
        }
    }
}

/// The mean of each column of `m` (rows of `width`).
fn column_means(m: &[f32], width: usize) -> Vec<f32> {
    let rows = (m.len() / width).max(1);
    let mut sums = vec![0.0_f64; width];
    for row in m.chunks(width) {
        for (s, v) in sums.iter_mut().zip(row) {
            *s += f64::from(*v);
        }
    }
    sums.iter().map(|s| (s / rows as f64) as f32).collect()
}

/// The mean squared deviation of `m`'s entries from their column means.
fn variance(m: &[f32], width: usize) -> f32 {
    let means = column_means(m, width);
    let total: f64 = m
        .chunks(width)
        .flat_map(|row| {
            row.iter()
                .zip(&means)
                .map(|(v, mu)| f64::from(v - mu).powi(2))
        })
        .sum();
    ((total / m.len().max(1) as f64) as f32).max(1e-12)
}

/// Adam (no weight decay) on one parameter.
fn adam(
    param: &mut [f32],
    grad: &[f32],
    moments: &mut Moments,
    lr: f32,
    (b1, b2): (f32, f32),
    (c1, c2): (f32, f32),
) {
    const EPS: f32 = 1e-8;
    for (((p, g), m), v) in param
        .iter_mut()
        .zip(grad)
        .zip(&mut moments.m)
        .zip(&mut moments.v)
    {
        *m = b1 * *m + (1.0 - b1) * g;
        *v = b2 * *v + (1.0 - b2) * g * g;
        *p -= lr * (*m / c1) / ((*v / c2).sqrt() + EPS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    fn config(d_in: usize, d_out: usize, d_sae: usize, k: usize) -> SparseTopKConfig {
        SparseTopKConfig {
            d_in,
            d_out,
            d_sae,
            k,
            k_aux: 4,
            aux_coefficient: 0.125,
            dead_after_rows: 100,
            lr: 1e-2,
            warmup: 5,
            total_steps: 400,
            resample_every: 0,
            resample_until: 0,
            beta1: 0.9,
            beta2: 0.999,
            hook_name: "blocks.0.ln2.hook_normalized".to_owned(),
            hook_name_out: "blocks.0.hook_mlp_out".to_owned(),
        }
    }

    fn random(n: usize, rng: &mut SplitMix64) -> Vec<f32> {
        (0..n).map(|_| rng.next_normal() as f32).collect()
    }

    /// The same loss written densely with candle's autograd: the reference.
    fn dense_gradients(
        t: &SparseTopK,
        x: &[f32],
        y: &[f32],
        dead: &[bool],
    ) -> candle_core::Result<Gradients> {
        let c = &t.config;
        let rows = x.len() / c.d_in;
        let cpu = &Device::Cpu;
        let enc = Var::from_slice(&t.enc, (c.d_sae, c.d_in), cpu)?;
        let b_enc = Var::from_slice(&t.b_enc, c.d_sae, cpu)?;
        let dec = Var::from_slice(&t.dec, (c.d_sae, c.d_out), cpu)?;
        let b_dec = Var::from_slice(&t.b_dec, c.d_out, cpu)?;
        let xt = Tensor::from_slice(x, (rows, c.d_in), cpu)?;
        let yt = Tensor::from_slice(y, (rows, c.d_out), cpu)?;
        let pre = xt
            .matmul(&enc.as_tensor().t()?)?
            .broadcast_add(b_enc.as_tensor())?;
        let values: Vec<Vec<f32>> = pre.to_vec2()?;
        let mut mask = vec![0.0_f32; rows * c.d_sae];
        let mut aux_mask = vec![0.0_f32; rows * c.d_sae];
        let dead_columns: Vec<usize> = (0..c.d_sae).filter(|&f| dead[f]).collect();
        for (r, row) in values.iter().enumerate() {
            let mut order: Vec<usize> = (0..c.d_sae).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
            for &f in &order[..c.k] {
                mask[r * c.d_sae + f] = 1.0;
            }
            let mut aux = dead_columns.clone();
            aux.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
            for &f in aux.iter().take(c.k_aux) {
                aux_mask[r * c.d_sae + f] = 1.0;
            }
        }
        let mask = Tensor::from_vec(mask, (rows, c.d_sae), cpu)?;
        let aux_mask = Tensor::from_vec(aux_mask, (rows, c.d_sae), cpu)?;
        let acts = (pre.relu()? * mask)?;
        let prediction = acts
            .matmul(dec.as_tensor())?
            .broadcast_add(b_dec.as_tensor())?;
        let error = (&yt - prediction)?;
        let variance = yt.broadcast_sub(&yt.mean_keepdim(0)?)?.sqr()?.mean_all()?;
        let aux_prediction = (&pre * aux_mask)?.matmul(dec.as_tensor())?;
        let aux = (error.detach() - aux_prediction)?.sqr()?.mean_all()?;
        let loss = ((error.sqr()?.mean_all()? + (aux * f64::from(c.aux_coefficient))?)?
            .broadcast_div(&variance))?;
        let grads = loss.backward()?;
        let flat = |v: &Var| -> candle_core::Result<Vec<f32>> {
            grads.get(v.as_tensor()).map_or_else(
                || Ok(vec![0.0; v.elem_count()]),
                |g| g.flatten_all()?.to_vec1(),
            )
        };
        Ok(Gradients {
            enc: flat(&enc)?,
            b_enc: flat(&b_enc)?,
            dec: flat(&dec)?,
            b_dec: flat(&b_dec)?,
        })
    }

    fn assert_close(name: &str, sparse: &[f32], dense: &[f32]) {
        let scale = dense.iter().fold(0.0_f32, |m, v| m.max(v.abs()));
        let worst = sparse
            .iter()
            .zip(dense)
            .fold(0.0_f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(scale > 0.0, "{name}: the reference gradient is zero");
        assert!(
            worst <= 1e-4 * scale,
            "{name}: sparse and dense gradients differ by {worst} (scale {scale})"
        );
    }

    #[test]
    fn sparse_gradients_equal_candle_autograd_on_the_same_loss() {
        let mut rng = SplitMix64::new(7);
        let mut t = SparseTopK::new(config(12, 10, 40, 5), 3).unwrap();
        t.b_enc = random(40, &mut rng);
        t.b_dec = random(10, &mut rng);
        let x = random(16 * 12, &mut rng);
        let y = random(16 * 10, &mut rng);
        let dead: Vec<bool> = (0..40).map(|f| f % 3 == 0).collect();
        let (sparse, fired, fvu) = t.gradients(&x, &y, &dead).unwrap();
        let dense = dense_gradients(&t, &x, &y, &dead).unwrap();
        assert_close("W_enc", &sparse.enc, &dense.enc);
        assert_close("b_enc", &sparse.b_enc, &dense.b_enc);
        assert_close("W_dec", &sparse.dec, &dense.dec);
        assert_close("b_dec", &sparse.b_dec, &dense.b_dec);
        assert!(fired.iter().any(|&f| f) && fvu > 0.0);
    }

    #[test]
    fn it_learns_a_sparse_map_and_resumes_exactly_from_its_saved_state() {
        // Targets made by a sparse code: each row is two of 24 directions.
        let mut rng = SplitMix64::new(11);
        let (d_in, d_out, atoms) = (16, 12, 24);
        let reads = random(atoms * d_in, &mut rng);
        let writes = random(atoms * d_out, &mut rng);
        let batch = |rng: &mut SplitMix64| {
            let (mut x, mut y) = (vec![0.0; 64 * d_in], vec![0.0; 64 * d_out]);
            for r in 0..64 {
                for _ in 0..2 {
                    let a = (rng.next_u64() % atoms as u64) as usize;
                    let s = 1.0 + rng.next_f64() as f32;
                    axpy(
                        s,
                        &reads[a * d_in..(a + 1) * d_in],
                        &mut x[r * d_in..(r + 1) * d_in],
                    );
                    axpy(
                        s,
                        &writes[a * d_out..(a + 1) * d_out],
                        &mut y[r * d_out..(r + 1) * d_out],
                    );
                }
            }
            (x, y)
        };
        let mut t = SparseTopK::new(config(d_in, d_out, 48, 4), 5).unwrap();
        let mut first = None;
        let mut last = StepStats { fvu: 1.0, dead: 0 };
        for _ in 0..300 {
            let (x, y) = batch(&mut rng);
            last = t.step(&x, &y).unwrap();
            first.get_or_insert(last.fvu);
        }
        assert!(
            last.fvu < 0.2,
            "FVU {} after 300 steps (first {first:?})",
            last.fvu
        );

        let dir = std::env::temp_dir().join(format!("glassbox-sparse-topk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.safetensors");
        t.save(&path).unwrap();
        let mut resumed = SparseTopK::load(t.config.clone(), &path).unwrap();
        let (x, y) = batch(&mut rng);
        let (a, b) = (t.step(&x, &y).unwrap(), resumed.step(&x, &y).unwrap());
        assert_eq!(a, b);
        assert_eq!(t.enc, resumed.enc);
        assert_eq!(t.dec, resumed.dec);
        let dictionary = resumed.to_dictionary().unwrap();
        assert_eq!(dictionary.w_enc.dims(), &[d_in, 48]);
        std::fs::remove_dir_all(&dir).ok();
    }
}
