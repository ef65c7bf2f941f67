//! The browser's matrix products of many rows, in tiles of SIMD sums: with relaxed SIMD
//! built up by fused multiply-adds (`f32x4.relaxed_madd`, one FMA instruction on x86 and
//! ARM), with simd128 alone by a multiply and an add. gemm's wasm kernel has separate
//! multiplies and adds too, and was slower than both (in Chromium, a simd128 build's
//! forward pass of GPT-2 small at 64 tokens: gemm 646–670 ms, these tiles 564–574). Two
//! kernels, one per layout of `b`:
//!
//! - a weight stored `[k, n]` (linear layers): tiles of 4 rows × 8 columns of the product,
//!   in eight SIMD sums of a broadcast value of `a` times eight values of `b` per step.
//!   The rows of `a` are laid out tile by tile once per product (four values per step,
//!   block by block of [`DEPTH`] steps: [`TileRows`], reused for every part of the
//!   columns a shared product is computed in), and per block each block of eight columns
//!   of `b` too (eight per step), so that the inner loop reads both in order; each tile's
//!   sums over a block are then added into the product, blocks in order along `k`. In Chromium on GPT-2 small's shapes at 64 tokens
//!   with relaxed SIMD: gemm 25–33 GFLOP/s, these tiles 32–42.
//! - the embedding `[n, k]`, read transposed (the unembedding): where its rows are no
//!   longer than a block ([`DEPTH`]), the same tiles, each block of eight rows of `e`
//!   laid out as eight columns. Longer rows would have the tiles add into the product
//!   once per block, and an unembedding's product is too large for the caches: there, 4
//!   rows of `a` × 2 rows of `e` in eight SIMD sums of four lanes each, straight from
//!   memory, summed across lanes at the end. GPT-2 small's unembedding at 64 tokens with
//!   relaxed SIMD: gemm 192 ms, these 130. The default pack's (`k` 256) at 256 tokens
//!   in Chromium: pair by pair 44.8 ms, in tiles 33.2.
//!
//! Only the wasm32 builds run these ([`TILED`]); the native build compiles the same
//! kernels from plain arrays for the tests of their layout.

use std::ops::Range;

use crate::lanes;
use crate::many_rows::Order;

/// Whether this build multiplies matrices of many rows in these tiles: the browser's builds.
pub(crate) const TILED: bool = cfg!(target_arch = "wasm32");

/// Rows of a tile: four SIMD registers' worth of broadcast values of `a` per step.
const ROWS: usize = 4;
/// Columns of a tile: two SIMD registers of `b` per step. With the 4 × 2 sums that is 11 of
/// the 16 registers V8 gives wasm SIMD on x86-64; larger tiles spill (measured).
const COLUMNS: usize = 8;
/// Steps along `k` per block: a block of eight columns of `b` (8 KB) stays in the first
/// level cache while every tile of rows passes over it.
const DEPTH: usize = 256;
/// Rows of `e` per tile of the transposed product: with four rows of `a`, eight SIMD sums
/// and the six vectors they read per step, again within V8's 16 registers.
const DOT_COLUMNS: usize = 2;

/// `a · b` for `a` `[m, k]` and `b` laid out as `order` says (`[k, n]` or `[n, k]`), both
/// contiguous: the product's `m × n` values, in the tiles of that layout.
pub(crate) fn product(a: &[f32], m: usize, b: &[f32], n: usize, order: Order) -> Vec<f32> {
    product_columns(a, m, b, n, order, 0..n)
}

/// Columns `columns` of [`product`]: `m × columns.len()` values, row by row. Each value is
/// summed alike whichever columns are asked for, so the columns of two calls side by side
/// are the whole product's to the bit.
pub(crate) fn product_columns(
    a: &[f32],
    m: usize,
    b: &[f32],
    n: usize,
    order: Order,
    columns: Range<usize>,
) -> Vec<f32> {
    let mut out = vec![0.0_f32; m * columns.len()];
    let width = columns.len();
    TileRows::new(a, m, order).columns_into(b, n, columns, &mut out, width);
    out
}

