//! The Glassbox GPU engine: WGSL kernels dispatched through wgpu, on WebGPU in the
//! browser and on Vulkan, Metal or DX12 natively.
//!
//! Every kernel's `.wgsl` file sits next to the Rust that dispatches it, and every kernel
//! is checked against the CPU reference (candle-core) by [`check`].
//!
//! [`GpuModel`] is the GPU engine of `glassbox_engine::Engine`: the same passes, requests
//! and answers as the CPU engine. Errors are values ([`GpuError`], turned into
//! `glassbox_engine::EngineError`), never panics: a failing GPU hands over to the CPU
//! engine.

#[cfg(target_arch = "wasm32")]
mod browser_info;
pub mod check;
mod context;
mod engine;
mod error;
mod kernels;
pub mod matmul;
mod plan;
mod readback;

pub use context::{AdapterPreference, AdapterSummary, GpuContext};
pub use engine::{GpuCarrier, GpuKvCache, GpuModel, QuantizedWeights};
pub use error::GpuError;
pub use plan::PassCounts;
