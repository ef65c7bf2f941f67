//! Reading a GPU buffer back to the CPU: the one await point of a GPU computation.

use crate::{GpuContext, GpuError};

/// Maps `buffer` (which must have `MAP_READ` usage) and copies its contents out as f32.
///
/// In the browser `device.poll` does nothing and the map callback fires from the event
/// loop, so the result is awaited through a channel; natively the device is polled.
pub(crate) async fn read_f32(
    ctx: &GpuContext,
    buffer: &wgpu::Buffer,
) -> Result<Vec<f32>, GpuError> {
    let slice = buffer.slice(..);
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
    let values = {
        let view = slice
            .get_mapped_range()
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        // The view's bytes need not be 4-byte aligned in the browser: collect, don't cast.
        bytemuck::pod_collect_to_vec::<u8, f32>(&view)
    };
    buffer.unmap();
    Ok(values)
}
