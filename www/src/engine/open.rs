//! A model the person picked from their computer, read in the engine worker through the
//! files' `blob:` URLs (nothing is uploaded): one GGUF file, or a Hugging Face folder's
//! `config.json`, `model.safetensors` (or its shards and `model.safetensors.index.json`)
//! and `tokenizer.json`; and SAELens dictionaries beside it or on their own (each a
//! folder's `cfg.json` and `sae_weights.safetensors`). The memory the model takes as f32
//! is checked against what a page has before anything is dequantized.

use std::sync::Arc;

use glassbox_dict::Dictionary;
use glassbox_model::checkpoint::{INDEX_FILE, WEIGHTS_FILE, f32_bytes, shard_names};
use glassbox_model::gguf::Gguf;
use glassbox_model::{Model, Tokenizer};

use super::protocol::PickedFile;
use super::{fetch, kept};

/// The most memory a model may take as f32 in the worker: wasm32 addresses 4 GB, and the
/// files, the activations and the page's own need room beside the weights.
const MAX_MODEL_BYTES: u64 = 3 << 30;

/// SAELens's name for a dictionary's config.
const DICTIONARY_CONFIG: &str = "cfg.json";

/// SAELens's name for a dictionary's weights.
const DICTIONARY_WEIGHTS: &str = "sae_weights.safetensors";

/// The picked files sorted: the model's, and each dictionary's folder with its config and
/// weights.
pub(super) struct Picked<'a> {
    /// The model's files (none when only dictionaries were picked).
    pub(super) model: Vec<&'a PickedFile>,
    /// Each dictionary: its folder (for the page and errors), `cfg.json`, its weights.
    pub(super) dictionaries: Vec<(String, &'a PickedFile, &'a PickedFile)>,
}

/// Sorts `files`: every folder holding a `cfg.json` is a dictionary (its
/// `sae_weights.safetensors` beside it, other files there ignored; files picked loose are
/// at most one dictionary); the rest is the model.
pub(super) fn sort(files: &[PickedFile]) -> Result<Picked<'_>, String> {
    let folder = |f: &PickedFile| -> String {
        f.path
            .rsplit_once('/')
            .map_or(String::new(), |(dir, _)| dir.to_owned())
    };
    let mut dictionaries = Vec::new();
    for config in files.iter().filter(|f| f.name == DICTIONARY_CONFIG) {
        let dir = folder(config);
        let weights = files
            .iter()
            .find(|f| f.name == DICTIONARY_WEIGHTS && folder(f) == dir)
            .ok_or_else(|| {
                format!(
                    "{}: {DICTIONARY_WEIGHTS} is missing beside it (a SAELens dictionary is a \
                     folder's {DICTIONARY_CONFIG} and {DICTIONARY_WEIGHTS}, picked together)",
                    config.path
                )
            })?;
        let name = if dir.is_empty() {
            config.path.clone()
        } else {
            dir
        };
        dictionaries.push((name, config, weights));
    }
    // A dictionary's folder holds nothing of the model's (SAELens writes more files there,
    // e.g. sparsity.safetensors); files picked loose are the model's but for its two.
    let dictionary_folders: Vec<String> = files
        .iter()
        .filter(|f| f.name == DICTIONARY_CONFIG)
        .map(folder)
        .filter(|dir| !dir.is_empty())
        .collect();
    let is_dictionarys = |f: &PickedFile| {
        dictionary_folders.contains(&folder(f))
            || dictionaries
                .iter()
                .any(|(_, c, w)| std::ptr::eq(*c, f) || std::ptr::eq(*w, f))
    };
    let model = files.iter().filter(|f| !is_dictionarys(f)).collect();
    Ok(Picked {
        model,
        dictionaries,
    })
}

/// Reads and checks each picked dictionary, named by its folder.
pub(super) async fn open_dictionaries(
    dictionaries: &[(String, &PickedFile, &PickedFile)],
    progress: &dyn Fn(&str, u64, u64),
) -> Result<Vec<(String, Arc<Dictionary>)>, String> {
    let mut opened = Vec::with_capacity(dictionaries.len());
    for (name, config, weights) in dictionaries {
        let config = String::from_utf8(read(config, progress).await?)
            .map_err(|_| format!("{name}: {DICTIONARY_CONFIG} is not UTF-8 text"))?;
        let weights = read(weights, progress).await?;
        let dictionary = Dictionary::load(&config, &weights).map_err(|e| format!("{name}: {e}"))?;
        opened.push((name.clone(), Arc::new(dictionary)));
    }
    Ok(opened)
}

