//! Softmax over the last axis as one pass forward and one backward (the attention
//! pattern). Built from separate tensor operations, its gradient was a large share of a
//! training step.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Tensor};

use crate::cpu_rows::{contiguous_rows, each_part, lane_max, lane_sum};
use crate::fast_math::exp_non_positive;
use crate::widest_simd::widest_simd;

/// `softmax` over the last axis; −∞ entries get probability 0 (each row needs one finite
/// entry).
pub(crate) fn softmax_last(x: &Tensor) -> candle_core::Result<Tensor> {
    if x.dtype() != DType::F32 {
        let shifted = x.broadcast_sub(&x.max_keepdim(candle_core::D::Minus1)?)?;
        let exp = shifted.exp()?;
        return exp.broadcast_div(&exp.sum_keepdim(candle_core::D::Minus1)?);
    }
    x.contiguous()?.apply_op1(SoftmaxLast)
}

struct SoftmaxLast;

impl CustomOp1 for SoftmaxLast {
    fn name(&self) -> &'static str {
        "softmax-last"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (values, width) = contiguous_rows(storage, layout)?;
        let mut out = values.to_vec();
        each_part(&mut out, width, |_, part| softmax_rows(part, width));
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(softmax_gradient(res, grad_res)?))
    }
}

/// The attention pattern from raw dot products `q · kᵀ` (`[..., query, key]`, f32, queries
/// from position `offset`): each times `scale` (`1/√d_head`, as candle's `dots / √d_head`
/// multiplies by the f32 reciprocal), the keys after the query masked, softmax over the
/// rest — in one pass, and equal bit for bit to scaling, adding the causal mask and
/// [`softmax_last`] one after another (which `hook_attn_scores` needs, when something
/// reads it). Masked keys are never read.
pub(crate) fn causal_softmax(
    dots: &Tensor,
    offset: usize,
    scale: f32,
) -> candle_core::Result<Tensor> {
    let queries = dots.dims().iter().rev().nth(1).copied().unwrap_or(1);
    dots.contiguous()?.apply_op1(CausalSoftmax {
        offset,
        queries,
        scale,
    })
}

struct CausalSoftmax {
    offset: usize,
    queries: usize,
    scale: f32,
}

impl CustomOp1 for CausalSoftmax {
    fn name(&self) -> &'static str {
        "causal-softmax"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (values, width) = contiguous_rows(storage, layout)?;
        let mut out = vec![0.0; values.len()];
        each_part(&mut out, width, |first, part| {
            causal_rows(self, values, first, part, width);
        });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(
            (softmax_gradient(res, grad_res)? * f64::from(self.scale))?,
        ))
    }
}

widest_simd! {
    /// Each row of `width` of `part` replaced by its softmax.
    fn softmax_rows[](part: &mut [f32], width: usize) {
        for row in part.chunks_mut(width) {
            softmax_in_place(row);
        }
    }
}

widest_simd! {
    /// The rows of `part` (rows from `first` on) of [`CausalSoftmax`] from the dot
    /// products `values`: each row's keys up to its query scaled, then their softmax; the
    /// masked keys are left at 0.
    fn causal_rows[](
        op: &CausalSoftmax,
        values: &[f32],
        first: usize,
        part: &mut [f32],
        width: usize,
    ) {
        for (i, probabilities) in part.chunks_mut(width).enumerate() {
            let r = first + i;
            let seen = (op.offset + r % op.queries.max(1) + 1).min(width);
            let row = &values[r * width..r * width + seen];
            let probabilities = &mut probabilities[..seen];
            for (p, &x) in probabilities.iter_mut().zip(row) {
                *p = x * op.scale;
            }
            softmax_in_place(probabilities);
        }
    }
}

/// `row` replaced by its softmax: `exp(x − max)` over their sum (−∞ entries give 0).
#[allow(
    clippy::inline_always,
    reason = "compiled into each SIMD width's copy of a kernel (`widest_simd!`)"
)]
#[inline(always)]
fn softmax_in_place(row: &mut [f32]) {
    let max = lane_max(row);
    for p in row.iter_mut() {
        *p = exp_non_positive(*p - max);
    }
    let sum = lane_sum(row, |p| p);
    for p in row.iter_mut() {
        *p /= sum;
    }
}

/// The gradient at a softmax's input from its output `y` and the gradient at it `dy`
/// ([`SoftmaxGradient`]).
fn softmax_gradient(y: &Tensor, dy: &Tensor) -> candle_core::Result<Tensor> {
    y.contiguous()?
        .apply_op2_no_bwd(&dy.contiguous()?, &SoftmaxGradient)
}

