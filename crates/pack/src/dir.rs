//! Reading a pack from a directory on disk (not in the browser).

use std::path::Path;

use crate::error::{PackError, Result};
use crate::{FeatureShard, LoadedPack, MANIFEST_FILE, Pack, PackFiles, Verified};

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

/// Reads `path` of the pack in `root` and verifies it against `pack`'s manifest.
fn read_verified(root: &Path, pack: &Pack, path: &str) -> Result<Verified> {
    pack.verify(path, read(root, path)?)
}

/// Reads and checks the manifest of the pack in `root`.
pub fn open(root: &Path) -> Result<Pack> {
    Pack::parse_manifest(&read(root, MANIFEST_FILE)?)
}

/// Loads the pack in `root`: manifest, model, tokenizer, dictionaries, corpus, labels.
pub fn load(root: &Path) -> Result<LoadedPack> {
    let pack = open(root)?;
    let mut files = PackFiles::default();
    for path in pack.required_paths() {
        files.insert(read_verified(root, &pack, &path)?);
    }
    pack.load(&files)
}

/// Reads the shard holding `feature` of `layer`.
pub fn load_shard(root: &Path, pack: &Pack, layer: usize, feature: usize) -> Result<FeatureShard> {
    let path = pack.shard_path(layer, feature)?;
    pack.load_shard(layer, feature, &read_verified(root, pack, &path)?)
}

/// Checks every file the manifest lists (size and hash); returns how many.
pub fn verify_all(root: &Path) -> Result<usize> {
    let pack = open(root)?;
    for file in &pack.manifest().files {
        read_verified(root, &pack, &file.path)?;
    }
    Ok(pack.manifest().files.len())
}
