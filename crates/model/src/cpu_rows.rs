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
/// pointer, so that `f` is inlined into the loop and the loop vectorized).
pub(crate) fn map_each(
    storage: &CpuStorage,
    layout: &Layout,
    f: impl Fn(f32) -> f32,
) -> candle_core::Result<(CpuStorage, Shape)> {
    let (values, _) = contiguous_rows(storage, layout)?;
    Ok((
        CpuStorage::F32(values.iter().map(|&x| f(x)).collect()),
        layout.shape().clone(),
    ))
}
