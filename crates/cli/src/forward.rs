//! `glassbox forward`: run a model directory on tokens or text and print the logits or the
//! top next-token predictions.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use candle_core::D;
use glassbox_model::{Gpt2, Hooks, Tokenizer};

/// What to run and how to print it.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["tokens", "text"])))]
pub(crate) struct ForwardArgs {
    /// A directory with HF `config.json` and `model.safetensors` (and `tokenizer.json` for --text).
    #[arg(long)]
    model: PathBuf,
    /// Token ids, comma-separated, e.g. 15496,995,11.
    #[arg(long)]
    tokens: Option<String>,
    /// Text to tokenize with the directory's tokenizer.json.
    #[arg(long)]
    text: Option<String>,
    /// Print `{"logits": [[...], ...]}`: one row of `vocab_size` floats per position.
    #[arg(long)]
    json: bool,
    /// Show the N most likely next tokens at each position.
    #[arg(long, default_value_t = 5)]
    top: usize,
}

pub(crate) fn forward(args: &ForwardArgs) -> Result<()> {
    let model = load_model(&args.model)?;
    let tokenizer_path = args.model.join("tokenizer.json");
    let tokenizer = if args.text.is_some() || tokenizer_path.exists() {
        let bytes = read(&tokenizer_path)?;
        Some(Tokenizer::from_json(&bytes)?)
    } else {
        None
    };
    let ids = match (&args.tokens, &args.text, &tokenizer) {
        (Some(list), _, _) => parse_token_ids(list)?,
        (None, Some(text), Some(tokenizer)) => tokenizer.encode_ids(text)?,
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
            logits: Vec<Vec<f32>>,
        }
        println!(
            "{}",
            serde_json::to_string(&Output {
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
    let top = args.top.clamp(1, model.config().vocab_size);
    for (position, (&id, row)) in ids.iter().zip(&probabilities).enumerate() {
        let mut order: Vec<usize> = (0..row.len()).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        let predictions: Vec<String> = order[..top]
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

fn load_model(dir: &Path) -> Result<Gpt2> {
    if !dir.is_dir() {
        bail!("--model {}: no such directory", dir.display());
    }
    let config = String::from_utf8(read(&dir.join("config.json"))?)
        .with_context(|| format!("{}: not UTF-8 text", dir.join("config.json").display()))?;
    let weights = read(&dir.join("model.safetensors"))?;
    Ok(Gpt2::load(&config, &weights)?)
}

fn read(path: &Path) -> Result<Vec<u8>> {
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
