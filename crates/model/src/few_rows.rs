//! Products of a few rows (decoding one token, or a handful), which read each weight
//! once and so are bound by memory, not arithmetic:
//! - `x · eᵀ` for a matrix `e` stored `[out, in]`, as the unembedding is (the token
//!   embeddings, tied), where gemm, tiling for many rows, read the largest matrix of a
//!   small model slower than the rest (GPT-2 small's 1-token pass: 23.1 → 20.9 ms
//!   natively, 22.2 → 20.6 ms in Chromium): each row of `e` is read once, as dot products
//!   with every row of `x`, in eight running sums that compile to SIMD natively and in
//!   wasm32 (simd128);
//! - `x · w` for a weight stored `[in, out]`, as linear layers are, where gemm computes a
//!   few rows on one core: each row of `w` is added into the outputs, scaled, by tasks
//!   that each take consecutive rows and whose partial sums are then added in order
//!   (GPT-2 small's 1-token pass on 2 cores: 43 → 31 ms), in two shares of the rows
//!   ([`depth_halves`]) added last, so that a column helper computes one share and this
//!   thread the other, each reading its rows of `w` in one run.
//!
//! Both read four rows of the matrix at once, one from each quarter of a task's rows: a
//! core reading one stream waited on memory between the prefetcher's reads (GPT-2
//! small's 1-token pass natively ~34 → ~25 ms; in Chromium, where gemm took the linear
//! layers before, ~55 → ~43 ms).
//! Natively both spread their tasks over every core (rayon), as `column_panels` does for
//! many rows.
//! The tasks depend on the shapes only, so each output is the same sum in the same order
//! however many threads there are. Both have gradients, for the passes that take one.

use candle_core::{CpuStorage, CustomOp2, DType, Device, Layout, Shape, Tensor};

use std::ops::Range;

use crate::Result;
use crate::cpu_rows::contiguous_rows;
use crate::lanes;
use crate::many_rows::Order;

/// The most rows of `x` the kernel here takes; gemm takes more.
pub(crate) const FEW_ROWS: usize = 4;

/// About how many values of a weight one task of [`RowsTimes`] reads (256 KB): enough
/// that handing out tasks costs little beside reading them, few enough that every core
/// gets several. It depends on the weight's shape only, so the sums are the same
/// whatever the threads.
const WEIGHT_VALUES_PER_TASK: usize = 65_536;

/// How many rows of the embedding one task of [`RowsTimesTransposed`] takes.
const EMBEDDING_ROWS_PER_TASK: usize = 1024;

/// `x · eᵀ` for `x` `[m, k]` and `e` `[n, k]`: a few rows by [`RowsTimesTransposed`],
/// more by `many_rows`' kernel where this build has one, otherwise gemm's.
pub(crate) fn matmul_transposed(x: &Tensor, e: &Tensor) -> Result<Tensor> {
    Ok(if fits(x, e, 1) {
        x.contiguous()?.apply_op2(e, RowsTimesTransposed)?
    } else if let Some(product) = crate::many_rows::matmul_transposed(x, e)? {
        product
    } else {
        x.matmul(&e.t()?)?
    })
}

/// `x · w` for `x` `[m, k]` and `w` `[k, n]`: a few rows by [`RowsTimes`], more by
/// `many_rows`' kernel where this build has one, otherwise gemm's.
pub(crate) fn matmul(x: &Tensor, w: &Tensor) -> Result<Tensor> {
    Ok(if fits(x, w, 0) {
        x.contiguous()?.apply_op2(w, RowsTimes)?
    } else if let Some(product) = crate::many_rows::matmul(x, w)? {
        product
    } else {
        x.matmul(w)?
    })
}

/// Whether a kernel here applies: a few rows (see [`rows_for_a_kernel`]).
fn fits(x: &Tensor, matrix: &Tensor, axis_of_k: usize) -> bool {
    rows_for_a_kernel(x, matrix, axis_of_k).is_some_and(|m| m <= FEW_ROWS)
}

