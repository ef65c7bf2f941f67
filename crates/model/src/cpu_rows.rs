//! Reading the data of a custom candle op: what the fused CPU kernels share.

use candle_core::{CpuStorage, Error, Layout, Shape};

/// The f32 values of a contiguous tensor's storage and the length of its last axis, so
/// that `values.chunks(width)` walks its rows.
pub fn contiguous_rows<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
) -> candle_core::Result<(&'a [f32], usize)> {
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| Error::Msg("a fused kernel was given a non-contiguous tensor".to_owned()))?;
    let width = layout.shape().dims().last().copied().unwrap_or(1).max(1);
    Ok((&storage.as_slice::<f32>()?[start..end], width))
}

/// `f` applied to each element of a contiguous f32 storage (generic, not a function
/// pointer, so that `f` is inlined into the loop and the loop vectorized), in parts spread
/// over the cores by [`each_part`].
pub(crate) fn map_each(
    storage: &CpuStorage,
    layout: &Layout,
    f: impl Fn(f32) -> f32 + Send + Sync,
) -> candle_core::Result<(CpuStorage, Shape)> {
    let (values, _) = contiguous_rows(storage, layout)?;
    let mut out = vec![0.0; values.len()];
    each_part(&mut out, 1, |first, part| {
        map_part(&f, &values[first..], part);
    });
    Ok((CpuStorage::F32(out), layout.shape().clone()))
}

crate::widest_simd::widest_simd! {
    /// `f` of each of `values` into `out`, as far as the shorter goes.
    fn map_part[F: Fn(f32) -> f32](f: &F, values: &[f32], out: &mut [f32]) {
        for (y, &x) in out.iter_mut().zip(values) {
            *y = f(x);
        }
    }
}

/// The sum of `f` of each value of `row`, in eight running sums (so the loop compiles to
/// SIMD), then theirs.
#[allow(
    clippy::inline_always,
    reason = "compiled into each SIMD width's copy of a kernel (`widest_simd!`)"
)]
#[inline(always)]
pub(crate) fn lane_sum(row: &[f32], f: impl Fn(f32) -> f32) -> f32 {
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

/// The largest value of `row` (−∞ for none), in eight running maxima (so the loop
/// compiles to SIMD): the same value as one running maximum.
#[allow(
    clippy::inline_always,
    reason = "compiled into each SIMD width's copy of a kernel (`widest_simd!`)"
)]
#[inline(always)]
pub(crate) fn lane_max(row: &[f32]) -> f32 {
    let mut maxima = [f32::NEG_INFINITY; 8];
    let blocks = row.chunks_exact(8);
    let tail = blocks
        .remainder()
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    for block in blocks {
        for (max, &x) in maxima.iter_mut().zip(block) {
            *max = max.max(x);
        }
    }
    maxima.iter().copied().fold(tail, f32::max)
}

/// About how many values one part of [`each_part`] holds: enough that handing out parts
/// costs little beside computing them.
const VALUES_PER_PART: usize = 16_384;

/// `fill(first, part)` for consecutive parts of `out`, each of whole rows of `width`
/// values and about [`VALUES_PER_PART`] in all (`first`: the index of the part's first
/// row): natively on every core when there are several parts, in turn in the browser.
/// The parts depend on the shape only, and each row is filled by the same code, so the
/// values do not depend on the threads.
pub(crate) fn each_part(out: &mut [f32], width: usize, fill: impl Fn(usize, &mut [f32]) + Sync) {
    let width = width.max(1);
    let rows_per_part = (VALUES_PER_PART / width).max(1);
    let part = rows_per_part * width;
    #[cfg(not(target_arch = "wasm32"))]
    if out.len() > part {
        use rayon::prelude::*;
        out.par_chunks_mut(part)
            .enumerate()
            .for_each(|(i, chunk)| fill(i * rows_per_part, chunk));
        return;
    }
    for (i, chunk) in out.chunks_mut(part).enumerate() {
        fill(i * rows_per_part, chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row is filled once, told its own index, whether the rows make one part or
    /// many, and whatever the width.
    #[test]
    fn each_part_fills_every_row_with_its_index() {
        for (rows, width) in [(3, 5), (10_000, 7), (5, 40_000), (1, 1)] {
            let mut out = vec![f32::MAX; rows * width];
            each_part(&mut out, width, |first, part| {
                for (r, row) in part.chunks_mut(width).enumerate() {
                    row.fill((first + r) as f32);
                }
            });
            for (r, row) in out.chunks(width).enumerate() {
                assert!(
                    row.iter().all(|&v| v as usize == r),
                    "{rows}×{width}, row {r}"
                );
            }
        }
    }
}
