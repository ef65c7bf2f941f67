//! GPT-2's GELU, `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`, as one pass over the data
//! forward and one backward. candle's own `gelu` builds its gradient from a dozen tensor
//! operations, which made it the slowest part of training.

use candle_core::{DType, Tensor};

use crate::fast_math::tanh;
use crate::pointwise::{self, Pointwise};

const SQRT_2_OVER_PI: f32 = 0.797_884_6;
const COEFFICIENT: f32 = 0.044_715;

/// GELU (tanh approximation) of `x`, with a fused gradient.
pub(crate) fn gelu_tanh(x: &Tensor) -> candle_core::Result<Tensor> {
    if x.dtype() != DType::F32 {
        // Other dtypes take candle's path (the model computes in f32).
        return x.gelu();
    }
    pointwise::apply::<GeluTanh>(x)
}

struct GeluTanh;

impl Pointwise for GeluTanh {
    const NAME: &'static str = "gelu-tanh";

    #[inline]
    fn value(x: f32) -> f32 {
        0.5 * x * (1.0 + tanh(SQRT_2_OVER_PI * (x + COEFFICIENT * x * x * x)))
    }

    #[inline]
    fn slope(x: f32) -> f32 {
        let inner = SQRT_2_OVER_PI * (x + COEFFICIENT * x * x * x);
        let t = tanh(inner);
        let d_inner = SQRT_2_OVER_PI * (1.0 + 3.0 * COEFFICIENT * x * x);
        0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * d_inner
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Var};

    use super::*;

    #[test]
    fn matches_candle_forward_and_backward() {
        let xs: Vec<f32> = (-40..=40).map(|i| i as f32 * 0.15).collect();
        let x = Var::from_tensor(&Tensor::new(xs.as_slice(), &Device::Cpu).unwrap()).unwrap();
        let ours = gelu_tanh(x.as_tensor()).unwrap();
        let theirs = x.as_tensor().gelu().unwrap();
        let diff = (&ours - &theirs)
            .unwrap()
            .abs()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-6, "{diff}");
        let g_ours = ours.sum_all().unwrap().backward().unwrap();
        let g_theirs = theirs.sum_all().unwrap().backward().unwrap();
        let a: Vec<f32> = g_ours.get(x.as_tensor()).unwrap().to_vec1().unwrap();
        let b: Vec<f32> = g_theirs.get(x.as_tensor()).unwrap().to_vec1().unwrap();
        for (a, b) in a.iter().zip(&b) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }
}
