//! The tokenizer a GGUF file carries in its metadata (`tokenizer.ggml.*`), rebuilt as a
//! Hugging Face tokenizer: byte-level BPE (`tokenizer.ggml.model = gpt2`) with the
//! pre-tokenizer its `tokenizer.ggml.pre` names, and its control tokens kept whole.

use serde_json::{Value as Json, json};

use crate::gguf::{Gguf, Value};
use crate::{ModelError, Result, Tokenizer};

/// GGUF's token types (`tokenizer.ggml.token_type`).
const CONTROL: u64 = 3;
const USER_DEFINED: u64 = 4;

/// Llama 3's split (`llama-bpe`): numbers in groups of up to three, case-insensitive
/// contractions.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

impl Gguf<'_> {
    /// The file's tokenizer.
    pub fn tokenizer(&self) -> Result<Tokenizer> {
        let model = self.text("tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(self.error(format!(
                "tokenizer.ggml.model `{model}` is not supported (Glassbox rebuilds byte-level \
                 BPE tokenizers, `gpt2`)"
            )));
        }
        let tokens = self.strings("tokenizer.ggml.tokens")?;
        let merges = self.strings("tokenizer.ggml.merges")?;
        let types = match self.metadata().get("tokenizer.ggml.token_type") {
            Some(Value::Array(types)) => types
                .iter()
                .map(|t| match t {
                    Value::Unsigned(v) => *v,
                    Value::Signed(v) => v.unsigned_abs(),
                    _ => 1,
                })
                .collect(),
            _ => vec![1; tokens.len()],
        };
        if types.len() != tokens.len() {
            return Err(self.error(format!(
                "{} token types for {} tokens",
                types.len(),
                tokens.len()
            )));
        }
        let pre = match self.metadata().get("tokenizer.ggml.pre") {
            Some(Value::Text(pre)) => pre.as_str(),
            _ => "default",
        };
        let json = tokenizer_json(&tokens, &merges, &types, pre).map_err(|e| self.error(e))?;
        Tokenizer::from_json(json.to_string().as_bytes())
            .map_err(|e| ModelError::Tokenizer(format!("{}: {e}", self.name())))
    }

    fn strings(&self, key: &str) -> Result<Vec<&str>> {
        let Value::Array(items) = self.get(key)? else {
            return Err(self.error(format!("metadata `{key}` is not an array")));
        };
        items
            .iter()
            .map(|item| match item {
                Value::Text(text) => Ok(text.as_str()),
                _ => Err(self.error(format!("metadata `{key}` holds a non-string"))),
            })
            .collect()
    }
}

/// A `tokenizer.json` for byte-level BPE over `tokens` and `merges` (`"a b"`), with the
/// pre-tokenizer llama.cpp calls `pre`.
fn tokenizer_json(
    tokens: &[&str],
    merges: &[&str],
    types: &[u64],
    pre: &str,
) -> std::result::Result<Json, String> {
    let byte_level = |use_regex: bool| {
        json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
               "use_regex": use_regex})
    };
    let split = |pattern: &str| {
        json!({"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated",
               "invert": false})
    };
    let pre_tokenizer = match pre {
        "default" | "gpt-2" | "gpt2" => byte_level(true),
        "smollm" => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level(true)]}),
        "llama-bpe" | "llama3" => json!({"type": "Sequence", "pretokenizers": [
            split(LLAMA3_SPLIT), byte_level(false)]}),
        other => {
            return Err(format!(
                "tokenizer.ggml.pre `{other}` is not known to Glassbox (it knows gpt-2, \
                 smollm and llama-bpe)"
            ));
        }
    };
    let mut vocab = serde_json::Map::with_capacity(tokens.len());
    for (id, token) in tokens.iter().enumerate() {
        if vocab.insert((*token).to_owned(), json!(id)).is_some() {
            return Err(format!("token `{token}` appears twice in the vocabulary"));
        }
    }
    let added: Vec<Json> = tokens
        .iter()
        .zip(types)
        .enumerate()
        .filter(|(_, (_, kind))| matches!(**kind, CONTROL | USER_DEFINED))
        .map(|(id, (token, kind))| {
            json!({"id": id, "content": token, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": *kind == CONTROL})
        })
        .collect();
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": byte_level(true),
        "decoder": byte_level(true),
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
                  "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": merges},
    }))
}
