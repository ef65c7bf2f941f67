//! The one error type of the pack pipeline.

use std::path::PathBuf;

/// What can stop a pipeline stage; each message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An outside command (npm, tar) failed or is missing.
    #[error("`{command}` failed: {detail}")]
    Command {
        /// The command line.
        command: String,
        /// Its error output or exit status.
        detail: String,
    },
    /// The corpus is not what the pipeline expects.
    #[error("corpus: {0}")]
    Corpus(String),
    /// Training the tokenizer failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A checkpoint or stage output is unreadable or from another run.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// The model rejected something.
    #[error(transparent)]
    Model(#[from] glassbox_model::ModelError),
    /// The engine running the model failed.
    #[error(transparent)]
    Engine(#[from] glassbox_engine::EngineError),
    /// A dictionary rejected something.
    #[error(transparent)]
    Dictionary(#[from] glassbox_dict::DictError),
    /// A tensor computation failed.
    #[error("tensor computation failed: {0}")]
    Tensor(#[from] candle_core::Error),
    /// A pack's manifest or file was refused.
    #[error(transparent)]
    Pack(#[from] glassbox_pack::PackError),
}

/// The pipeline's result type.
pub type Result<T> = std::result::Result<T, BuildError>;

/// Wraps an I/O error with the path it concerns.
pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> BuildError {
    let path = path.into();
    move |source| BuildError::Io { path, source }
}
