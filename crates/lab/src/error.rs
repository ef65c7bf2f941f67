//! What can go wrong answering a request.

use glassbox_engine::{EngineError, WithEngineError};

/// A request that cannot be answered, and why, in words for the person who asked.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The request asks for something that does not exist or is out of range.
    #[error("{0}")]
    Request(String),
    /// The engine refused the request or failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
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

impl WithEngineError for LabError {
    fn engine_error(&self) -> Option<&EngineError> {
        match self {
            Self::Engine(error) => Some(error),
            Self::Circuit(error) => error.engine_error(),
            _ => None,
        }
    }
}

/// The lab's result type.
pub type Result<T> = std::result::Result<T, LabError>;
