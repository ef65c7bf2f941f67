//! GPT-2's LayerNorm in one pass over each row, where nothing reads its `hook_scale` or
//! `hook_normalized`: built from tensor operations it was nine passes over the residual
//! stream, each a fresh tensor, and natively each on candle's own thread pool.

use candle_core::{CpuStorage, CustomOp3, D, DType, Layout, Shape, Tensor};

use crate::Result;
use crate::cpu_rows::{contiguous_rows, each_part};

/// `(x - mean) / √(variance + epsilon) · weight + bias` over the last axis of `x` (f32 on
/// the CPU, `weight` and `bias` as long as that axis); `None` for other tensors.
pub(crate) fn layer_norm(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    epsilon: f64,
) -> Result<Option<Tensor>> {
    let width = x.dim(D::Minus1)?;
    let applies = [x, weight, bias]
        .iter()
        .all(|t| t.dtype() == DType::F32 && t.device().is_cpu())
        && weight.dims1().is_ok_and(|n| n == width)
        && bias.dims1().is_ok_and(|n| n == width);
    if !applies {
        return Ok(None);
    }
    let op = LayerNorm {
        // As candle adds an f64 to an f32 tensor.
        epsilon: epsilon as f32,
    };
    Ok(Some(x.contiguous()?.apply_op3(
        &weight.contiguous()?,
        &bias.contiguous()?,
        op,
    )?))
}

/// The candle op.
struct LayerNorm {
    epsilon: f32,
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "layer-norm"
    }

    fn cpu_fwd(
        &self,
        x_storage: &CpuStorage,
        x_layout: &Layout,
        weight_storage: &CpuStorage,
        weight_layout: &Layout,
        bias_storage: &CpuStorage,
        bias_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, width) = contiguous_rows(x_storage, x_layout)?;
        let (weight, _) = contiguous_rows(weight_storage, weight_layout)?;
        let (bias, _) = contiguous_rows(bias_storage, bias_layout)?;
        if weight.len() != width || bias.len() != width {
            return Err(candle_core::Error::Msg(format!(
                "a LayerNorm of rows of {width} with {} weights and {} biases",
                weight.len(),
                bias.len()
            )));
        }
        let mut out = vec![0.0_f32; x.len()];
        each_part(&mut out, width, |first, part| {
            for (r, normalized) in part.chunks_exact_mut(width).enumerate() {
                let row = &x[(first + r) * width..][..width];
                self.normalize(row, weight, bias, normalized);
            }
        });
        Ok((CpuStorage::F32(out), x_layout.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        // With x̂ = (x - mean) / scale and g = grad · weight, per row:
        // ∂x = (g - mean(g) - x̂ · mean(g · x̂)) / scale.
        let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
        let scale = (centred.sqr()?.mean_keepdim(D::Minus1)? + f64::from(self.epsilon))?.sqrt()?;
        let normalized = centred.broadcast_div(&scale)?;
        let g = grad.broadcast_mul(weight)?;
        let along_normalized = (&g * &normalized)?.mean_keepdim(D::Minus1)?;
        let grad_x = g
            .broadcast_sub(&g.mean_keepdim(D::Minus1)?)?
            .sub(&normalized.broadcast_mul(&along_normalized)?)?
            .broadcast_div(&scale)?;
        let rows = |t: &Tensor| t.flatten_to(t.rank().saturating_sub(2));
        let grad_weight = rows(&(grad * &normalized)?)?.sum(0)?;
        let grad_bias = rows(grad)?.sum(0)?;
        Ok((Some(grad_x), Some(grad_weight), Some(grad_bias)))
    }
}

impl LayerNorm {
    /// One row into `out`, in the order of candle's operations: the mean, the centred
    /// values, their mean square plus epsilon, its square root, the quotient, the weight,
    /// the bias.
    fn normalize(&self, row: &[f32], weight: &[f32], bias: &[f32], out: &mut [f32]) {
        let width = row.len() as f32;
        let mean = lane_sum(row, |x| x) / width;
        let variance = lane_sum(row, |x| (x - mean) * (x - mean)) / width;
        let scale = (variance + self.epsilon).sqrt();
        for (((y, &x), &w), &b) in out.iter_mut().zip(row).zip(weight).zip(bias) {
            *y = (x - mean) / scale * w + b;
        }
    }
}

