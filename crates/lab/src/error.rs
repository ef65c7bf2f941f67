//! What can go wrong answering a request.

/// A request that cannot be answered, and why, in words for the person who asked.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The request asks for something that does not exist or is out of range.
    #[error("{0}")]
    Request(String),
    /// The model failed.
    #[error(transparent)]
    Model(#[from] glassbox_model::ModelError),
    /// A dictionary failed.
    #[error(transparent)]
    Dictionary(#[from] glassbox_dict::DictError),
    /// The attribution graph failed.
    #[error(transparent)]
    Circuit(#[from] glassbox_circuits::CircuitError),
    /// A tensor computation failed.
    #[error("tensor computation failed: {0}")]
    Tensor(#[from] candle_core::Error),
}

/// The lab's result type.
pub type Result<T> = std::result::Result<T, LabError>;