/// The rows of `x` where a CPU kernel of ours can take `x · matrix`: f32 rows on the CPU,
/// a contiguous f32 matrix whose axis `axis_of_k` (0 for `[k, n]`, 1 for `[n, k]`) is as
/// long as the rows; `None` where not.
pub(crate) fn rows_for_a_kernel(x: &Tensor, matrix: &Tensor, axis_of_k: usize) -> Option<usize> {
    let (Ok((m, k)), Ok(dims)) = (x.dims2(), matrix.dims2()) else {
        return None;
    };
    let k_of_matrix = if axis_of_k == 0 { dims.0 } else { dims.1 };
    (m > 0
        && k == k_of_matrix
        && k > 0
        && x.dtype() == DType::F32
        && matrix.dtype() == DType::F32
        && matches!(x.device(), Device::Cpu)
        && matrix.is_contiguous())
    .then_some(m)
}

/// `task(i)` for every `i < tasks`, their results in order: on every core natively, in
/// turn in the browser.
pub(crate) fn each_task<T: Send>(tasks: usize, task: impl Fn(usize) -> T + Send + Sync) -> Vec<T> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        (0..tasks).into_par_iter().map(task).collect()
    }
    #[cfg(target_arch = "wasm32")]
    {
        (0..tasks).map(task).collect()
    }
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
        let out = crate::column_split::shared_product(x, m, e, n, Order::NByK)
            .unwrap_or_else(|| rows_times_transposed(x, k, e, 0..n));
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

/// `x · w`, `w` `[k, n]`.
struct RowsTimes;

impl CustomOp2 for RowsTimes {
    fn name(&self) -> &'static str {
        "few-rows-times"
    }

    fn cpu_fwd(
        &self,
        x_storage: &CpuStorage,
        x_layout: &Layout,
        w_storage: &CpuStorage,
        w_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, k) = contiguous_rows(x_storage, x_layout)?;
        let (w, n) = contiguous_rows(w_storage, w_layout)?;
        if w.len() != k * n {
            return Err(candle_core::Error::Msg(format!(
                "rows of {k} times a matrix of {} rows",
                w.len() / n
            )));
        }
        let m = x.len() / k;
        let out = crate::column_split::shared_product(x, m, w, n, Order::KByN)
            .unwrap_or_else(|| rows_times(x, k, w, n));
        Ok((CpuStorage::F32(out), Shape::from((m, n))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(grad.matmul(&w.t()?)?), Some(x.t()?.matmul(grad)?)))
    }
}

/// Columns `columns` of `x · eᵀ` (`x` rows of `k`, `e` `[n, k]`), `m × columns.len()`
/// values row by row: each output is one row of `e` against one row of `x` ([`dot`]'s
/// sum), whichever columns are asked for.
pub(crate) fn rows_times_transposed(
    x: &[f32],
    k: usize,
    e: &[f32],
    columns: Range<usize>,
) -> Vec<f32> {
    let m = x.len() / k;
    let (first, width) = (columns.start, columns.len());
    let e = &e[first * k..columns.end * k];
    let block = EMBEDDING_ROWS_PER_TASK * k;
    // Per task, `[its rows of e, m]`: each row of `e` read once, against every row of x.
    let blocks = each_task(e.len().div_ceil(block), |t| {
        let rows = &e[t * block..((t + 1) * block).min(e.len())];
        dots_in_streams(x, rows, k)
    });
    let mut out = vec![0.0; m * width];
    for (v, dots) in blocks.iter().flat_map(|b| b.chunks_exact(m)).enumerate() {
        for (r, &value) in dots.iter().enumerate() {
            out[r * width + v] = value;
        }
    }
    out
}

