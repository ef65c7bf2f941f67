//! AdamW (Loshchilov and Hutter, 2019) with global-norm gradient clipping, written here so
//! that its state can be saved in a checkpoint and a run resumed exactly.

use candle_core::Var;
use candle_core::backprop::GradStore;

use crate::error::Result;

/// AdamW's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Added to the denominator.
    pub eps: f64,
    /// Decoupled weight decay, applied to matrices only (not biases or LayerNorm gains).
    pub weight_decay: f64,
    /// Gradients are scaled down so that their global L2 norm is at most this.
    pub clip_norm: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
            clip_norm: 1.0,
        }
    }
}

/// One parameter and its moment estimates.
#[derive(Debug)]
pub struct Param {
    /// The name it is saved under.
    pub name: String,
    /// The trainable tensor.
    pub var: Var,
    /// First moment.
    pub m: Var,
    /// Second moment.
    pub v: Var,
}

/// The optimiser: parameters, moments and the step count.
#[derive(Debug)]
pub struct AdamW {
    /// Hyper-parameters.
    pub config: AdamWConfig,
    /// Every parameter, in a fixed order.
    pub params: Vec<Param>,
    /// Steps taken so far.
    pub step: usize,
}

impl AdamW {
    /// An optimiser over named variables, with zero moments.
    pub fn new(config: AdamWConfig, vars: Vec<(String, Var)>) -> Result<Self> {
        let params = vars
            .into_iter()
            .map(|(name, var)| {
                let m = Var::from_tensor(&var.as_tensor().zeros_like()?)?;
                let v = Var::from_tensor(&var.as_tensor().zeros_like()?)?;
                Ok(Param { name, var, m, v })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            config,
            params,
            step: 0,
        })
    }

    /// One update at learning rate `lr`; returns the gradients' global norm before clipping.
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<f64> {
        let c = self.config;
        let mut squared = 0.0;
        for p in &self.params {
            if let Some(g) = grads.get(p.var.as_tensor()) {
                squared += f64::from(g.sqr()?.sum_all()?.to_scalar::<f32>()?);
            }
        }
        let norm = squared.sqrt();
        let clip = if norm > c.clip_norm {
            c.clip_norm / norm
        } else {
            1.0
        };
        self.step += 1;
        let t = i32::try_from(self.step).unwrap_or(i32::MAX);
        let correction1 = 1.0 - c.beta1.powi(t);
        let correction2 = 1.0 - c.beta2.powi(t);
        for p in &self.params {
            let Some(g) = grads.get(p.var.as_tensor()) else {
                continue;
            };
            let g = g.affine(clip, 0.0)?;
            let m = ((p.m.as_tensor() * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
            let v = ((p.v.as_tensor() * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let update = ((&m / correction1)? / ((&v / correction2)?.sqrt()? + c.eps)?)?;
            let decay = if p.var.as_tensor().rank() >= 2 {
                c.weight_decay
            } else {
                0.0
            };
            let value = (p.var.as_tensor().affine(1.0 - lr * decay, 0.0)? - (update * lr)?)?;
            p.m.set(&m)?;
            p.v.set(&v)?;
            p.var.set(&value)?;
        }
        Ok(norm)
    }
}

/// The learning rate at `step`: linear warm-up over `warmup` steps, then cosine decay to
/// `min_ratio · peak` at `total`.
#[must_use]
pub fn learning_rate(step: usize, warmup: usize, total: usize, peak: f64, min_ratio: f64) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let progress = ((step - warmup) as f64 / (total - warmup).max(1) as f64).min(1.0);
    let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
    peak * (min_ratio + (1.0 - min_ratio) * cosine)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn the_schedule_warms_up_then_decays() {
        assert!((learning_rate(0, 10, 100, 1.0, 0.1) - 0.1).abs() < 1e-12);
        assert!((learning_rate(9, 10, 100, 1.0, 0.1) - 1.0).abs() < 1e-12);
        assert!((learning_rate(10, 10, 100, 1.0, 0.1) - 1.0).abs() < 1e-12);
        assert!((learning_rate(100, 10, 100, 1.0, 0.1) - 0.1).abs() < 1e-12);
        assert!(learning_rate(50, 10, 100, 1.0, 0.1) < learning_rate(30, 10, 100, 1.0, 0.1));
    }

    #[test]
    fn minimises_a_quadratic() {
        let x = Var::from_tensor(&Tensor::new(&[3.0_f32, -2.0], &Device::Cpu).unwrap()).unwrap();
        let mut opt = AdamW::new(
            AdamWConfig {
                weight_decay: 0.0,
                ..AdamWConfig::default()
            },
            vec![("x".into(), x.clone())],
        )
        .unwrap();
        for _ in 0..300 {
            let loss = x.as_tensor().sqr().unwrap().sum_all().unwrap();
            opt.step(&loss.backward().unwrap(), 0.05).unwrap();
        }
        let values: Vec<f32> = x.as_tensor().to_vec1().unwrap();
        assert!(values.iter().all(|v| v.abs() < 0.05), "{values:?}");
    }
}
