//! Feature dictionaries (sparse autoencoders and transcoders) in the SAELens layout:
//! `cfg.json` plus `sae_weights.safetensors` with `W_enc [d_in, d_sae]`, `b_enc`,
//! `W_dec [d_sae, d_in]`, `b_dec` and, for JumpReLU, `threshold`. Dictionaries made with
//! SAELens load here, and ours load there. A pack may ship them with 8-bit matrices
//! (`Dictionary::to_safetensors_8bit`), which load here too.

mod config;
mod dictionary;
mod eight_bit;
mod seeded;
mod splice;

pub use config::{Architecture, DictConfig, DictMetadata};
pub use dictionary::{DictError, Dictionary};
pub use seeded::Spread;
pub use splice::{splice, transcoder_layer};