/// The two shares of the rows of a weight `[k, n]` that [`rows_times`] sums apart, then
/// adds: where a column helper computes one share and this thread the other, each reads
/// its rows of `w` in one run from memory. (Halves of the columns read every row in two
/// short pieces: natively, two threads reading GPT-2 small's `[768, 3072]` weights so took
/// as long as one thread reading them whole, 18 ms for 24 of them, against 11 ms by
/// halves of the rows; in Chromium, the 1-token pass with a helper was no faster than
/// without.)
pub(crate) fn depth_halves(k: usize) -> [Range<usize>; 2] {
    let cut = k.div_ceil(2);
    [0..cut, cut..k]
}

/// `x · w` (`x` rows of `k`, `w` `[k, n]`), `m × n` values row by row: the sums over each
/// of [`depth_halves`] ([`add_rows_times`]), added in order onto zeros.
pub(crate) fn rows_times(x: &[f32], k: usize, w: &[f32], n: usize) -> Vec<f32> {
    let mut out = vec![0.0; x.len() / k * n];
    for rows in depth_halves(k) {
        add_rows_times(x, k, w, n, rows, &mut out);
    }
    out
}

/// Adds into `out` (`m × n`, row by row) the sum over rows `rows` of `w` (`[k, n]`) of
/// `x`'s values times them: by tasks of consecutive rows from `rows.start`, whose partial
/// sums are added in order onto zeros, then onto `out`. Two shares added onto zeros give
/// the same bits in either order.
pub(crate) fn add_rows_times(
    x: &[f32],
    k: usize,
    w: &[f32],
    n: usize,
    rows: Range<usize>,
    out: &mut [f32],
) {
    let m = x.len() / k;
    let rows_per_task = (WEIGHT_VALUES_PER_TASK / n.max(1)).clamp(1, k.max(1));
    let row_of_w = |p: usize| &w[p * n..(p + 1) * n];
    let start = rows.start;
    // Per task, `[m, n]`: the sum over its rows of w, read in order from memory.
    let partial_sums = each_task(rows.len().div_ceil(rows_per_task), |t| {
        let rows = start + t * rows_per_task..(start + (t + 1) * rows_per_task).min(rows.end);
        let mut sums = vec![0.0_f32; m * n];
        // Four rows at a time, one from each quarter of the task's rows: four streams
        // from memory at once, and the sums read and written once for the four.
        let quarter = rows.len() / STREAMS;
        for i in 0..quarter {
            let p: [usize; STREAMS] = std::array::from_fn(|s| rows.start + s * quarter + i);
            let w_rows = p.map(row_of_w);
            for (input, sums) in x.chunks_exact(k).zip(sums.chunks_exact_mut(n.max(1))) {
                let scale = p.map(|p| input[p]);
                for (j, sum) in sums.iter_mut().enumerate() {
                    *sum += scale[0] * w_rows[0][j]
                        + scale[1] * w_rows[1][j]
                        + scale[2] * w_rows[2][j]
                        + scale[3] * w_rows[3][j];
                }
            }
        }
        for p in rows.start + STREAMS * quarter..rows.end {
            let w_row = row_of_w(p);
            for (input, sums) in x.chunks_exact(k).zip(sums.chunks_exact_mut(n.max(1))) {
                let scale = input[p];
                for (sum, &weight) in sums.iter_mut().zip(w_row) {
                    *sum += scale * weight;
                }
            }
        }
        sums
    });
    let mut share = vec![0.0_f32; m * n];
    for sums in &partial_sums {
        for (total, part) in share.iter_mut().zip(sums) {
            *total += part;
        }
    }
    for (total, part) in out.iter_mut().zip(&share) {
        *total += part;
    }
}

