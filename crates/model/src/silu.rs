//! `SiLU`, `x · sigmoid(x)` (Llama's MLP gate), as one vectorized pass forward: candle's
//! own calls libm's `expf` once per element.

use candle_core::{DType, Tensor};

use crate::fast_math::exp_non_positive;
use crate::pointwise::{self, Pointwise};

/// `SiLU` of `x`, with a fused gradient.
pub(crate) fn silu(x: &Tensor) -> candle_core::Result<Tensor> {
    if x.dtype() != DType::F32 {
        // Other dtypes take candle's path (the model computes in f32).
        return x.silu();
    }
    pointwise::apply::<Silu>(x)
}

/// `sigmoid(x)` from `e = exp(−|x|)`, which never overflows: `1 / (1 + e)` for `x ≥ 0`,
/// `e / (1 + e)` below.
#[inline]
fn sigmoid(x: f32) -> f32 {
    let e = exp_non_positive(-x.abs());
    let numerator = if x >= 0.0 { 1.0 } else { e };
    numerator / (1.0 + e)
}

struct Silu;

impl Pointwise for Silu {
    const NAME: &'static str = "silu";

    #[inline]
    fn value(x: f32) -> f32 {
        x * sigmoid(x)
    }

    /// `s (1 + x (1 − s))` with `s = sigmoid(x)`.
    #[inline]
    fn slope(x: f32) -> f32 {
        let s = sigmoid(x);
        s * (1.0 + x * (1.0 - s))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;

    #[test]
    fn matches_candle_forward_and_backward() {
        let xs: Vec<f32> = (-400..=400)
            .map(|i| i as f32 * 0.05)
            .chain([-200.0, 200.0])
            .collect();
        let x = Var::from_tensor(&Tensor::new(xs.as_slice(), &Device::Cpu).unwrap()).unwrap();
        let ours = silu(x.as_tensor()).unwrap();
        let theirs = x.as_tensor().silu().unwrap();
        let a: Vec<f32> = ours.to_vec1().unwrap();
        let b: Vec<f32> = theirs.to_vec1().unwrap();
        for ((a, b), x) in a.iter().zip(&b).zip(&xs) {
            assert!(
                (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                "silu({x}): {a} vs {b}"
            );
        }
        let g_ours = ours.sum_all().unwrap().backward().unwrap();
        let g_theirs = theirs.sum_all().unwrap().backward().unwrap();
        let a: Vec<f32> = g_ours.get(x.as_tensor()).unwrap().to_vec1().unwrap();
        let b: Vec<f32> = g_theirs.get(x.as_tensor()).unwrap().to_vec1().unwrap();
        for ((a, b), x) in a.iter().zip(&b).zip(&xs) {
            assert!((a - b).abs() < 1e-5, "silu'({x}): {a} vs {b}");
        }
    }
}