/// The sum of `f` of each value of `row`, in eight running sums (so the loop compiles to
/// SIMD), then theirs.
fn lane_sum(row: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut sums = [0.0_f32; 8];
    let blocks = row.chunks_exact(8);
    let tail: f32 = blocks.remainder().iter().map(|&x| f(x)).sum();
    for block in blocks {
        for (sum, &x) in sums.iter_mut().zip(block) {
            *sum += f(x);
        }
    }
    sums.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use candle_core::Var;

    use super::*;
    use crate::few_rows::tests::{matrix, relative_difference, values};

    /// Nine tensor operations, as `Gpt2::layer_norm` computes them with its hooks.
    fn by_tensor_operations(x: &Tensor, weight: &Tensor, bias: &Tensor, epsilon: f64) -> Tensor {
        let centred = x
            .broadcast_sub(&x.mean_keepdim(D::Minus1).unwrap())
            .unwrap();
        let variance = centred.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
        let scale = (variance + epsilon).unwrap().sqrt().unwrap();
        centred
            .broadcast_div(&scale)
            .unwrap()
            .broadcast_mul(weight)
            .unwrap()
            .broadcast_add(bias)
            .unwrap()
    }

    /// The same values and the same gradients as the tensor operations, on rows of one
    /// part and of many (`each_part`), widths on and off the SIMD lanes.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn one_pass_equals_the_tensor_operations() {
        for (rows, width) in [(3, 20), (7, 13), (300, 256)] {
            let x = Var::from_tensor(
                &(matrix(rows, width, 1) * 3.0)
                    .unwrap()
                    .reshape((1, rows, width))
                    .unwrap(),
            )
            .unwrap();
            let weight = Var::from_tensor(&matrix(1, width, 2).flatten_all().unwrap()).unwrap();
            let bias = Var::from_tensor(&matrix(1, width, 3).flatten_all().unwrap()).unwrap();
            let ours = layer_norm(&x, &weight, &bias, 1e-5).unwrap().unwrap();
            let theirs = by_tensor_operations(&x, &weight, &bias, 1e-5);
            let shape = format!("{rows}×{width}");
            assert_eq!(ours.dims(), theirs.dims());
            assert!(
                relative_difference(&values(&ours), &values(&theirs)) < 1e-5,
                "{shape}"
            );
            // A loss that weighs each output differently, so every gradient term counts.
            let weights = matrix(rows, width, 4).reshape((1, rows, width)).unwrap();
            let loss = |y: Tensor| (y * &weights).unwrap().sqr().unwrap().sum_all().unwrap();
            let (ours, theirs) = (
                loss(ours).backward().unwrap(),
                loss(theirs).backward().unwrap(),
            );
            for (name, var) in [("x", &x), ("weight", &weight), ("bias", &bias)] {
                let (a, b) = (ours.get(var).unwrap(), theirs.get(var).unwrap());
                assert_eq!(a.dims(), b.dims(), "{shape}, {name}");
                assert!(
                    relative_difference(&values(a), &values(b)) < 1e-4,
                    "{shape}, ∂{name}"
                );
            }
        }
    }

    /// Another dtype or a weight of the wrong length is not taken.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn other_tensors_are_left_to_the_tensor_operations() {
        let x = matrix(4, 8, 1);
        let (weight, bias) = (matrix(1, 8, 2).flatten_all().unwrap(), matrix(1, 8, 3));
        assert!(layer_norm(&x, &weight, &bias, 1e-5).unwrap().is_none());
        let bias = bias.flatten_all().unwrap();
        assert!(
            layer_norm(&x.to_dtype(DType::F64).unwrap(), &weight, &bias, 1e-5)
                .unwrap()
                .is_none()
        );
        assert!(layer_norm(&x, &weight, &bias, 1e-5).unwrap().is_some());
    }
}
