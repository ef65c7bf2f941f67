//! What can go wrong in a pass, sorted by what the caller does about it.

/// A pass that failed, and whether another engine can take it over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The request cannot be answered as asked (no tokens, too many, a token id, hook,
    /// dictionary or feature the model lacks): every engine refuses it alike.
    #[error("{0}")]
    Request(String),
    /// This engine cannot do what was asked; another engine can (a computed edit on the
    /// GPU engine).
    #[error("not on this engine: {0}")]
    Unsupported(String),
    /// The engine itself failed (a lost GPU device, out of memory, a rejected shader);
    /// another engine can take over.
    #[error("{0}")]
    Failed(String),
}

/// The engine crate's result type.
pub type Result<T> = std::result::Result<T, EngineError>;

impl From<glassbox_model::ModelError> for EngineError {
    /// Input or hooks the model refuses are the request's fault; anything else is the
    /// engine's.
    fn from(error: glassbox_model::ModelError) -> Self {
        use glassbox_model::ModelError;
        match error {
            ModelError::Input(_) | ModelError::Hook(_) => Self::Request(error.to_string()),
            other => Self::Failed(other.to_string()),
        }
    }
}

impl From<glassbox_dict::DictError> for EngineError {
    fn from(error: glassbox_dict::DictError) -> Self {
        Self::Failed(error.to_string())
    }
}

impl From<candle_core::Error> for EngineError {
    fn from(error: candle_core::Error) -> Self {
        Self::Failed(format!("tensor computation failed: {error}"))
    }
}

/// An error that may carry an [`EngineError`] (those of the crates above the engines
/// wrap it), so that [`Fallback`](crate::Fallback) can tell an engine's failure from a
/// bad request.
pub trait WithEngineError {
    /// The engine error inside, if any.
    fn engine_error(&self) -> Option<&EngineError>;
}

impl WithEngineError for EngineError {
    fn engine_error(&self) -> Option<&EngineError> {
        Some(self)
    }
}