/// The rows of `a` (`[m, k]`) prepared once for the columns of products with weights laid
/// out as `order` says, asked for in as many parts as wanted: laid out tile by tile for
/// the tiles, or kept as they are for the pair-by-pair dot products.
pub(crate) struct TileRows<'a> {
    a: &'a [f32],
    m: usize,
    k: usize,
    order: Order,
    /// Per block of [`DEPTH`] steps, per tile of rows, [`DEPTH`] steps of four values of
    /// `a` (the last block's only partly used); `None` where the dot products take it.
    tiles: Option<Vec<[f32; ROWS]>>,
}

impl<'a> TileRows<'a> {
    /// `a`'s `m` rows, laid out for the kernel that products with a weight of `order`
    /// take.
    pub(crate) fn new(a: &'a [f32], m: usize, order: Order) -> Self {
        let k = a.len() / m.max(1);
        let row_tiles = m.div_ceil(ROWS);
        // Rows of `e` longer than a block would have the tiles add into a product too
        // large for the caches once per block: those are summed whole, pair by pair.
        let tiles = (order == Order::KByN || k <= DEPTH).then(|| {
            let mut tiles = vec![[0.0_f32; ROWS]; k.div_ceil(DEPTH) * row_tiles * DEPTH];
            for (block, start) in (0..k).step_by(DEPTH).enumerate() {
                let depth = DEPTH.min(k - start);
                let block_tiles = &mut tiles[block * row_tiles * DEPTH..][..row_tiles * DEPTH];
                for (t, tile) in block_tiles.chunks_exact_mut(DEPTH).enumerate() {
                    let rows = t * ROWS..(t * ROWS + ROWS).min(m);
                    lay_out_rows(a, k, rows, start, &mut tile[..depth]);
                }
            }
            tiles
        });
        Self {
            a,
            m,
            k,
            order,
            tiles,
        }
    }

    /// Columns `columns` of `a · w` (`w` `[k, n]` or `[n, k]` as laid out for), row `r`'s
    /// added into `out[r * stride..]`: `out` holds zeros there, `stride` ≥
    /// `columns.len()`.
    pub(crate) fn columns_into(
        &self,
        w: &[f32],
        n: usize,
        columns: Range<usize>,
        out: &mut [f32],
        stride: usize,
    ) {
        match &self.tiles {
            Some(tiles) => self.tiled_product(tiles, w, n, columns, out, stride),
            None => dot_product(self.a, self.m, w, columns, out, stride),
        }
    }

    /// [`Self::columns_into`] in the tiles: each block of eight columns of `w` is laid out
    /// step by step (from `[k, n]` by rows, from `[n, k]` by columns), then every tile of
    /// rows passes over it.
    fn tiled_product(
        &self,
        tiles: &[[f32; ROWS]],
        w: &[f32],
        n: usize,
        columns: Range<usize>,
        out: &mut [f32],
        stride: usize,
    ) {
        let (m, k, offset) = (self.m, self.k, columns.start);
        let row_tiles = m.div_ceil(ROWS);
        // Per block of columns, DEPTH steps of eight values of `w`.
        let mut w_panel = vec![[0.0_f32; COLUMNS]; DEPTH];
        for (block, start) in (0..k).step_by(DEPTH).enumerate() {
            let depth = DEPTH.min(k - start);
            let a_tiles = &tiles[block * row_tiles * DEPTH..][..row_tiles * DEPTH];
            for first in columns.clone().step_by(COLUMNS) {
                let width = COLUMNS.min(columns.end - first);
                let panel = &mut w_panel[..depth];
                match self.order {
                    Order::KByN => lay_out_columns(w, n, start, first, width, panel),
                    Order::NByK => lay_out_transposed(w, k, start, first, width, panel),
                }
                for (t, tile) in a_tiles.chunks_exact(DEPTH).enumerate() {
                    let sums = tile_sums(&tile[..depth], &w_panel[..depth]);
                    for (r, row_sums) in sums.iter().enumerate().take(m - t * ROWS) {
                        let row = (t * ROWS + r) * stride + first - offset;
                        for (total, sum) in out[row..row + width].iter_mut().zip(row_sums) {
                            *total += sum;
                        }
                    }
                }
            }
        }
    }
}

