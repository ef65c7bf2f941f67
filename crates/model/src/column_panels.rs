//! Natively, the products of five rows or more (a prompt's linear layers and unembedding):
//! the product's columns cut into one panel per core, each panel computed by gemm on that
//! core alone, in place. gemm's own threading forks and joins every core once or twice per
//! block of `k`; on GPT-2 small's shapes at 64 tokens on two cores that made two threads
//! no faster than one (a whole forward pass 159 against 161 ms), while one panel per core
//! halves each product (`[64, 768] · [768, 3072]`: 3.7 → 1.7 ms).
//!
//! Each output is gemm's sum along `k`, as in one call over the whole product, up to the
//! order of the last few additions where a narrow last panel takes another of gemm's
//! kernels (a few units in the last place, measured in the tests).

use crate::many_rows::Order;

/// Columns of a panel come in multiples of this: a SIMD register of f32 with AVX-512.
const COLUMN_STEP: usize = 16;

/// `a · b` for `a` `[m, k]` and `b` laid out as `order` says (`[k, n]` or `[n, k]`), both
/// contiguous: the product's `m × n` values, one panel of columns per thread of rayon's.
pub(crate) fn product(
    a: &[f32],
    m: usize,
    b: &[f32],
    n: usize,
    order: Order,
) -> candle_core::Result<Vec<f32>> {
    product_in_panels(a, m, b, n, order, rayon::current_num_threads())
}

/// [`product`] in `panels` panels (at least one).
fn product_in_panels(
    a: &[f32],
    m: usize,
    b: &[f32],
    n: usize,
    order: Order,
    panels: usize,
) -> candle_core::Result<Vec<f32>> {
    let k = a.len() / m.max(1);
    if a.len() != m * k || b.len() != k * n {
        return Err(candle_core::Error::Msg(format!(
            "a product of {} values as {m} rows by a {order:?} matrix of {} values with {n} columns",
            a.len(),
            b.len()
        )));
    }
    let mut out = vec![0.0_f32; m * n];
    let width = n.div_ceil(panels.max(1)).div_ceil(COLUMN_STEP) * COLUMN_STEP;
    let operands = Operands {
        a,
        m,
        k,
        b,
        n,
        order,
    };
    // The product's address, to share between the tasks (each writes its own columns).
    let out_address = out.as_mut_ptr().expose_provenance();
    crate::few_rows::each_task(n.div_ceil(width.max(1)), |panel| {
        let first = panel * width;
        operands.panel(first..first + width.min(n - first), out_address);
    });
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
    /// Columns `columns` of `a · b` into the `[m, n]` product at `out_address`, by gemm on
    /// this thread alone.
    #[allow(
        unsafe_code,
        reason = "gemm's entry point takes raw pointers and strides: the bounds it relies \
                  on are asserted here, and no two panels write the same column"
    )]
    fn panel(&self, columns: std::ops::Range<usize>, out_address: usize) {
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
            // Nothing to read (and a product over no steps is the zeros already there).
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
        // SAFETY: `out` is the product's `m × n` values, alive until every task is done;
        // the panel writes rows `0..m` of columns `columns`, within it and no other
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
                false,
                a.as_ptr(),
                1,
                stride(k),
                b.as_ptr().add(b_start),
                b_column_stride,
                b_row_stride,
                0.0,
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
            for panels in [1, 2, 3, 7] {
                let by_w = product_in_panels(&a, m, &w, n, Order::KByN, panels).unwrap();
                let by_e = product_in_panels(&a, m, &e, n, Order::NByK, panels).unwrap();
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

    /// Shapes that do not agree are an error, not a read past the end.
    #[test]
    fn a_matrix_of_the_wrong_size_is_an_error() {
        let a = vec![1.0_f32; 6 * 4];
        assert!(product(&a, 6, &[1.0; 4 * 3 - 1], 3, Order::KByN).is_err());
        assert!(product(&a, 6, &[1.0; 4 * 3 + 1], 3, Order::NByK).is_err());
        assert!(product(&a[..23], 6, &[1.0; 12], 3, Order::KByN).is_err());
        // Rows of no values: the product is zeros, and nothing is read.
        assert_eq!(product(&[], 6, &[], 3, Order::KByN).unwrap(), vec![0.0; 18]);
        assert_eq!(product(&[], 6, &[], 3, Order::NByK).unwrap(), vec![0.0; 18]);
    }
}
