//! `glassbox forward`: run a model (a Hugging Face folder or a GGUF file) on tokens or
//! text and print the logits or the top next-token predictions.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use candle_core::D;
use glassbox_model::checkpoint::{INDEX_FILE, WEIGHTS_FILE, shard_names};
use glassbox_model::{Hooks, Model, Tokenizer};

/// The largest file `forward` reads (a model of a few billion f16 parameters).
const MAX_FILE_BYTES: u64 = 16 << 30;

/// What to run and how to print it.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["tokens", "text"])))]
pub(crate) struct ForwardArgs {
    /// A `.gguf` file, or a folder with HF `config.json`, `model.safetensors` (or shards
    /// and `model.safetensors.index.json`) and `tokenizer.json` (for --text).
    #[arg(long)]
    model: PathBuf,
    /// Token ids, comma-separated, e.g. 15496,995,11.
    #[arg(long)]
    tokens: Option<String>,
    /// Text to tokenize with the model's tokenizer.
    #[arg(long)]
    text: Option<String>,
    /// Print `{"tokens": [...], "logits": [[...], ...]}`: one row of `vocab_size` floats
    /// per token.
    #[arg(long)]
    json: bool,
    /// Show the N most likely next tokens at each position.
    #[arg(long, default_value_t = 5)]
    top: usize,
}

pub(crate) fn forward(args: &ForwardArgs) -> Result<()> {
    let (model, tokenizer) = open(&args.model)?;
    let ids = match (&args.tokens, &args.text, &tokenizer) {
        (Some(list), _, _) => parse_token_ids(list)?,
        (None, Some(text), Some(tokenizer)) => tokenizer.encode_ids(text)?,
        (None, Some(_), None) => {
            bail!("{}: no tokenizer to read --text with", args.model.display())
        }
        _ => bail!("give --tokens or --text"),
    };
    if ids.is_empty() {
        bail!("the input has no tokens");
    }
    let logits = model.forward_ids(&ids, &mut Hooks::none())?;

    if args.json {
        // Serialized as f32, so each number is written as short as it round-trips.
        #[derive(serde::Serialize)]
        struct Output {
            tokens: Vec<u32>,
            logits: Vec<Vec<f32>>,
        }
        println!(
            "{}",
            serde_json::to_string(&Output {
                tokens: ids,
                logits: logits.to_vec2()?
            })?
        );
        return Ok(());
    }
    let probabilities = softmax(&logits)?;
    let show = |id: u32| -> String {
        tokenizer
            .as_ref()
            .and_then(|t| t.token_text(id).ok())
            .map_or_else(|| format!("#{id}"), |text| format!("{text:?}"))
    };
    let top = args.top.clamp(1, model.dims().vocab_size);
    for (position, (&id, row)) in ids.iter().zip(&probabilities).enumerate() {
        let mut order: Vec<usize> = (0..row.len()).collect();
        order.select_nth_unstable_by(top - 1, |&a, &b| row[b].total_cmp(&row[a]));
        order.truncate(top);
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        let predictions: Vec<String> = order
            .iter()
            .map(|&next| format!("{} {:.4}", show(next as u32), row[next]))
            .collect();
        println!(
            "{position:>4} {:<16} → {}",
            show(id),
            predictions.join(", ")
        );
    }
    Ok(())
}

/// A model and its tokenizer (if it has one) from a GGUF file or a Hugging Face folder.
fn open(path: &Path) -> Result<(Model, Option<Tokenizer>)> {
    if path.is_file() {
        let bytes = read(path)?;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let (model, tokenizer) = Model::from_gguf(&name, &bytes)?;
        return Ok((model, Some(tokenizer)));
    }
    if !path.is_dir() {
        bail!("--model {}: no such file or folder", path.display());
    }
    let config = String::from_utf8(read(&path.join("config.json"))?)
        .with_context(|| format!("{}: not UTF-8 text", path.join("config.json").display()))?;
    let index = path.join(INDEX_FILE);
    let names = if index.exists() {
        let json = String::from_utf8(read(&index)?)
            .with_context(|| format!("{}: not UTF-8 text", index.display()))?;
        shard_names(&json)?
    } else {
        vec![WEIGHTS_FILE.to_owned()]
    };
    let shards = names
        .iter()
        .map(|name| read(&path.join(name)))
        .collect::<Result<Vec<_>>>()?;
    let files: Vec<(&str, &[u8])> = names
        .iter()
        .map(String::as_str)
        .zip(shards.iter().map(Vec::as_slice))
        .collect();
    let model = Model::from_hf(&config, &files)?;
    let tokenizer_path = path.join("tokenizer.json");
    let tokenizer = if tokenizer_path.exists() {
        Some(Tokenizer::from_json(&read(&tokenizer_path)?)?)
    } else {
        None
    };
    Ok((model, tokenizer))
}

/// Reads a regular file of at most [`MAX_FILE_BYTES`] (a device such as `/dev/zero`, or
/// a file too large to be a model, is refused before anything is read).
fn read(path: &Path) -> Result<Vec<u8>> {
    let metadata =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if !metadata.is_file() {
        bail!("{} is not a regular file", path.display());
    }
    if metadata.len() > MAX_FILE_BYTES {
        bail!(
            "{} is {} bytes, more than the {MAX_FILE_BYTES} Glassbox reads",
            path.display(),
            metadata.len()
        );
    }
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Parses `15496,995,11`; an error names the first entry that is not a token id.
fn parse_token_ids(list: &str) -> Result<Vec<u32>> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<u32>()
                .with_context(|| format!("token `{s}` is not a token id (a whole number from 0)"))
        })
        .collect()
}

fn softmax(logits: &candle_core::Tensor) -> Result<Vec<Vec<f32>>> {
    let shifted = logits.broadcast_sub(&logits.max_keepdim(D::Minus1)?)?;
    let exp = shifted.exp()?;
    Ok(exp.broadcast_div(&exp.sum_keepdim(D::Minus1)?)?.to_vec2()?)
}

#[cfg(test)]
mod tests {
    use super::parse_token_ids;

    #[test]
    fn token_lists_parse_or_name_the_bad_entry() {
        assert_eq!(
            parse_token_ids("15496, 995,11").unwrap(),
            vec![15496, 995, 11]
        );
        let error = parse_token_ids("1,x2,3").unwrap_err().to_string();
        assert!(error.contains("token `x2` is not a token id"), "{error}");
        assert!(parse_token_ids("-1").is_err());
        assert!(parse_token_ids("99999999999").is_err());
    }
}
