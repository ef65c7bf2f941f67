//! GPT-2's LayerNorm row by row: each row's mean and scale (`√(variance + ε)`) come from
//! one function, [`statistics`], whichever path a pass takes, so a pass that reads the
//! LayerNorm's hooks and one that does not give the same values to the bit.
//!
//! - Where nothing reads `hook_scale` or `hook_normalized`, [`layer_norm`] is the whole
//!   LayerNorm in one pass per row (it was nine tensor operations, each a fresh tensor,
//!   natively each on candle's own thread pool).
//! - Where a hook reads them, [`mean_and_scale`] gives the statistics as tensors, and the
//!   caller divides, scales and shifts with tensor operations, so a hook can read or
//!   replace the scale and the normalized values as TransformerLens defines them.

use candle_core::{CpuStorage, CustomOp1, CustomOp3, D, DType, Layout, Shape, Tensor};

use crate::Result;
use crate::cpu_rows::{contiguous_rows, each_part, lane_sum};
use crate::widest_simd::widest_simd;

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
        epsilon: as_f32(epsilon),
    };
    Ok(Some(x.contiguous()?.apply_op3(
        &weight.contiguous()?,
        &bias.contiguous()?,
        op,
    )?))
}

/// Each row's mean and scale over the last axis of `x` (f32 on the CPU), as two tensors of
/// `x`'s shape with a last axis of 1, from the same [`statistics`] as [`layer_norm`], with
/// their gradient; `None` for other tensors.
pub(crate) fn mean_and_scale(x: &Tensor, epsilon: f64) -> Result<Option<(Tensor, Tensor)>> {
    if x.dtype() != DType::F32 || !x.device().is_cpu() || x.rank() == 0 {
        return Ok(None);
    }
    let op = RowStatistics {
        epsilon: as_f32(epsilon),
    };
    let both = x.contiguous()?.apply_op1(op)?;
    Ok(Some((both.get(0)?, both.get(1)?)))
}

/// As candle adds an f64 to an f32 tensor.
#[allow(
    clippy::cast_possible_truncation,
    reason = "an f32 tensor's epsilon is an f32"
)]
fn as_f32(epsilon: f64) -> f32 {
    epsilon as f32
}

widest_simd! {
    /// The LayerNorm of the rows of `x` into the rows of `out` (as many as `out` holds).
    fn normalize_rows[](x: &[f32], weight: &[f32], bias: &[f32], epsilon: f32, out: &mut [f32]) {
        let width = weight.len();
        for (y, row) in out.chunks_exact_mut(width).zip(x.chunks_exact(width)) {
            let (mean, scale) = statistics(row, epsilon);
            // Each step rounded as the tensor operations round it: no fused multiply-add,
            // so that both paths agree to the bit.
            for (((y, &x), &w), &b) in y.iter_mut().zip(row).zip(weight).zip(bias) {
                *y = (x - mean) / scale * w + b;
            }
        }
    }
}

widest_simd! {
    /// Each row's mean and scale, for the rows of `width` of `x`, into `means` and `scales`.
    fn statistics_of_rows[](
        x: &[f32],
        width: usize,
        epsilon: f32,
        means: &mut [f32],
        scales: &mut [f32],
    ) {
        for ((row, mean), scale) in x.chunks_exact(width).zip(means).zip(scales) {
            (*mean, *scale) = statistics(row, epsilon);
        }
    }
}

/// One row's mean and `√(variance + epsilon)`, each sum in eight running sums.
#[allow(
    clippy::inline_always,
    reason = "compiled into each SIMD width's copy of a kernel (`widest_simd!`)"
)]
#[inline(always)]
fn statistics(row: &[f32], epsilon: f32) -> (f32, f32) {
    let width = row.len() as f32;
    let mean = lane_sum(row, |x| x) / width;
    let variance = lane_sum(row, |x| (x - mean) * (x - mean)) / width;
    (mean, (variance + epsilon).sqrt())
}

/// The whole LayerNorm, as a candle op.
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
            normalize_rows(&x[first * width..], weight, bias, self.epsilon, part);
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
        // ∂x = (g - mean(g) - x̂ · mean(g · x̂)) / scale, from the forward's own statistics.
        let statistics = x.apply_op1_no_bwd(&RowStatistics {
            epsilon: self.epsilon,
        })?;
        let (mean, scale) = (statistics.get(0)?, statistics.get(1)?);
        let normalized = x.broadcast_sub(&mean)?.broadcast_div(&scale)?;
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

