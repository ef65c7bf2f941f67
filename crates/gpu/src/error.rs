//! The one error type of the GPU engine.

/// Everything that can go wrong on the GPU path. Each variant says what the app can tell
/// a person; none of them is a reason to crash, since the CPU engine can take over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
    /// No adapter matched the request (no WebGPU in this browser, or no driver natively).
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
    /// The adapter refused to create a device.
    #[error("the GPU adapter refused a device: {0}")]
    RequestDevice(String),
    /// Operands whose sizes do not match the shape they claim.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A buffer or dispatch larger than this device allows.
    #[error("too large for this GPU: {what} needs {needed}, the device allows {allowed}")]
    TooLarge {
        /// The resource that does not fit.
        what: &'static str,
        /// What it would need.
        needed: u64,
        /// The device's limit.
        allowed: u64,
    },
    /// WebGPU validation rejected a shader, pipeline or command.
    #[error("GPU validation error: {0}")]
    Validation(String),
    /// The device ran out of memory.
    #[error("GPU out of memory: {0}")]
    OutOfMemory(String),
    /// The device was lost (driver reset, tab in the background too long, `destroy`).
    #[error("GPU device lost: {0}")]
    DeviceLost(String),
    /// Reading a result back from the GPU failed.
    #[error("reading back from the GPU failed: {0}")]
    Readback(String),
    /// Something this engine does not do (the CPU engine may).
    #[error("not on the GPU engine: {0}")]
    Unsupported(String),
    /// The CPU reference that a kernel is checked against failed.
    #[error("CPU reference failed: {0}")]
    Reference(String),
}

impl From<candle_core::Error> for GpuError {
    /// A failure of the CPU-side tensor work around the GPU (reading weights to upload,
    /// shaping what came back).
    fn from(error: candle_core::Error) -> Self {
        Self::Reference(error.to_string())
    }
}
