//! The Glassbox pack format: a model, its tokenizer, one transcoder per block, a tokenized
//! corpus and per-feature data in one directory, described by `manifest.json` with every
//! file's size and SHA-256 (see `docs/pack-format.md`).
//!
//! Loading is bytes in, checked values out: each file is verified once against the
//! manifest ([`Pack::verify`]) and the verified files are loaded by one function
//! ([`Pack::load`]), the same in the browser (which fetches them) and natively ([`dir`],
//! which reads them from disk).

mod corpus;
#[cfg(not(target_arch = "wasm32"))]
pub mod dir;
mod error;
mod features;
mod manifest;
mod pack;

pub use corpus::{Corpus, CorpusIndex, DocumentEntry, Split};
pub use error::{PackError, Result};
pub use features::{
    CategoryScore, Example, FeatureRecord, FeatureShard, Histogram, LabelEntry, LabelIndex,
    LogitEffect, LogitEffects, Profile, QuantileBand,
};
pub use manifest::{
    BuildInfo, CorpusInfo, DictionaryInfo, FORMAT, FORMAT_VERSION, FeaturesInfo, FileEntry,
    MANIFEST_FILE, Manifest, ModelFormat, ModelInfo, OLDEST_FORMAT_VERSION,
};
pub use pack::{
    LoadedPack, Pack, PackFeatures, PackFiles, Verified, read_before_the_gain, sha256_hex,
};
