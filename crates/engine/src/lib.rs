//! One engine interface. A forward pass is asked the same questions on every engine —
//! token ids, a [`PassRequest`] (which logits, which dictionaries' features, which single
//! features, what steering) and [`Hooks`](glassbox_model::Hooks) (activations to keep,
//! interventions) — and answers with a [`PassOutput`]. [`Engine`] is that pass; the CPU
//! engine ([`CpuEngine`], candle-core) and the GPU engine (`glassbox_gpu::GpuModel`,
//! wgpu) implement it, and everything above is written once over it:
//!
//! - [`generate`]: the decode loop (greedy or seeded sampling, a KV cache, steering at
//!   every step);
//! - the request's checks ([`check_pass`]) and its meaning at each hook (dictionaries
//!   read, steering writes, then the hooks' interventions, then the activation is kept);
//! - [`Fallback`]: which engine answers, and what happens when one fails (a lost GPU hands
//!   over to the CPU for good; what only the CPU can do goes there once).

mod check;
mod cpu;
mod engine;
mod error;
mod fallback;
mod generate;
mod lock;
mod now;
mod request;

pub use check::{check_attachment, check_encodable, check_pass};
pub use cpu::{CpuEngine, strongest};
pub use engine::{Attach, Attachment, Engine, attach_transcoders, transcoder_hooks};
pub use error::{EngineError, Result, WithEngineError};
pub use fallback::{Active, ActiveCache, Fallback};
pub use generate::generate;
pub use lock::lock;
pub use now::now;
pub use request::{
    ColumnRead, FeatureRead, FeatureSet, Logits, LogitsRead, PassOutput, PassRequest, Steering,
};

/// Declares an async test that runs natively as a `#[test]` (blocking on it with
/// `pollster`) and in headless Chromium as a `wasm_bindgen_test`: one body, both
/// platforms, so every engine is tested alike everywhere. The crate using it needs
/// `pollster` (native) and `wasm-bindgen-test` (wasm32) as dev-dependencies.
#[macro_export]
macro_rules! async_test {
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