/// The model's name for the page, the model and its tokenizer, from its picked files.
pub(super) async fn open_model(
    files: &[&PickedFile],
    progress: &dyn Fn(&str, u64, u64),
) -> Result<(String, Model, Tokenizer), String> {
    let ggufs: Vec<&PickedFile> = files
        .iter()
        .copied()
        .filter(|f| has_extension(&f.name, "gguf"))
        .collect();
    let (name, model, tokenizer) = match (ggufs.as_slice(), files) {
        ([], [file]) if !is_hf_file(&file.name) => open_gguf(&[file], progress).await?,
        ([], _) => open_hf_folder(files, progress).await?,
        // One GGUF file, or every file of a model split over several.
        (ggufs, _) => open_gguf(ggufs, progress).await?,
    };
    if tokenizer.vocab_size() > model.dims().vocab_size {
        return Err(format!(
            "{name}: the tokenizer has {} tokens, the model only {}",
            tokenizer.vocab_size(),
            model.dims().vocab_size
        ));
    }
    Ok((name, model, tokenizer))
}

fn is_hf_file(name: &str) -> bool {
    has_extension(name, "json") || has_extension(name, "safetensors")
}

fn has_extension(name: &str, wanted: &str) -> bool {
    std::path::Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case(wanted))
}

async fn read(file: &PickedFile, progress: &dyn Fn(&str, u64, u64)) -> Result<Vec<u8>, String> {
    let stage = format!("reading {}", file.name);
    progress(&stage, 0, 0);
    if let Some(key) = file.url.strip_prefix(kept::KEPT_URL) {
        let response = kept::kept_response(key)
            .await
            .map_err(|e| format!("{}: {e}", file.name))?;
        return fetch::streamed_bytes(response, &|n| progress(&stage, n, 0))
            .await
            .map_err(|e| format!("{}: the copy kept in this browser: {e}", file.name));
    }
    fetch::fetch_streamed(&file.url, &|n| progress(&stage, n, 0))
        .await
        .map_err(|_| format!("{}: the file could not be read", file.name))
}

/// An error unless `f32_bytes` of weights beside `file_bytes` of files fit a page.
fn check_fits(what: &str, f32_bytes: u64, file_bytes: u64) -> Result<(), String> {
    if f32_bytes.saturating_add(file_bytes) > MAX_MODEL_BYTES {
        return Err(format!(
            "{what}: the model needs {:.1} GB of memory as f32 beside its files; a web page \
             has at most 4 GB (wasm32), of which Glassbox gives a model {:.1} GB",
            f32_bytes as f64 / 1e9,
            MAX_MODEL_BYTES as f64 / 1e9
        ));
    }
    Ok(())
}

/// A model from one GGUF file, or from the files of one split over several (llama.cpp's
/// `gguf-split`), named by its first.
async fn open_gguf(
    files: &[&PickedFile],
    progress: &dyn Fn(&str, u64, u64),
) -> Result<(String, Model, Tokenizer), String> {
    let mut read_files = Vec::with_capacity(files.len());
    for file in files {
        read_files.push((file.name.as_str(), read(file, progress).await?));
    }
    progress("preparing the model", 0, 0);
    let parts: Vec<(&str, &[u8])> = read_files.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    let parsed = Gguf::parse_files(&parts).map_err(|e| e.to_string())?;
    let name = parsed.name().to_owned();
    let file_bytes = parts.iter().map(|(_, b)| b.len() as u64).sum();
    check_fits(&name, parsed.f32_bytes(), file_bytes)?;
    drop(parsed);
    let (model, tokenizer) = Model::from_gguf_files(&parts).map_err(|e| e.to_string())?;
    Ok((name, model, tokenizer))
}