/// `[rows of e, m]`: every row of `e` (`rows`, each `k` long) against every row of `x`,
/// each as [`dot`] gives it, the rows read [`STREAMS`] at a time, one from each quarter
/// of `rows`.
fn dots_in_streams(x: &[f32], rows: &[f32], k: usize) -> Vec<f32> {
    let m = x.len() / k;
    let count = rows.len() / k;
    let quarter = count / STREAMS;
    let row = |r: usize| &rows[r * k..(r + 1) * k];
    let mut out = vec![0.0_f32; count * m];
    for i in 0..quarter {
        let streams: [usize; STREAMS] = std::array::from_fn(|s| s * quarter + i);
        for (r, input) in x.chunks_exact(k).enumerate() {
            let dots = dots_of_rows(input, streams.map(row));
            for (&e_row, dot) in streams.iter().zip(dots) {
                out[e_row * m + r] = dot;
            }
        }
    }
    for e_row in STREAMS * quarter..count {
        for (r, input) in x.chunks_exact(k).enumerate() {
            out[e_row * m + r] = dot(input, row(e_row));
        }
    }
    out
}

/// Rows of a matrix read at once, from as many places in memory, by the kernels here.
const STREAMS: usize = 4;

/// `a · row` for each of `rows`, the rows read side by side: per row, eight running sums
/// (two SIMD registers, [`lanes`]) over the blocks of eight, then their sum plus the
/// remainder's. (Written as plain arrays, the browser's build vectorized it across the
/// rows instead, three shuffles to a multiply: a small model's unembedding at one token
/// took 57% of its pass.)
fn dots_of_rows<const ROWS: usize>(a: &[f32], rows: [&[f32]; ROWS]) -> [f32; ROWS] {
    let (a_blocks, a_tail) = a.as_chunks::<8>();
    let blocks = a_blocks.len() * 8;
    let row_blocks = rows.map(|row| row[..blocks].as_chunks::<8>().0);
    let halves = |block: &[f32; 8]| {
        let [a, b, c, d, e, f, g, h] = *block;
        [lanes::load(&[a, b, c, d]), lanes::load(&[e, f, g, h])]
    };
    let mut sums = [[lanes::splat(0.0); 2]; ROWS];
    for (j, a_block) in a_blocks.iter().enumerate() {
        let [left, right] = halves(a_block);
        for (sums, row) in sums.iter_mut().zip(&row_blocks) {
            let [row_left, row_right] = halves(&row[j]);
            sums[0] = lanes::madd(left, row_left, sums[0]);
            sums[1] = lanes::madd(right, row_right, sums[1]);
        }
    }
    std::array::from_fn(|s| {
        let tail: f32 = a_tail
            .iter()
            .zip(&rows[s][blocks..])
            .map(|(x, y)| x * y)
            .sum();
        let [left, right] = sums[s].map(lanes::to_array);
        left.iter().chain(&right).sum::<f32>() + tail
    })
}

