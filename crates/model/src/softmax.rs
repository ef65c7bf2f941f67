//! Softmax over the last axis as one pass forward and one backward (the attention
//! pattern). Built from separate tensor operations, its gradient was a large share of a
//! training step.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Tensor};

use crate::cpu_rows::contiguous_rows;

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
        let mut out = Vec::with_capacity(values.len());
        for row in values.chunks(width) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let first = out.len();
            out.extend(row.iter().map(|&x| (x - max).exp()));
            let sum: f32 = out[first..].iter().sum();
            out[first..].iter_mut().for_each(|p| *p /= sum);
        }
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(res.contiguous()?.apply_op2_no_bwd(
            &grad_res.contiguous()?,
            &SoftmaxGradient,
        )?))
    }
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
