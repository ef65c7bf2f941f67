//! Natively, the products of five rows or more (a prompt's linear layers and unembedding):
//! the product's columns cut into one panel per core, each panel computed by gemm on that
//! core alone, in place. gemm's own threading forks and joins every core once or twice per
//! block of `k`; on GPT-2 small's shapes at 64 tokens on two cores that made two threads
//! no faster than one (a whole forward pass 159 against 161 ms), while one panel per core
//! halves each product (`[64, 768] · [768, 3072]`: 3.7 → 1.7 ms). A batch of products
//! (attention's heads) is one task per matrix in the same way.
//!
//! Each output is gemm's sum along `k`, as in one call over the whole product, up to the
//! order of the last few additions where a narrow last panel takes another of gemm's
//! kernels (a few units in the last place, measured in the tests).

use crate::many_rows::{Matrices, Order};

/// Columns of a panel come in multiples of this: a SIMD register of f32 with AVX-512.
const COLUMN_STEP: usize = 16;

/// `a · b` for each of `matrices.count` pairs in turn along `a` and `b` (one for a linear
/// layer, one per head for attention): `a` `[m, k]` and `b` laid out as `order` says
/// (`[k, n]` or `[n, k]`), all contiguous. The products come one after another; the work
/// is spread over rayon's threads as one task per panel of columns, one panel per matrix
/// where there are as many matrices as threads, more where there are fewer.
pub(crate) fn product(
    a: &[f32],
    b: &[f32],
    matrices: Matrices,
    order: Order,
    bias: Option<&[f32]>,
) -> candle_core::Result<Vec<f32>> {
    product_in_panels(a, b, matrices, order, bias, rayon::current_num_threads())
}

/// [`product`] over `threads` threads: each matrix in `threads / count` panels (at
/// least one).
fn product_in_panels(
    a: &[f32],
    b: &[f32],
    matrices: Matrices,
    order: Order,
    bias: Option<&[f32]>,
    threads: usize,
) -> candle_core::Result<Vec<f32>> {
    let Matrices { count, m, n } = matrices;
    let k = a.len() / (count * m).max(1);
    if a.len() != count * m * k || b.len() != count * k * n {
        return Err(candle_core::Error::Msg(format!(
            "{count} products of {} values as {m} rows by {:?} matrices of {} values with {n} columns",
            a.len(),
            order,
            b.len()
        )));
    }
    let mut out = match bias {
        Some(bias) if bias.len() == n => bias.repeat(count * m),
        Some(bias) => {
            return Err(candle_core::Error::Msg(format!(
                "a bias of {} values for products of {n} columns",
                bias.len()
            )));
        }
        // A product over no steps is zeros.
        None if k == 0 => vec![0.0_f32; count * m * n],
        // Left unwritten until gemm writes every value (zeroing them first was 3 % of the
        // default pack's pass at 256 tokens, most of it the unembedding's logits).
        None => Vec::with_capacity(count * m * n),
    };
    let panels = (threads / count.max(1)).max(1);
    let width = n.div_ceil(panels).div_ceil(COLUMN_STEP) * COLUMN_STEP;
    let panels = n.div_ceil(width.max(1));
    // The product's address, to share between the tasks (each writes its own columns of
    // its own matrix).
    let out_address = out.as_mut_ptr().expose_provenance();
    crate::few_rows::each_task(count * panels, |task| {
        let (matrix, panel) = (task / panels, task % panels);
        let operands = Operands {
            a: &a[matrix * m * k..][..m * k],
            m,
            k,
            b: &b[matrix * k * n..][..k * n],
            n,
            order,
        };
        let first = panel * width;
        let address = out_address + matrix * m * n * size_of::<f32>();
        operands.panel(first..first + width.min(n - first), address, bias.is_some());
    });
    if out.len() < count * m * n {
        // SAFETY: the capacity is `count · m · n` (allocated above for a product without
        // a bias and with k > 0), and every value is written: the panels cover columns
        // `0..n` of each of the `count` matrices, and each panel's gemm call (k > 0, so
        // it is made) writes all `m` rows of its columns without reading them.
        #[allow(unsafe_code, reason = "a product's values, each written by gemm")]
        unsafe {
            out.set_len(count * m * n);
        }
    }
    Ok(out)
}

