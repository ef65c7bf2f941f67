//! What can go wrong computing a graph.

/// A graph that cannot be computed, and why.
#[derive(Debug, thiserror::Error)]
pub enum CircuitError {
    /// The request does not fit the model or its transcoders.
    #[error("{0}")]
    Request(String),
    /// The model failed.
    #[error(transparent)]
    Model(#[from] glassbox_model::ModelError),
    /// A transcoder failed.
    #[error(transparent)]
    Dictionary(#[from] glassbox_dict::DictError),
    /// The engine computing the rows failed (a GPU error, say); another may succeed.
    #[error("the engine failed: {0}")]
    Engine(#[from] glassbox_engine::EngineError),
    /// A tensor computation failed.
    #[error("tensor computation failed: {0}")]
    Tensor(#[from] candle_core::Error),
}

/// The circuits crate's result type.
pub type Result<T> = std::result::Result<T, CircuitError>;

impl glassbox_engine::WithEngineError for CircuitError {
    fn engine_error(&self) -> Option<&glassbox_engine::EngineError> {
        match self {
            Self::Engine(error) => Some(error),
            _ => None,
        }
    }
}
