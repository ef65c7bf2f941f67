//! Cross-entropy over the vocabulary as one pass forward and one backward: the logits of a
//! training step are `batch × positions × vocab` (32 × 128 × 8192 here), and building the
//! loss from separate tensor operations made it a large share of each step.

use candle_core::{CpuStorage, CustomOp1, DType, Error, Layout, Shape, Tensor};
use glassbox_model::cpu_rows::contiguous_rows;

/// Negative log-likelihood of each row's target under `softmax(logits)`: `[rows]` from
/// `logits` `[rows, vocab]` and one target id per row.
pub fn nll_rows(logits: &Tensor, targets: Vec<u32>) -> candle_core::Result<Tensor> {
    let (rows, vocab) = logits.dims2()?;
    if targets.len() != rows || targets.iter().any(|&t| t as usize >= vocab) {
        return Err(Error::Msg(format!(
            "{} targets for {rows} rows of {vocab} logits, or a target out of range",
            targets.len()
        )));
    }
    logits
        .to_dtype(DType::F32)?
        .contiguous()?
        .apply_op1(CrossEntropy { targets })
}

struct CrossEntropy {
    targets: Vec<u32>,
}

/// `log Σ exp(row)` and the row's maximum, computed stably.
fn log_sum_exp(row: &[f32]) -> (f32, f32) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = row.iter().map(|&x| (x - max).exp()).sum();
    (max + sum.ln(), max)
}

impl CustomOp1 for CrossEntropy {
    fn name(&self) -> &'static str {
        "cross-entropy"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (values, vocab) = contiguous_rows(storage, layout)?;
        let losses: Vec<f32> = values
            .chunks(vocab)
            .zip(&self.targets)
            .map(|(row, &target)| log_sum_exp(row).0 - row[target as usize])
            .collect();
        let count = losses.len();
        Ok((CpuStorage::F32(losses), Shape::from(count)))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        // The incoming gradient has one value per row: fold it into the same pass.
        let scales = grad_res.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        let gradient = SoftmaxMinusOneHot {
            targets: self.targets.clone(),
            scales,
        };
        Ok(Some(arg.apply_op1_no_bwd(&gradient)?))
    }
}

/// `scale · (softmax(row) − onehot(target))`: the gradient of each row's loss.
struct SoftmaxMinusOneHot {
    targets: Vec<u32>,
    scales: Vec<f32>,
}

impl CustomOp1 for SoftmaxMinusOneHot {
    fn name(&self) -> &'static str {
        "softmax-minus-one-hot"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (values, vocab) = contiguous_rows(storage, layout)?;
        let mut out = Vec::with_capacity(values.len());
        for ((row, &target), &scale) in values.chunks(vocab).zip(&self.targets).zip(&self.scales) {
            let (lse, _) = log_sum_exp(row);
            let first = out.len();
            out.extend(row.iter().map(|&x| scale * (x - lse).exp()));
            out[first + target as usize] -= scale;
        }
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{D, Device, Var};

    use super::*;

    #[test]
    fn matches_the_composed_loss_and_its_gradient() {
        let logits: Vec<f32> = (0..60)
            .map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.7)
            .collect();
        let x =
            Var::from_tensor(&Tensor::from_vec(logits, (6, 10), &Device::Cpu).unwrap()).unwrap();
        let targets = vec![0_u32, 3, 9, 4, 4, 1];
        let ours = nll_rows(x.as_tensor(), targets.clone())
            .unwrap()
            .mean_all()
            .unwrap();
        let t = Tensor::new(targets.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(1)
            .unwrap();
        let log_probs = x
            .as_tensor()
            .broadcast_sub(
                &x.as_tensor()
                    .exp()
                    .unwrap()
                    .sum_keepdim(D::Minus1)
                    .unwrap()
                    .log()
                    .unwrap(),
            )
            .unwrap();
        let theirs = log_probs
            .gather(&t, D::Minus1)
            .unwrap()
            .mean_all()
            .unwrap()
            .neg()
            .unwrap();
        let (a, b) = (
            ours.to_scalar::<f32>().unwrap(),
            theirs.to_scalar::<f32>().unwrap(),
        );
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        let ga = ours
            .backward()
            .unwrap()
            .get(x.as_tensor())
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let gb = theirs
            .backward()
            .unwrap()
            .get(x.as_tensor())
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        for (ra, rb) in ga.iter().zip(&gb) {
            for (a, b) in ra.iter().zip(rb) {
                assert!((a - b).abs() < 1e-6, "{a} vs {b}");
            }
        }
        assert!(nll_rows(x.as_tensor(), vec![0; 5]).is_err());
        assert!(nll_rows(x.as_tensor(), vec![10; 6]).is_err());
    }
}
