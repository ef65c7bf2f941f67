//! The GPT-2-family transformer on candle-core, with TransformerLens hook points:
//! the CPU reference engine that every other engine is checked against.
//!
//! Its contents arrive with the model-engine issue.
