//! A model the person picked from their computer, read in the engine worker through the
//! files' `blob:` URLs (nothing is uploaded): one GGUF file, or a Hugging Face folder's
//! `config.json`, `model.safetensors` (or its shards and `model.safetensors.index.json`)
//! and `tokenizer.json`. The memory the model takes as f32 is checked against what a page
//! has before anything is dequantized.

use glassbox_model::checkpoint::{INDEX_FILE, WEIGHTS_FILE, f32_bytes, shard_names};
use glassbox_model::gguf::Gguf;
use glassbox_model::{Model, Tokenizer};

use super::fetch;
use super::protocol::PickedFile;

/// The most memory a model may take as f32 in the worker: wasm32 addresses 4 GB, and the
/// files, the activations and the page's own need room beside the weights.
const MAX_MODEL_BYTES: u64 = 3 << 30;

/// The model's name for the page, the model and its tokenizer.
pub(super) async fn open_model(
    files: &[PickedFile],
    progress: &dyn Fn(&str, u64, u64),
) -> Result<(String, Model, Tokenizer), String> {
    let (name, model, tokenizer) = match files {
        [file] if !is_hf_file(&file.name) => open_gguf(file, progress).await?,
        _ => open_hf_folder(files, progress).await?,
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
    let extension = std::path::Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    matches!(extension.as_deref(), Some("json" | "safetensors"))
}

async fn read(file: &PickedFile, progress: &dyn Fn(&str, u64, u64)) -> Result<Vec<u8>, String> {
    let stage = format!("reading {}", file.name);
    progress(&stage, 0, 0);
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

async fn open_gguf(
    file: &PickedFile,
    progress: &dyn Fn(&str, u64, u64),
) -> Result<(String, Model, Tokenizer), String> {
    let bytes = read(file, progress).await?;
    progress("preparing the model", 0, 0);
    let parsed = Gguf::parse(&file.name, &bytes).map_err(|e| e.to_string())?;
    check_fits(&file.name, parsed.f32_bytes(), bytes.len() as u64)?;
    drop(parsed);
    let (model, tokenizer) = Model::from_gguf(&file.name, &bytes).map_err(|e| e.to_string())?;
    Ok((file.name.clone(), model, tokenizer))
}

async fn open_hf_folder(
    files: &[PickedFile],
    progress: &dyn Fn(&str, u64, u64),
) -> Result<(String, Model, Tokenizer), String> {
    let find = |name: &str| files.iter().find(|f| f.name == name);
    let need = |name: &str| {
        find(name).ok_or_else(|| {
            format!(
                "{name} is missing: open one GGUF file, or a Hugging Face folder's config.json, \
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
