//! What can be wrong with a pack.

/// A pack file that cannot be used, and why. Each message names the file.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// The manifest is not JSON of the expected shape.
    #[error("manifest.json is not a Glassbox pack manifest: {0}")]
    Manifest(String),
    /// The manifest is of another format or version.
    #[error("this pack is {found}; this version of Glassbox reads {FORMAT} version {FORMAT_VERSION}", FORMAT = crate::FORMAT, FORMAT_VERSION = crate::FORMAT_VERSION)]
    Version {
        /// What the manifest says it is.
        found: String,
    },
    /// The manifest does not list a file the pack needs, or the file is missing.
    #[error("{path}: missing from the pack")]
    Missing {
        /// The file.
        path: String,
    },
    /// A file's size differs from the manifest's.
    #[error("{path}: {actual} bytes, but the manifest says {expected} (truncated or replaced?)")]
    Size {
        /// The file.
        path: String,
        /// The manifest's size.
        expected: u64,
        /// The file's size.
        actual: u64,
    },
    /// A file's hash differs from the manifest's.
    #[error("{path}: contents do not match the manifest's SHA-256 (corrupted or replaced)")]
    Hash {
        /// The file.
        path: String,
    },
    /// A file has the right hash but cannot be read as what it should be (or disagrees
    /// with the manifest about shapes).
    #[error("{path}: {reason}")]
    Content {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Reading a file from disk failed.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// The pack crate's result type.
pub type Result<T> = std::result::Result<T, PackError>;

/// A [`PackError::Content`] for `path`.
pub(crate) fn content(path: &str, reason: impl std::fmt::Display) -> PackError {
    PackError::Content {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}