/// `y ⊙ (dy − Σ dy ⊙ y)` per row, from the softmax output `y` and its gradient `dy`.
struct SoftmaxGradient;

impl CustomOp2 for SoftmaxGradient {
    fn name(&self) -> &'static str {
        "softmax-last-gradient"
    }

    fn cpu_fwd(
        &self,
        y: &CpuStorage,
        y_layout: &Layout,
        dy: &CpuStorage,
        dy_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (y, width) = contiguous_rows(y, y_layout)?;
        let (dy, _) = contiguous_rows(dy, dy_layout)?;
        let mut out = Vec::with_capacity(y.len());
        for (y_row, dy_row) in y.chunks(width).zip(dy.chunks(width)) {
            let dot: f32 = y_row.iter().zip(dy_row).map(|(a, b)| a * b).sum();
            out.extend(y_row.iter().zip(dy_row).map(|(a, b)| a * (b - dot)));
        }
        Ok((CpuStorage::F32(out), y_layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{D, Device, Var};

    use super::*;

    /// `dots / divisor`, the causal mask added, then [`softmax_last`]: the steps
    /// [`causal_softmax`] fuses, as the attention takes them.
    fn step_by_step(dots: &Tensor, offset: usize, divisor: f64) -> Tensor {
        let (queries, keys) = dots.dims2().unwrap();
        let mask = crate::attention::causal_mask(offset, queries, keys, &Device::Cpu).unwrap();
        let scores = (dots / divisor).unwrap().broadcast_add(&mask).unwrap();
        softmax_last(&scores).unwrap()
    }

    #[test]
    fn the_causal_softmax_is_the_steps_it_fuses_bit_for_bit_with_their_gradient() {
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        // Four queries from position 0, and two after three cached positions.
        for (queries, keys, offset) in [(4, 4, 0), (2, 5, 3)] {
            let values: Vec<f32> = (0..queries * keys)
                .map(|i| ((i * 7 % 11) as f32 - 5.0) * 1.3)
                .collect();
            let dots =
                Var::from_tensor(&Tensor::from_vec(values, (queries, keys), &Device::Cpu).unwrap())
                    .unwrap();
            // √48: a divisor whose reciprocal is not exact in f32.
            let divisor = 48.0_f64.sqrt();
            let ours = causal_softmax(dots.as_tensor(), offset, (1.0 / divisor) as f32).unwrap();
            let theirs = step_by_step(dots.as_tensor(), offset, divisor);
            assert_eq!(flat(&ours), flat(&theirs));
            let weights = Tensor::from_vec(
                (0..queries * keys)
                    .map(|i| i as f32 * 0.1 - 0.4)
                    .collect::<Vec<_>>(),
                (queries, keys),
                &Device::Cpu,
            )
            .unwrap();
            let gradient = |y: &Tensor| {
                let grads = (y * &weights)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap();
                flat(grads.get(dots.as_tensor()).unwrap())
            };
            for (a, b) in gradient(&ours).iter().zip(gradient(&theirs)) {
                assert!((a - b).abs() < 1e-6, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn matches_the_composed_softmax_and_its_gradient() {
        let mut values: Vec<f32> = (0..24).map(|i| ((i * 7 % 5) as f32 - 2.0) * 0.9).collect();
        values[5] = f32::NEG_INFINITY; // a masked entry
        let x =
            Var::from_tensor(&Tensor::from_vec(values, (2, 3, 4), &Device::Cpu).unwrap()).unwrap();
        let weights = Tensor::from_vec(
            (0..24).map(|i| i as f32 * 0.1).collect::<Vec<_>>(),
            (2, 3, 4),
            &Device::Cpu,
        )
        .unwrap();
        let ours = softmax_last(x.as_tensor()).unwrap();
        let shifted = x
            .as_tensor()
            .broadcast_sub(&x.as_tensor().max_keepdim(D::Minus1).unwrap())
            .unwrap();
        let exp = shifted.exp().unwrap();
        let theirs = exp
            .broadcast_div(&exp.sum_keepdim(D::Minus1).unwrap())
            .unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (a, b) in flat(&ours).iter().zip(flat(&theirs)) {
            assert!((a - b).abs() < 1e-6);
        }
        let g_ours = (&ours * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let g_theirs = (&theirs * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let (a, b) = (
            flat(g_ours.get(x.as_tensor()).unwrap()),
            flat(g_theirs.get(x.as_tensor()).unwrap()),
        );
        for (a, b) in a.iter().zip(&b) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }
}