/// `a · b`'s operands, checked: `a` `m × k`, `b` `k × n` laid out as `order` says.
struct Operands<'a> {
    a: &'a [f32],
    m: usize,
    k: usize,
    b: &'a [f32],
    n: usize,
    order: Order,
}

impl Operands<'_> {
    /// Columns `columns` of `a · b` into the `[m, n]` product at `out_address` (within a
    /// vector of products whose other tasks write elsewhere), added to the values there
    /// where `add_to_out` (a bias), by gemm on this thread alone.
    #[allow(
        unsafe_code,
        reason = "gemm's entry point takes raw pointers and strides: the bounds it relies \
                  on are asserted here, and no two panels write the same column"
    )]
    fn panel(&self, columns: std::ops::Range<usize>, out_address: usize, add_to_out: bool) {
        let &Self {
            a,
            m,
            k,
            b,
            n,
            order,
        } = self;
        assert!(columns.end <= n && a.len() == m * k && b.len() == k * n);
        if columns.is_empty() || k == 0 {
            // Nothing to read (and a product over no steps adds nothing to what is there).
            return;
        }
        let stride = |count: usize| isize::try_from(count).unwrap_or(isize::MAX);
        // Where the panel's first column starts in `b`, and `b`'s strides between its
        // columns and between its rows, as gemm reads it (`[k, n]`).
        let (b_start, b_column_stride, b_row_stride) = match order {
            Order::KByN => (columns.start, 1, stride(n)),
            Order::NByK => (columns.start * k, stride(k), 1),
        };
        let out = std::ptr::with_exposed_provenance_mut::<f32>(out_address);
        // SAFETY: `out` is this product's `m × n` values (checked against the operands'
        // sizes in `product_in_panels`, which allocates them), alive until every task is
        // done; the panel writes rows `0..m` of columns `columns`, within it and no other
        // panel's. gemm reads `m × k` values of `a` by rows and `k × columns.len()` of
        // `b` from `b_start` with the strides of its layout, all within the slices.
        unsafe {
            gemm::gemm(
                m,
                columns.len(),
                k,
                out.add(columns.start),
                1,
                stride(n),
                add_to_out,
                a.as_ptr(),
                1,
                stride(k),
                b.as_ptr().add(b_start),
                b_column_stride,
                b_row_stride,
                // out = 1 · out + 1 · a·b where `add_to_out` (else out is not read).
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use candle_core::Tensor;

    use super::*;
    use crate::few_rows::tests::{matrix, relative_difference, values};

    /// In one panel or several, of widths on and off the column step, the product is
    /// gemm's over the whole matrix (to the bit in one panel), for either layout of `b`.
    #[test]
    fn panels_give_gemms_product() {
        for (m, k, n) in [
            (5, 3, 1),
            (8, 256, 17),
            (13, 257, 40),
            (64, 768, 100),
            (7, 1000, 33),
        ] {
            let a = matrix(m, k, 1);
            let (w, e) = (matrix(k, n, 2), matrix(n, k, 3));
            let whole_w = values(&a.matmul(&w).unwrap());
            let whole_e = values(&a.matmul(&e.t().unwrap()).unwrap());
            let (a, w, e) = (values(&a), values(&w), values(&e));
            let one = Matrices { count: 1, m, n };
            for panels in [1, 2, 3, 7] {
                let by_w = product_in_panels(&a, &w, one, Order::KByN, None, panels).unwrap();
                let by_e = product_in_panels(&a, &e, one, Order::NByK, None, panels).unwrap();
                if panels == 1 {
                    assert_eq!(by_w, whole_w, "{m}×{k}×{n}");
                    assert_eq!(by_e, whole_e, "{m}×{k}×{n} transposed");
                }
                let shape = format!("{m}×{k}×{n} in {panels} panels");
                assert!(relative_difference(&by_w, &whole_w) < 1e-6, "{shape}");
                assert!(
                    relative_difference(&by_e, &whole_e) < 1e-6,
                    "{shape}, transposed"
                );
            }
        }
    }

    /// A bias in the product from the start is the product plus the bias, in every panel
    /// and every matrix of a batch.
    #[test]
    fn a_bias_is_added_to_every_row() {
        let (count, m, k, n) = (2, 9, 300, 50);
        let a = matrix(count * m, k, 4);
        let w = matrix(count * k, n, 5);
        let bias = matrix(1, n, 6);
        let whole = a
            .reshape((count, m, k))
            .unwrap()
            .matmul(&w.reshape((count, k, n)).unwrap())
            .unwrap()
            .broadcast_add(&bias)
            .unwrap();
        let (a, w, bias, whole) = (values(&a), values(&w), values(&bias), values(&whole));
        for threads in [1, 2, 4, 7] {
            let ours = product_in_panels(
                &a,
                &w,
                Matrices { count, m, n },
                Order::KByN,
                Some(&bias),
                threads,
            )
            .unwrap();
            assert!(
                relative_difference(&ours, &whole) < 1e-6,
                "{threads} threads"
            );
        }
    }

    /// Several products (attention's heads), on fewer threads than matrices and on more:
    /// each is gemm's product of its own pair.
    #[test]
    fn each_matrix_of_a_batch_is_its_own_product() {
        let (count, m, k, n) = (3, 6, 40, 37);
        let a = Tensor::cat(&(0..count).map(|i| matrix(m, k, i)).collect::<Vec<_>>(), 0);
        let w = Tensor::cat(
            &(0..count).map(|i| matrix(k, n, 10 + i)).collect::<Vec<_>>(),
            0,
        );
        let e = Tensor::cat(
            &(0..count).map(|i| matrix(n, k, 20 + i)).collect::<Vec<_>>(),
            0,
        );
        let (a, w, e) = (a.unwrap(), w.unwrap(), e.unwrap());
        let batch = |x: &Tensor, rows| x.reshape((count, rows, x.dim(1).unwrap())).unwrap();
        let whole_w = values(&batch(&a, m).matmul(&batch(&w, k)).unwrap());
        let whole_e = values(&batch(&a, m).matmul(&batch(&e, n).t().unwrap()).unwrap());
        let (a, w, e) = (values(&a), values(&w), values(&e));
        let matrices = Matrices { count, m, n };
        for threads in [1, 2, 5, 8] {
            let by_w = product_in_panels(&a, &w, matrices, Order::KByN, None, threads).unwrap();
            let by_e = product_in_panels(&a, &e, matrices, Order::NByK, None, threads).unwrap();
            assert!(
                relative_difference(&by_w, &whole_w) < 1e-6,
                "{threads} threads"
            );
            assert!(
                relative_difference(&by_e, &whole_e) < 1e-6,
                "{threads} threads, transposed"
            );
        }
        // One value short of the last matrix: an error.
        assert!(product(&a, &w[1..], matrices, Order::KByN, None).is_err());
    }

    /// Shapes that do not agree are an error, not a read past the end.
    #[test]
    fn a_matrix_of_the_wrong_size_is_an_error() {
        let a = vec![1.0_f32; 6 * 4];
        let one = Matrices {
            count: 1,
            m: 6,
            n: 3,
        };
        assert!(product(&a, &[1.0; 4 * 3 - 1], one, Order::KByN, None).is_err());
        assert!(product(&a, &[1.0; 4 * 3 + 1], one, Order::NByK, None).is_err());
        assert!(product(&a[..23], &[1.0; 12], one, Order::KByN, None).is_err());
        assert!(product(&a, &[1.0; 12], one, Order::KByN, Some(&[1.0; 4])).is_err());
        // Rows of no values: the product is zeros (or the bias), and nothing is read.
        assert_eq!(
            product(&[], &[], one, Order::KByN, None).unwrap(),
            vec![0.0; 18]
        );
        assert_eq!(
            product(&[], &[], one, Order::NByK, Some(&[1.0, 2.0, 3.0])).unwrap(),
            [1.0, 2.0, 3.0].repeat(6)
        );
    }
}
