//! What every GPU test shares: the device (one test body runs natively and in the browser
//! through `glassbox_engine::async_test`).

use glassbox_gpu::{AdapterPreference, GpuContext};

/// The test device: lavapipe natively (or a hardware GPU with `GLASSBOX_ADAPTER=gpu`),
/// the browser's WebGPU adapter in wasm. No adapter fails the test: it never skips.
pub(crate) async fn context() -> GpuContext {
    match GpuContext::new(AdapterPreference::from_env()).await {
        Ok(ctx) => ctx,
        Err(e) => panic!("GPU tests need an adapter and found none: {e}"),
    }
}