/// Rows `rows` of `a` (`[m, k]`) over the steps `start..start + tile.len()`, into `tile`
/// (four values per step), zeros for the rows past `a`'s last.
fn lay_out_rows(
    a: &[f32],
    k: usize,
    rows: std::ops::Range<usize>,
    start: usize,
    tile: &mut [[f32; ROWS]],
) {
    let count = rows.len();
    for (r, row) in rows.enumerate() {
        let values = &a[row * k + start..row * k + start + tile.len()];
        for (step, &value) in tile.iter_mut().zip(values) {
            step[r] = value;
        }
    }
    for r in count..ROWS {
        for step in tile.iter_mut() {
            step[r] = 0.0;
        }
    }
}

/// Columns `first..first + width` (`width` ≤ [`COLUMNS`]) of `w` (`[k, n]`) over the
/// steps `start..start + panel.len()`, into `panel` (eight values per step), zeros past
/// the last.
fn lay_out_columns(
    w: &[f32],
    n: usize,
    start: usize,
    first: usize,
    width: usize,
    panel: &mut [[f32; COLUMNS]],
) {
    for (p, step) in panel.iter_mut().enumerate() {
        let row = (start + p) * n + first;
        if width == COLUMNS {
            // A copy of known length: no call to memcpy per step.
            step.copy_from_slice(&w[row..row + COLUMNS]);
        } else {
            step[..width].copy_from_slice(&w[row..row + width]);
            step[width..].fill(0.0);
        }
    }
}

/// Rows `first..first + width` of `e` (`[n, k]`) over the steps `start..start +
/// panel.len()`, into `panel` as columns (eight values per step), zeros past the last.
fn lay_out_transposed(
    e: &[f32],
    k: usize,
    start: usize,
    first: usize,
    width: usize,
    panel: &mut [[f32; COLUMNS]],
) {
    for c in 0..COLUMNS {
        if c < width {
            let row = &e[(first + c) * k + start..][..panel.len()];
            for (step, &value) in panel.iter_mut().zip(row) {
                step[c] = value;
            }
        } else {
            for step in panel.iter_mut() {
                step[c] = 0.0;
            }
        }
    }
}

/// One tile's sums over a block, `Σ_p a[p][r] · w[p][c]`: per step, each of the four
/// values of `a` broadcast and multiplied into two vectors of `w`'s eight.
fn tile_sums(a: &[[f32; ROWS]], w: &[[f32; COLUMNS]]) -> [[f32; COLUMNS]; ROWS] {
    let mut sums = [[lanes::splat(0.0); 2]; ROWS];
    for (a, w) in a.iter().zip(w) {
        let left = lanes::load(&[w[0], w[1], w[2], w[3]]);
        let right = lanes::load(&[w[4], w[5], w[6], w[7]]);
        for (sums, &value) in sums.iter_mut().zip(a) {
            let value = lanes::splat(value);
            sums[0] = lanes::madd(value, left, sums[0]);
            sums[1] = lanes::madd(value, right, sums[1]);
        }
    }
    sums.map(|[left, right]| {
        let [a, b, c, d] = lanes::to_array(left);
        let [e, f, g, h] = lanes::to_array(right);
        [a, b, c, d, e, f, g, h]
    })
}

/// Columns `columns` of `a · eᵀ` for `a` `[m, k]` and `e` `[n, k]` (both contiguous; only
/// the rows of `e` for `columns` are read), row `r`'s into `out[r * stride..]`, by tiles
/// of [`ROWS`] rows of `a` and [`DOT_COLUMNS`] rows of `e`. A tile past the last row (or
/// column) repeats it, and only the real outputs are kept.
fn dot_product(
    a: &[f32],
    m: usize,
    e: &[f32],
    columns: Range<usize>,
    out: &mut [f32],
    stride: usize,
) {
    let k = a.len() / m;
    let offset = columns.start;
    for first in columns.clone().step_by(DOT_COLUMNS) {
        let e_rows: [&[f32]; DOT_COLUMNS] =
            std::array::from_fn(|c| row(e, k, first + c, columns.end));
        for top in (0..m).step_by(ROWS) {
            let a_rows: [&[f32]; ROWS] = std::array::from_fn(|r| row(a, k, top + r, m));
            let sums = dot_sums(a_rows, e_rows);
            for (r, sums) in sums.iter().enumerate().take(m - top) {
                let row = (top + r) * stride + first - offset;
                let width = DOT_COLUMNS.min(columns.end - first);
                out[row..row + width].copy_from_slice(&sums[..width]);
            }
        }
    }
}