/// Each row's mean and scale, as a candle op: out of `x` of shape `[.., width]`, a tensor
/// of shape `[2, .., 1]` (the means, then the scales).
struct RowStatistics {
    epsilon: f32,
}

impl CustomOp1 for RowStatistics {
    fn name(&self) -> &'static str {
        "layer-norm-statistics"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, width) = contiguous_rows(storage, layout)?;
        let rows = x.len() / width;
        let mut out = vec![0.0_f32; 2 * rows];
        let (means, scales) = out.split_at_mut(rows);
        statistics_of_rows(x, width, self.epsilon, means, scales);
        let mut dims = vec![2];
        dims.extend_from_slice(layout.shape().dims());
        if let Some(last) = dims.last_mut() {
            *last = 1;
        }
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }

    fn bwd(&self, x: &Tensor, res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        // ∂mean/∂xᵢ = 1/n and ∂scale/∂xᵢ = (xᵢ - mean) / (n · scale).
        let width = x.dim(D::Minus1)? as f64;
        let (mean, scale) = (res.get(0)?, res.get(1)?);
        let (grad_mean, grad_scale) = (grad.get(0)?, grad.get(1)?);
        let along_centred = (grad_scale / scale)?;
        let grad_x = x
            .broadcast_sub(&mean)?
            .broadcast_mul(&along_centred)?
            .broadcast_add(&grad_mean)?;
        Ok(Some((grad_x / width)?))
    }
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
        normalized_then_affine(&centred, &scale, weight, bias)
    }

    /// `centred / scale · weight + bias`, as `Gpt2::layer_norm` ends.
    fn normalized_then_affine(
        centred: &Tensor,
        scale: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
    ) -> Tensor {
        centred
            .broadcast_div(scale)
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

    /// The path a hooked pass takes: the statistics as tensors, then tensor operations.
    fn by_statistics(x: &Tensor, weight: &Tensor, bias: &Tensor, epsilon: f64) -> Tensor {
        let (mean, scale) = mean_and_scale(x, epsilon).unwrap().unwrap();
        normalized_then_affine(&x.broadcast_sub(&mean).unwrap(), &scale, weight, bias)
    }

    /// A pass that reads the hooks and one that does not give the same values to the bit,
    /// and the statistics' gradient is the tensor operations' (so a hooked pass's
    /// attribution is unchanged).
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn the_statistics_path_equals_the_one_pass_to_the_bit() {
        for (rows, width) in [(3, 20), (7, 13), (300, 256)] {
            let shape = format!("{rows}×{width}");
            let x = Var::from_tensor(
                &((matrix(rows, width, 5) * 3.0).unwrap() + 1.5)
                    .unwrap()
                    .reshape((1, rows, width))
                    .unwrap(),
            )
            .unwrap();
            let weight = matrix(1, width, 6).flatten_all().unwrap();
            let bias = matrix(1, width, 7).flatten_all().unwrap();
            let one_pass = layer_norm(&x, &weight, &bias, 1e-5).unwrap().unwrap();
            let hooked = by_statistics(&x, &weight, &bias, 1e-5);
            let bits = |t: &Tensor| values(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&one_pass), bits(&hooked), "{shape}");
            let (mean, scale) = mean_and_scale(&x, 1e-5).unwrap().unwrap();
            assert_eq!(
                (mean.dims(), scale.dims()),
                (&[1, rows, 1][..], &[1, rows, 1][..])
            );
            let weights = matrix(rows, width, 8).reshape((1, rows, width)).unwrap();
            let loss = |y: Tensor| (y * &weights).unwrap().sqr().unwrap().sum_all().unwrap();
            let ours = loss(hooked).backward().unwrap();
            let theirs = loss(by_tensor_operations(&x, &weight, &bias, 1e-5))
                .backward()
                .unwrap();
            let (a, b) = (ours.get(&x).unwrap(), theirs.get(&x).unwrap());
            assert!(
                relative_difference(&values(a), &values(b)) < 1e-4,
                "{shape}, ∂x"
            );
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
        let x64 = x.to_dtype(DType::F64).unwrap();
        assert!(mean_and_scale(&x64, 1e-5).unwrap().is_none());
    }
}