/// `a · b`, as [`dots_of_rows`] sums it.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let [product] = dots_of_rows(a, [b]);
    product
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    /// A `[rows, cols]` matrix of varied values (the other product kernels' tests use it
    /// too, with [`values`] and [`relative_difference`]).
    pub(crate) fn matrix(rows: usize, cols: usize, seed: usize) -> Tensor {
        let values: Vec<f32> = (0..rows * cols)
            // Wrapping: 32-bit `usize` in the browser overflows on large matrices.
            .map(|i| {
                let mixed = i
                    .wrapping_mul(7919)
                    .wrapping_add(seed.wrapping_mul(104_729));
                ((mixed % 2003) as f32 - 1001.0) / 997.0
            })
            .collect();
        Tensor::from_vec(values, (rows, cols), &Device::Cpu).unwrap()
    }

    /// A tensor's values in order.
    pub(crate) fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    /// The largest difference between two lists of values, relative to the largest value
    /// of `b` (or 1).
    pub(crate) fn relative_difference(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        let largest = b.iter().fold(1.0_f32, |m, v| m.max(v.abs()));
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
            / largest
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
            assert!(fits(&x, &e, 1));
            let ours = matmul_transposed(&x, &e).unwrap();
            let gemm = x.matmul(&e.t().unwrap()).unwrap();
            assert_eq!(ours.dims(), [m, n]);
            assert!(max_difference(&ours, &gemm) < 1e-4, "{m}×{k}×{n}");
        }
    }

    #[test]
    fn few_rows_times_a_matrix_equal_gemms_product() {
        // One task and several (WEIGHT_VALUES_PER_TASK), a last task of fewer rows, one row
        // to FEW_ROWS, widths with and without a remainder of SIMD lanes.
        for (m, k, n) in [(1, 768, 3072), (2, 7, 5), (3, 300, 1000), (4, 13, 65_537)] {
            let (x, w) = (matrix(m, k, 1), matrix(k, n, 3));
            assert!(fits(&x, &w, 0));
            let ours = matmul(&x, &w).unwrap();
            let gemm = x.matmul(&w).unwrap();
            assert_eq!(ours.dims(), [m, n]);
            assert!(max_difference(&ours, &gemm) < 1e-3, "{m}×{k}×{n}");
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn the_sums_are_the_same_on_one_thread_or_many() {
        let run_on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let x = matrix(3, 1000, 1);
                let by_rows = matmul(&x, &matrix(1000, 700, 2)).unwrap();
                let by_dots = matmul_transposed(&x, &matrix(2500, 1000, 5)).unwrap();
                (
                    by_rows.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                    by_dots.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                )
            })
        };
        assert_eq!(run_on(1), run_on(3));
    }

    /// Read four rows at a time or one, each dot product is the same sum.
    #[test]
    fn dots_in_streams_are_each_rows_dot_to_the_bit() {
        let (m, k, count) = (3, 37, 4 * 5 + 3);
        let (x, e) = (values(&matrix(m, k, 1)), values(&matrix(count, k, 2)));
        let ours = dots_in_streams(&x, &e, k);
        for (row, dots) in e.chunks_exact(k).zip(ours.chunks_exact(m)) {
            for (input, &ours) in x.chunks_exact(k).zip(dots) {
                assert_eq!(ours.to_bits(), dot(input, row).to_bits());
            }
        }
    }

    #[test]
    fn more_rows_or_a_view_go_to_gemm() {
        assert!(!fits(&matrix(FEW_ROWS + 1, 9, 1), &matrix(9, 6, 2), 0));
        assert!(!fits(&matrix(1, 9, 1), &matrix(6, 9, 2).t().unwrap(), 0));
        assert!(!fits(&matrix(FEW_ROWS + 1, 9, 1), &matrix(6, 9, 2), 1));
        let view = matrix(9, 6, 2).t().unwrap();
        assert!(!fits(&matrix(1, 9, 1), &view, 1));
        let ours = matmul_transposed(&matrix(1, 9, 1), &view).unwrap();
        let gemm = matrix(1, 9, 1).matmul(&view.t().unwrap()).unwrap();
        assert!(max_difference(&ours, &gemm) < 1e-5);
    }

    #[test]
    fn gradients_are_those_of_gemms_product() {
        let x = candle_core::Var::from_tensor(&matrix(2, 10, 1)).unwrap();
        let e = candle_core::Var::from_tensor(&matrix(3, 10, 4)).unwrap();
        let w = candle_core::Var::from_tensor(&matrix(10, 3, 4)).unwrap();
        let loss = |y: Tensor| y.sqr().unwrap().sum_all().unwrap();
        let ours = loss(matmul_transposed(&x, &e).unwrap()).backward().unwrap();
        let gemm = loss(x.matmul(&e.t().unwrap()).unwrap()).backward().unwrap();
        for var in [&x, &e] {
            let (a, b) = (ours.get(var).unwrap(), gemm.get(var).unwrap());
            assert!(max_difference(a, b) < 1e-4);
        }
        let ours = loss(matmul(&x, &w).unwrap()).backward().unwrap();
        let gemm = loss(x.matmul(&w).unwrap()).backward().unwrap();
        for var in [&x, &w] {
            let (a, b) = (ours.get(var).unwrap(), gemm.get(var).unwrap());
            assert!(max_difference(a, b) < 1e-4);
        }
    }
}
