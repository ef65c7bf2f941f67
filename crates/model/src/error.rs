//! The one error type of the model crate.

/// Everything that can go wrong loading or running a model. Each message names the
/// problem so that one line tells a person what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// `config.json` is missing, unreadable or not a GPT-2 config.
    #[error("bad config: {0}")]
    Config(String),
    /// The weights file is missing, truncated, or its header does not match its data.
    #[error("bad weights: {0}")]
    Weights(String),
    /// A weight's shape disagrees with the config.
    #[error("weight `{name}` has shape {found:?}, but the config implies {expected:?}")]
    WeightShape {
        /// The tensor's name in the safetensors file.
        name: String,
        /// What the config implies.
        expected: Vec<usize>,
        /// What the file holds.
        found: Vec<usize>,
    },
    /// The tokenizer file is missing or malformed, or encoding failed.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// Input the model cannot take: empty, too long, or a token id out of range.
    #[error("bad input: {0}")]
    Input(String),
    /// A hook name or intervention that does not fit this model.
    #[error("hook: {0}")]
    Hook(String),
    /// A failure inside candle.
    #[error("tensor computation failed: {0}")]
    Tensor(#[from] candle_core::Error),
}

/// The model crate's result type.
pub type Result<T> = std::result::Result<T, ModelError>;
