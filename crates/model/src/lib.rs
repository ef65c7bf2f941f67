//! The transformer families Glassbox runs, on candle-core, with TransformerLens hook
//! points: the CPU reference engine that every other engine is checked against.
//!
//! - [`Model`]: a model of any [`Family`], loaded from a Hugging Face checkpoint or a
//!   GGUF file; [`Gpt2`] and [`Llama`] are the families.
//! - [`Hooks`]: what a forward pass keeps and changes at each [`HookPoint`].
//! - [`Tokenizer`]: a Hugging Face `tokenizer.json` (or one rebuilt from GGUF metadata),
//!   with each token's character offsets.
//! - [`sampling`]: how generation chooses each next token (greedy or seeded sampling).

mod attention;
pub mod checkpoint;
#[cfg(not(target_arch = "wasm32"))]
mod column_panels;
pub mod column_split;
mod config;
pub mod cpu_rows;
mod error;
mod family;
mod fast_math;
mod few_rows;
mod gelu;
pub mod gguf;
mod gguf_gpt2;
mod gguf_quants;
pub mod gguf_split;
mod gguf_tokenizer;
pub mod gguf_write;
mod gpt2;
pub mod hooks;
mod lanes;
mod layer_norm;
pub mod llama;
mod many_rows;
pub mod native_process;
mod ops;
mod pointwise;
pub mod rng;
mod rope;
mod safetensors_source;
pub mod sampling;
pub mod shared_columns;
mod silu;
mod simd_tiles;
mod softmax;
mod tokenizer;
mod weights;
mod widest_simd;

pub use attention::KvCache;
pub use config::{Activation, Gpt2Config, ModelDims};
pub use error::{ModelError, Result};
pub use family::{Family, Model};
pub use gguf_gpt2::gpt2_to_gguf;
pub use gpt2::Gpt2;
pub use hooks::{Edit, EditContext, EditFn, HookPoint, Hooks, Intervention, Norm, position_mask};
pub use llama::{Llama, LlamaConfig};
pub use rope::{Rope, RopeScaling};
pub use safetensors_source::SafetensorsSource;
pub use tokenizer::{Token, Tokenizer};
pub use weights::{BlockWeights, Gpt2Weights, LayerNormWeights};
