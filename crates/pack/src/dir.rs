//! Reading a pack from a directory on disk (not in the browser).

use std::path::Path;

use glassbox_dict::Dictionary;
use glassbox_model::{Gpt2, Tokenizer};

use crate::error::{PackError, Result};
use crate::{Corpus, FeatureShard, LabelIndex, MANIFEST_FILE, Pack};

/// Everything a pack holds that is loaded up front.
#[derive(Debug)]
pub struct LoadedPack {
    /// The manifest.
    pub pack: Pack,
    /// The model.
    pub model: Gpt2,
    /// Its tokenizer.
    pub tokenizer: Tokenizer,
    /// One dictionary per block, in block order.
    pub dictionaries: Vec<Dictionary>,
    /// The corpus.
    pub corpus: Corpus,
    /// Every feature's label.
    pub labels: LabelIndex,
}

fn read(root: &Path, path: &str) -> Result<Vec<u8>> {
    std::fs::read(root.join(path)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            PackError::Missing {
                path: path.to_owned(),
            }
        } else {
            PackError::Io {
                path: path.to_owned(),
                reason: e.to_string(),
            }
        }
    })
}

/// Reads and checks the manifest of the pack in `root`.
pub fn open(root: &Path) -> Result<Pack> {
    Pack::parse_manifest(&read(root, MANIFEST_FILE)?)
}

/// Loads the pack in `root`: manifest, model, tokenizer, dictionaries, corpus, labels.
pub fn load(root: &Path) -> Result<LoadedPack> {
    let pack = open(root)?;
    let m = pack.manifest().clone();
    let (model, tokenizer) = pack.load_model(
        &read(root, &m.model.config)?,
        &read(root, &m.model.weights)?,
        &read(root, &m.model.tokenizer)?,
    )?;
    let dictionaries = m
        .dictionaries
        .iter()
        .map(|d| pack.load_dictionary(d.layer, &read(root, &d.cfg)?, &read(root, &d.weights)?))
        .collect::<Result<Vec<_>>>()?;
    let corpus = pack.load_corpus(
        &read(root, &m.corpus.index)?,
        &read(root, &m.corpus.tokens)?,
    )?;
    let labels = pack.load_labels(&read(root, &m.features.labels)?)?;
    Ok(LoadedPack {
        pack,
        model,
        tokenizer,
        dictionaries,
        corpus,
        labels,
    })
}

/// Reads the shard holding `feature` of `layer`.
pub fn load_shard(root: &Path, pack: &Pack, layer: usize, feature: usize) -> Result<FeatureShard> {
    let path = pack.shard_path(layer, feature)?;
    pack.load_shard(layer, feature, &read(root, &path)?)
}

/// Checks every file the manifest lists (size and hash); returns how many.
pub fn verify_all(root: &Path) -> Result<usize> {
    let pack = open(root)?;
    for file in &pack.manifest().files {
        pack.verify(&file.path, &read(root, &file.path)?)?;
    }
    Ok(pack.manifest().files.len())
}