async fn open_hf_folder(
    files: &[&PickedFile],
    progress: &dyn Fn(&str, u64, u64),
) -> Result<(String, Model, Tokenizer), String> {
    let find = |name: &str| files.iter().copied().find(|f| f.name == name);
    let need = |name: &str| {
        find(name).ok_or_else(|| {
            format!(
                "{name} is missing: open one GGUF file (or every file of a split one), or a \
                 Hugging Face folder's config.json, \
                 model.safetensors (or its shards with model.safetensors.index.json) and \
                 tokenizer.json together"
            )
        })
    };
    let text = |bytes: Vec<u8>, name: &str| {
        String::from_utf8(bytes).map_err(|_| format!("{name} is not UTF-8 text"))
    };
    let config = text(read(need("config.json")?, progress).await?, "config.json")?;
    let names = match find(INDEX_FILE) {
        Some(index) => {
            let index = text(read(index, progress).await?, INDEX_FILE)?;
            shard_names(&index).map_err(|e| e.to_string())?
        }
        None => vec![WEIGHTS_FILE.to_owned()],
    };
    let mut shards = Vec::with_capacity(names.len());
    for name in &names {
        shards.push(read(need(name)?, progress).await?);
    }
    let tokenizer = Tokenizer::from_json(&read(need("tokenizer.json")?, progress).await?)
        .map_err(|e| format!("tokenizer.json: {e}"))?;
    let named: Vec<(&str, &[u8])> = names
        .iter()
        .map(String::as_str)
        .zip(shards.iter().map(Vec::as_slice))
        .collect();
    progress("preparing the model", 0, 0);
    let file_bytes = shards.iter().map(|s| s.len() as u64).sum();
    check_fits(
        "the model",
        f32_bytes(&named).map_err(|e| e.to_string())?,
        file_bytes,
    )?;
    let model = Model::from_hf(&config, &named).map_err(|e| e.to_string())?;
    Ok((
        format!("{} (Hugging Face files)", model.family()),
        model,
        tokenizer,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picked(paths: &[&str]) -> Vec<PickedFile> {
        paths
            .iter()
            .map(|path| PickedFile {
                name: path.rsplit('/').next().unwrap_or(path).to_owned(),
                path: (*path).to_owned(),
                url: format!("blob:{path}"),
            })
            .collect()
    }

    fn paths(files: &[&PickedFile]) -> Vec<String> {
        files.iter().map(|f| f.path.clone()).collect()
    }

    #[test]
    fn a_folder_sorts_into_the_model_and_its_dictionaries() {
        let files = picked(&[
            "smol/config.json",
            "smol/model.safetensors",
            "smol/tokenizer.json",
            "smol/saes/layer_3/cfg.json",
            "smol/saes/layer_3/sae_weights.safetensors",
            "smol/saes/layer_3/sparsity.safetensors",
            "smol/saes/layer_8/sae_weights.safetensors",
            "smol/saes/layer_8/cfg.json",
        ]);
        let sorted = sort(&files).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            paths(&sorted.model),
            [
                "smol/config.json",
                "smol/model.safetensors",
                "smol/tokenizer.json"
            ]
        );
        let names: Vec<&str> = sorted.dictionaries.iter().map(|d| d.0.as_str()).collect();
        assert_eq!(names, ["smol/saes/layer_3", "smol/saes/layer_8"]);
        assert_eq!(
            sorted.dictionaries[1].2.path,
            "smol/saes/layer_8/sae_weights.safetensors"
        );
    }

    #[test]
    fn files_picked_loose_are_the_model_and_at_most_one_dictionary() {
        let files = picked(&["model.gguf", "cfg.json", "sae_weights.safetensors"]);
        let sorted = sort(&files).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(paths(&sorted.model), ["model.gguf"]);
        assert_eq!(sorted.dictionaries.len(), 1);
        assert_eq!(sorted.dictionaries[0].0, "cfg.json");
        let alone = picked(&["cfg.json", "sae_weights.safetensors"]);
        assert!(sort(&alone).is_ok_and(|s| s.model.is_empty()));
        let Err(error) = sort(&picked(&["model.gguf", "saes/a/cfg.json"])) else {
            panic!("a dictionary without weights was taken");
        };
        assert!(
            error.contains("saes/a/cfg.json: sae_weights.safetensors is missing"),
            "{error}"
        );
    }
}
