//! The Glassbox GPU engine: WGSL kernels dispatched through wgpu, on WebGPU in the
//! browser and on Vulkan, Metal or DX12 natively.
//!
//! Every kernel's `.wgsl` file sits next to the Rust that dispatches it, and every kernel
//! is checked against the CPU reference (candle-core) by [`check`].
//!
//! Errors are values ([`GpuError`]), never panics: the app answers them by falling back
//! to the CPU engine.

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
pub use engine::{
    ColumnRead, FeatureRead, FeatureSet, GpuCarrier, GpuGeneration, GpuKvCache, GpuModel, Logits,
    LogitsRead, PassOutput, PassRequest, Steering,
};
pub use error::GpuError;
pub use plan::PassCounts;
