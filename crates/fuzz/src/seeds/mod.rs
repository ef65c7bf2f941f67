//! Where seeds come from: files of the repository (the default pack, the model crate's
//! fixtures), and small files written here in the formats tests write (safetensors, GGUF)
//! where the repository has none small enough.

mod gguf;
mod safetensors;

use std::path::Path;

pub(crate) use gguf::{Meta, Tensor as GgufTensor, write as gguf};
pub(crate) use safetensors::{Dtype, write as safetensors};

use crate::rng::Rng;

/// The workspace root (two folders above this crate's).
pub(crate) fn workspace() -> &'static Path {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.ancestors().nth(2).unwrap_or(manifest)
}

/// The bytes of `path`, relative to the workspace root.
pub(crate) fn repo_file(path: &str) -> Result<Vec<u8>, String> {
    let full = workspace().join(path);
    std::fs::read(&full).map_err(|e| format!("seed file {path}: {e}"))
}

/// `repo_file` as text.
pub(crate) fn repo_text(path: &str) -> Result<String, String> {
    String::from_utf8(repo_file(path)?).map_err(|_| format!("seed file {path} is not UTF-8"))
}

/// `len` small values from `seed`, as weights of a tiny model might be.
pub(crate) fn values(seed: u64, len: usize) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..len)
        .map(|_| (rng.below(2001) as f32 - 1000.0) / 5000.0)
        .collect()
}
