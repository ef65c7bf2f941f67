//! The Glassbox pack format: a model, its tokenizer, its feature dictionaries and
//! precomputed feature data in one directory that a loader can verify.
//!
//! This crate knows nothing of GPUs or the web, so it builds and tests natively and in wasm.
//! Its contents arrive with the default-pack issue.
