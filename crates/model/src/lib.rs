//! The GPT-2-family transformer on candle-core, with TransformerLens hook points: the
//! CPU reference engine that every other engine is checked against.
//!
//! - [`Gpt2Config`]: a Hugging Face `config.json`; [`Gpt2Weights`]: HF-layout safetensors.
//! - [`Gpt2`]: the forward pass, with [`Hooks`] to cache activations and intervene.
//! - [`Tokenizer`]: a Hugging Face `tokenizer.json`, with each token's character offsets.
//! - [`sampling`]: how generation chooses each next token (greedy or seeded sampling).

mod config;
pub mod cpu_rows;
mod error;
mod gelu;
pub mod hooks;
mod model;
pub mod rng;
pub mod sampling;
mod softmax;
mod tokenizer;
mod weights;

pub use config::{Activation, Gpt2Config, ModelDims};
pub use error::{ModelError, Result};
pub use hooks::{Edit, EditContext, EditFn, HookPoint, Hooks, Intervention, Norm, position_mask};
pub use model::{Gpt2, KvCache};
pub use tokenizer::{Token, Tokenizer};
pub use weights::{BlockWeights, Gpt2Weights, LayerNormWeights};
