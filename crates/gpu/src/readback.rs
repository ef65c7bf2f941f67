//! Reading a GPU buffer back to the CPU: the one await point of a GPU computation.

use crate::{GpuContext, GpuError};

/// Maps `buffer` (which must have `MAP_READ` usage) and copies its first `len` bytes out.
///
/// In the browser `device.poll` does nothing and the map callback fires from the event
/// loop, so the result is awaited through a channel; natively the device is polled.
pub(crate) async fn read_bytes(
    ctx: &GpuContext,
    buffer: &wgpu::Buffer,
    len: usize,
) -> Result<Vec<u8>, GpuError> {
    let slice = buffer.slice(..len as u64);
    let (sender, receiver) = futures_channel::oneshot::channel();
    slice.map_async(wgpu::MapMode::Read, move |result| {
        // The receiver is only gone if the caller stopped waiting; nothing to report then.
        let _ = sender.send(result);
    });
    #[cfg(not(target_arch = "wasm32"))]
    ctx.device()
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| GpuError::Readback(e.to_string()))?;
    receiver
        .await
        .map_err(|_| GpuError::Readback("the map request was dropped".to_owned()))?
        .map_err(|e| GpuError::Readback(e.to_string()))?;
    ctx.ensure_alive()?;
    let bytes = {
        let view = slice
            .get_mapped_range()
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        view.to_vec()
    };
    buffer.unmap();
    Ok(bytes)
}

/// Maps `buffer` and copies its contents out as f32.
pub(crate) async fn read_f32(
    ctx: &GpuContext,
    buffer: &wgpu::Buffer,
) -> Result<Vec<f32>, GpuError> {
    let bytes = read_bytes(ctx, buffer, buffer.size() as usize).await?;
    // The bytes need not be 4-byte aligned: collect, don't cast.
    Ok(bytemuck::pod_collect_to_vec::<u8, f32>(&bytes))
}
