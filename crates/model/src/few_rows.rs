//! `x · eᵀ` for a few rows of `x` and a matrix `e` stored `[out, in]`, as the unembedding
//! is (the token embeddings, tied): the read-out of decoding one token, where gemm, tiling
//! for many rows, read the largest matrix of a small model slower than the rest (GPT-2
//! small's 1-token pass: 23.1 → 20.9 ms natively, 22.2 → 20.6 ms in Chromium). Here each
//! row of `e` is read once, as dot products with every row of `x`, in eight running sums
//! that compile to SIMD natively and in wasm32 (simd128). It has a gradient, for the passes
//! that take one.

use candle_core::{CpuStorage, CustomOp2, DType, Device, Layout, Shape, Tensor};

use crate::Result;
use crate::cpu_rows::contiguous_rows;

/// The most rows of `x` the kernel here takes; gemm takes more.
const FEW_ROWS: usize = 4;

/// `x · eᵀ` for `x` `[m, k]` and `e` `[n, k]`.
pub(crate) fn matmul_transposed(x: &Tensor, e: &Tensor) -> Result<Tensor> {
    Ok(if fits(x, e) {
        x.contiguous()?.apply_op2(e, RowsTimesTransposed)?
    } else {
        x.matmul(&e.t()?)?
    })
}

/// Whether the kernel applies: a few f32 rows on the CPU, a contiguous f32 matrix of
/// as many columns.
fn fits(x: &Tensor, e: &Tensor) -> bool {
    let (Ok((m, k)), Ok((_, k_of_e))) = (x.dims2(), e.dims2()) else {
        return false;
    };
    (1..=FEW_ROWS).contains(&m)
        && k == k_of_e
        && k > 0
        && x.dtype() == DType::F32
        && e.dtype() == DType::F32
        && matches!(x.device(), Device::Cpu)
        && e.is_contiguous()
}

/// `x · eᵀ`, `e` `[n, k]`.
struct RowsTimesTransposed;

impl CustomOp2 for RowsTimesTransposed {
    fn name(&self) -> &'static str {
        "few-rows-times-transposed"
    }

    fn cpu_fwd(
        &self,
        x_storage: &CpuStorage,
        x_layout: &Layout,
        e_storage: &CpuStorage,
        e_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, k) = contiguous_rows(x_storage, x_layout)?;
        let (e, k_of_e) = contiguous_rows(e_storage, e_layout)?;
        if k != k_of_e {
            return Err(candle_core::Error::Msg(format!(
                "rows of {k} times a matrix of rows of {k_of_e}, transposed"
            )));
        }
        let (m, n) = (x.len() / k, e.len() / k);
        let mut out = vec![0.0; m * n];
        for (v, row) in e.chunks_exact(k).enumerate() {
            for (r, input) in x.chunks_exact(k).enumerate() {
                out[r * n + v] = dot(input, row);
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((m, n))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        e: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(grad.matmul(e)?), Some(grad.t()?.matmul(x)?)))
    }
}

/// `a · b` in eight running sums (two SIMD registers), then their sum.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut sums = [0.0_f32; 8];
    let (a_blocks, b_blocks) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a_blocks
        .remainder()
        .iter()
        .zip(b_blocks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (a, b) in a_blocks.zip(b_blocks) {
        for j in 0..8 {
            sums[j] += a[j] * b[j];
        }
    }
    sums.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    /// A `[rows, cols]` matrix of varied values.
    fn matrix(rows: usize, cols: usize, seed: usize) -> Tensor {
        let values: Vec<f32> = (0..rows * cols)
            .map(|i| (((i * 7919 + seed * 104_729) % 2003) as f32 - 1001.0) / 997.0)
            .collect();
        Tensor::from_vec(values, (rows, cols), &Device::Cpu).unwrap()
    }

    fn max_difference(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    #[test]
    fn few_rows_times_a_transposed_matrix_equal_gemms_product() {
        // Widths with and without a remainder of eight, one row to FEW_ROWS.
        for (m, k, n) in [(1, 768, 2000), (2, 7, 5), (3, 64, 33), (4, 13, 300)] {
            let (x, e) = (matrix(m, k, 1), matrix(n, k, 3));
            assert!(fits(&x, &e));
            let ours = matmul_transposed(&x, &e).unwrap();
            let gemm = x.matmul(&e.t().unwrap()).unwrap();
            assert_eq!(ours.dims(), [m, n]);
            assert!(max_difference(&ours, &gemm) < 1e-4, "{m}×{k}×{n}");
        }
    }

    #[test]
    fn more_rows_or_a_view_go_to_gemm() {
        assert!(!fits(&matrix(FEW_ROWS + 1, 9, 1), &matrix(6, 9, 2)));
        let view = matrix(9, 6, 2).t().unwrap();
        assert!(!fits(&matrix(1, 9, 1), &view));
        let ours = matmul_transposed(&matrix(1, 9, 1), &view).unwrap();
        let gemm = matrix(1, 9, 1).matmul(&view.t().unwrap()).unwrap();
        assert!(max_difference(&ours, &gemm) < 1e-5);
    }

    #[test]
    fn gradients_are_those_of_gemms_product() {
        let x = candle_core::Var::from_tensor(&matrix(2, 10, 1)).unwrap();
        let e = candle_core::Var::from_tensor(&matrix(3, 10, 4)).unwrap();
        let loss = |y: Tensor| y.sqr().unwrap().sum_all().unwrap();
        let ours = loss(matmul_transposed(&x, &e).unwrap()).backward().unwrap();
        let gemm = loss(x.matmul(&e.t().unwrap()).unwrap()).backward().unwrap();
        for var in [&x, &e] {
            let (a, b) = (ours.get(var).unwrap(), gemm.get(var).unwrap());
            assert!(max_difference(a, b) < 1e-4);
        }
    }
}
