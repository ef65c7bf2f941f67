//! A small mutation fuzzer for the parsers that read untrusted input: pack manifests and
//! files, safetensors and GGUF models, model configs, dictionaries, tokenizers, graph JSON
//! and the page's links.
//!
//! Stable Rust has no coverage-guided fuzzing here (cargo-fuzz and libFuzzer need
//! nightly), so this fuzzer is blind to coverage. Instead it keeps a corpus by a cheap
//! proxy for new behaviour: an input whose outcome differs in kind from every outcome seen
//! so far (loaded, or refused with an error message not seen before, numbers and names
//! left out) joins the corpus and is mutated further. That finds shallow bugs well and
//! deep ones by luck; it is no substitute for coverage guidance.
//!
//! - [`targets`]: each parser, its seeds (files of the repository) and what one execution
//!   calls.
//! - [`mutate`]: byte-level and token-level mutations.
//! - [`fuzzer`]: the loop; a panic, or more than [`fuzzer::MEMORY_LIMIT`] allocated by
//!   one execution, is a crash, saved under `target/fuzz-crashes/<target>/`.

mod alloc;
mod behaviour;
mod corpus;
mod crash;
pub mod fuzzer;
pub mod mutate;
pub mod rng;
mod seeds;
pub mod targets;

pub use behaviour::Behaviour;

/// The counting allocator: every execution's allocations are measured, and the process
/// is never let past a hard cap (see [`fuzzer::MEMORY_LIMIT`]).
#[global_allocator]
static ALLOCATOR: alloc::Counting = alloc::Counting;
