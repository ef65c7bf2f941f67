//! Feature dictionaries (sparse autoencoders and transcoders) in the SAELens layout:
//! `cfg.json` plus `sae_weights.safetensors` with `W_enc [d_in, d_sae]`, `b_enc`,
//! `W_dec [d_sae, d_in]`, `b_dec` and, for JumpReLU, `threshold`. Dictionaries made with
//! SAELens load here, and ours load there.

mod config;
mod dictionary;
mod splice;

pub use config::{Architecture, DictConfig, DictMetadata};
pub use dictionary::{DictError, Dictionary};
pub use splice::{splice, transcoder_layer};
