//! The pipeline behind `glassbox pack build`: the Brown Corpus, a byte-level BPE
//! tokenizer, and a GPT-2 trained with our own model code; transcoders, feature data
//! and the pack manifest come next.

pub mod adamw;
pub mod assemble;
pub mod bpe;
pub mod corpus;
pub mod dictionaries;
mod error;
pub mod features;
pub mod graph_report;
pub mod loss;
pub mod pipeline;
pub mod quality;
pub mod report;
pub mod ship;
pub mod smollm2;
pub mod sparse_topk;
pub mod spill;
pub mod stage_clock;
pub mod streamed;
pub mod tags;
pub mod train;
pub mod transcoder;
pub mod wheel;

pub use error::{BuildError, Result};