/// Row `i` of `count` rows of `k` values, or the last row past it.
fn row(values: &[f32], k: usize, i: usize, count: usize) -> &[f32] {
    let i = i.min(count - 1);
    &values[i * k..(i + 1) * k]
}

/// `a_rows[r] · e_rows[c]` for every pair, all rows of one length: four lanes of sums per
/// pair, added across at the end, then the steps past the last four.
fn dot_sums(a_rows: [&[f32]; ROWS], e_rows: [&[f32]; DOT_COLUMNS]) -> [[f32; DOT_COLUMNS]; ROWS] {
    let a_vectors = a_rows.map(|row| row.as_chunks::<4>().0);
    let e_vectors = e_rows.map(|row| row.as_chunks::<4>().0);
    let steps = e_vectors[0].len();
    let mut sums = [[lanes::splat(0.0); DOT_COLUMNS]; ROWS];
    for p in 0..steps {
        let e_step = e_vectors.map(|row| lanes::load(&row[p]));
        for (sums, row) in sums.iter_mut().zip(&a_vectors) {
            let value = lanes::load(&row[p]);
            for (sum, &e_value) in sums.iter_mut().zip(&e_step) {
                *sum = lanes::madd(value, e_value, *sum);
            }
        }
    }
    let tail = steps * 4;
    std::array::from_fn(|r| {
        std::array::from_fn(|c| {
            let across: f32 = lanes::to_array(sums[r][c]).iter().sum();
            let rest: f32 = a_rows[r][tail..]
                .iter()
                .zip(&e_rows[c][tail..])
                .map(|(x, y)| x * y)
                .sum();
            across + rest
        })
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use crate::few_rows::tests::{matrix, relative_difference, values};

    #[cfg(target_arch = "wasm32")]
    wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

    /// Rows and widths on and off the tiles' edges, and `k` of one block, several and a
    /// part of one.
    const SHAPES: [(usize, usize, usize); 5] = [
        (5, 3, 1),
        (8, 256, 8),
        (13, 257, 19),
        (64, 768, 40),
        (7, 1000, 33),
    ];

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn tiles_equal_gemms_product_for_either_order_of_b() {
        for (m, k, n) in SHAPES {
            let a = matrix(m, k, 1);
            let (w, e) = (matrix(k, n, 2), matrix(n, k, 3));
            let a_values = values(&a);
            let by_w = product(&a_values, m, &values(&w), n, Order::KByN);
            let by_e = product(&a_values, m, &values(&e), n, Order::NByK);
            let gemm_w = values(&a.matmul(&w).unwrap());
            let gemm_e = values(&a.matmul(&e.t().unwrap()).unwrap());
            assert!(relative_difference(&by_w, &gemm_w) < 1e-5, "{m}×{k}×{n}");
            assert!(
                relative_difference(&by_e, &gemm_e) < 1e-5,
                "{m}×{k}×{n}, transposed"
            );
        }
    }

    /// Columns asked for in two parts, cut anywhere, are the whole product's to the bit.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn columns_in_two_parts_are_the_whole_products_bits() {
        for (m, k, n) in SHAPES {
            let a = values(&matrix(m, k, 4));
            for (order, b) in [
                (Order::KByN, values(&matrix(k, n, 5))),
                (Order::NByK, values(&matrix(n, k, 6))),
            ] {
                let whole = product(&a, m, &b, n, order);
                for cut in [0, 1, n / 2, n.div_ceil(2).div_ceil(8) * 8, n - 1, n] {
                    let cut = cut.min(n);
                    let left = product_columns(&a, m, &b, n, order, 0..cut);
                    let right = product_columns(&a, m, &b, n, order, cut..n);
                    let joined: Vec<f32> = (0..m)
                        .flat_map(|r| {
                            let left = &left[r * cut..(r + 1) * cut];
                            let right = &right[r * (n - cut)..(r + 1) * (n - cut)];
                            left.iter().chain(right).copied()
                        })
                        .collect();
                    let same = joined
                        .iter()
                        .zip(&whole)
                        .all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(same, "{m}×{k}×{n} {order:?}, cut at {cut}");
                }
            }
        }
    }
}
