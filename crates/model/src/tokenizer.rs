//! Hugging Face `tokenizer.json` (byte-level BPE for GPT-2) through the `tokenizers` crate.

use crate::{ModelError, Result};

/// One token of an encoded text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The token id.
    pub id: u32,
    /// Where the token sits in the text, in characters (Unicode scalar values):
    /// `start..end`. Tokens that split one character (byte-level BPE on multi-byte
    /// characters) share that character's range.
    pub start: usize,
    /// End of the range, exclusive.
    pub end: usize,
    /// The text `start..end` covers, exactly as it appears in the input.
    pub text: String,
}

/// A tokenizer loaded from a `tokenizer.json`.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .finish_non_exhaustive()
    }
}

impl Tokenizer {
    /// Parses the contents of a `tokenizer.json`.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        // `tokenizers` 0.22 panics on malformed JSON inside the `decoder` object (its
        // `expect("Helper")`): only well-formed JSON reaches it.
        serde_json::from_slice::<serde_json::Value>(bytes)
            .map_err(|e| ModelError::Tokenizer(format!("not a valid tokenizer.json: {e}")))?;
        let inner = tokenizers::Tokenizer::from_bytes(bytes)
            .map_err(|e| ModelError::Tokenizer(format!("not a valid tokenizer.json: {e}")))?;
        Ok(Self { inner })
    }

    /// Splits `text` into tokens, with their character offsets. No special tokens are added.
    pub fn encode(&self, text: &str) -> Result<Vec<Token>> {
        let encoding = self
            .inner
            .encode_char_offsets(text, false)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let chars: Vec<char> = text.chars().collect();
        Ok(encoding
            .get_ids()
            .iter()
            .zip(encoding.get_offsets())
            .map(|(&id, &(start, end))| {
                let end = end.min(chars.len());
                let start = start.min(end);
                Token {
                    id,
                    start,
                    end,
                    text: chars[start..end].iter().collect(),
                }
            })
            .collect())
    }

    /// Only the ids of [`Self::encode`].
    pub fn encode_ids(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self.encode(text)?.into_iter().map(|t| t.id).collect())
    }

    /// The text of a sequence of ids.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, false)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))
    }

    /// How one id reads on its own (e.g. " of"), for showing predictions.
    pub fn token_text(&self, id: u32) -> Result<String> {
        self.decode(&[id])
    }

    /// The id of a token written as in the vocabulary (e.g. `<|endoftext|>`).
    #[must_use]
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Tokens in the vocabulary, special tokens included.
    #[must_use]
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}
