//! Reading a pack from a directory on disk (not in the browser).

use std::io::Read as _;
use std::path::Path;

use crate::error::{PackError, Result};
use crate::{FeatureShard, LoadedPack, MANIFEST_FILE, Pack, PackFiles, Verified};

/// The most bytes a pack's `manifest.json` may have.
const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// Reads `path` of the pack in `root`, a regular file of at most `limit` bytes: its size
/// is checked before anything is read (a symlink to a device, or a file larger than the
/// manifest says, is refused without reading it).
fn read(root: &Path, path: &str, limit: u64) -> Result<Vec<u8>> {
    let io = |e: std::io::Error| {
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
    };
    let full = root.join(path);
    let metadata = std::fs::metadata(&full).map_err(io)?;
    if !metadata.is_file() {
        return Err(PackError::Io {
            path: path.to_owned(),
            reason: "not a regular file".to_owned(),
        });
    }
    let too_long = |actual: u64| PackError::Size {
        path: path.to_owned(),
        expected: limit,
        actual,
    };
    if metadata.len() > limit {
        return Err(too_long(metadata.len()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    std::fs::File::open(&full)
        .and_then(|file| file.take(limit.saturating_add(1)).read_to_end(&mut bytes))
        .map_err(io)?;
    // The file grew since its size was read.
    if bytes.len() as u64 > limit {
        return Err(too_long(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Reads `path` of the pack in `root` and verifies it against `pack`'s manifest.
fn read_verified(root: &Path, pack: &Pack, path: &str) -> Result<Verified> {
    let limit = pack.entry(path)?.bytes;
    pack.verify(path, read(root, path, limit)?)
}

/// Reads and checks the manifest of the pack in `root`.
pub fn open(root: &Path) -> Result<Pack> {
    Pack::parse_manifest(&read(root, MANIFEST_FILE, MAX_MANIFEST_BYTES)?)
}

/// The pack in `root` and its files needed up front ([`Pack::required_paths`]), verified.
pub fn files(root: &Path) -> Result<(Pack, PackFiles)> {
    let pack = open(root)?;
    let mut files = PackFiles::default();
    for path in pack.required_paths() {
        files.insert(read_verified(root, &pack, &path)?);
    }
    Ok((pack, files))
}

/// Loads the pack in `root`: manifest, model, tokenizer, dictionaries, corpus, labels.
pub fn load(root: &Path) -> Result<LoadedPack> {
    let (pack, files) = files(root)?;
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
