//! The pack's tokenized corpus: a document index and every document's token ids.

use serde::{Deserialize, Serialize};

use crate::error::{Result, content};

/// Which part of the corpus a document is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Trained on.
    Train,
    /// Held out for evaluation.
    Eval,
}

/// One document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentEntry {
    /// Its name in the source, e.g. `ca01`.
    pub id: String,
    /// Its genre's key (see [`CorpusIndex::genres`]).
    pub genre: String,
    /// Training or held-out.
    pub split: Split,
    /// Its first token's index in the token file.
    pub start: usize,
    /// Its length in tokens (the first is `<|endoftext|>`).
    pub len: usize,
}

/// The document index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorpusIndex {
    /// Genre keys and names, e.g. `["a", "press: reportage"]`.
    pub genres: Vec<(String, String)>,
    /// Every document, in token-file order.
    pub documents: Vec<DocumentEntry>,
}

/// The tokenized corpus, ready to cut windows from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corpus {
    /// The documents.
    pub index: CorpusIndex,
    /// All tokens, documents back to back.
    pub tokens: Vec<u32>,
    /// The window length activations are computed on.
    pub window: usize,
}

impl Corpus {
    /// Reads the index (JSON) and the token file (little-endian `u16`) and checks that
    /// they agree with each other and with the vocabulary.
    pub fn parse(
        index_path: &str,
        index_json: &[u8],
        tokens_path: &str,
        tokens: &[u8],
        window: usize,
        vocab_size: usize,
    ) -> Result<Self> {
        let index: CorpusIndex =
            serde_json::from_slice(index_json).map_err(|e| content(index_path, e))?;
        if !tokens.len().is_multiple_of(2) {
            return Err(content(tokens_path, "odd length for a file of u16 tokens"));
        }
        let tokens: Vec<u32> = tokens
            .chunks_exact(2)
            .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])))
            .collect();
        if let Some(bad) = tokens.iter().find(|&&t| t as usize >= vocab_size) {
            return Err(content(
                tokens_path,
                format!("token id {bad} is outside the vocabulary of {vocab_size}"),
            ));
        }
        for document in &index.documents {
            let end = document.start.checked_add(document.len);
            if end.is_none_or(|end| end > tokens.len()) || document.len == 0 {
                return Err(content(
                    index_path,
                    format!(
                        "document {} spans {} tokens from token {}, but there are {}",
                        document.id,
                        document.len,
                        document.start,
                        tokens.len()
                    ),
                ));
            }
            if !index.genres.iter().any(|(key, _)| *key == document.genre) {
                return Err(content(
                    index_path,
                    format!(
                        "document {} has unknown genre {}",
                        document.id, document.genre
                    ),
                ));
            }
        }
        if window == 0 {
            return Err(content(index_path, "the window length is zero"));
        }
        Ok(Self {
            index,
            tokens,
            window,
        })
    }

    /// A document's tokens.
    #[must_use]
    pub fn document(&self, document: usize) -> Option<&[u32]> {
        let entry = self.index.documents.get(document)?;
        self.tokens
            .get(entry.start..entry.start.checked_add(entry.len)?)
    }

    /// The window a token's activations are computed on: its tokens, and the token's
    /// place in it. `None` if there is no such token.
    #[must_use]
    pub fn window_of(&self, document: usize, position: usize) -> Option<(&[u32], usize)> {
        let tokens = self.document(document)?;
        if position >= tokens.len() {
            return None;
        }
        let start = position / self.window * self.window;
        let end = start.saturating_add(self.window).min(tokens.len());
        Some((&tokens[start..end], position - start))
    }
}
