//! What every GPU test shares: the device, and one test body run natively and in the browser.

use glassbox_gpu::{AdapterPreference, GpuContext};

/// The test device: lavapipe natively (or a hardware GPU with `GLASSBOX_ADAPTER=gpu`),
/// the browser's WebGPU adapter in wasm. No adapter fails the test: it never skips.
pub(crate) async fn context() -> GpuContext {
    match GpuContext::new(AdapterPreference::from_env()).await {
        Ok(ctx) => ctx,
        Err(e) => panic!("GPU tests need an adapter and found none: {e}"),
    }
}

/// Declares an async test as a native `#[test]` (blocking on it) and as a
/// `wasm_bindgen_test` that runs in headless Chromium: one body, both platforms.
#[macro_export]
macro_rules! gpu_test {
    ($(#[$meta:meta])* async fn $name:ident() $body:block) => {
        $(#[$meta])*
        #[cfg(not(target_arch = "wasm32"))]
        #[test]
        fn $name() {
            pollster::block_on(async $body);
        }

        $(#[$meta])*
        #[cfg(target_arch = "wasm32")]
        #[wasm_bindgen_test::wasm_bindgen_test]
        async fn $name() $body
    };
}
