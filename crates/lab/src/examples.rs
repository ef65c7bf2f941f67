//! A corpus example shown the way the feature view shows it: the window's tokens with the
//! feature's activation at each, recomputed live from the pack's reference.

use serde::{Deserialize, Serialize};

use crate::analyze::TokenView;
use crate::error::{LabError, Result};
use crate::lab::Lab;

/// One example, recomputed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExampleActivations {
    /// The document's name (e.g. `ca01`).
    pub document: String,
    /// The document's genre, in words.
    pub genre: String,
    /// The window's tokens.
    pub tokens: Vec<TokenView>,
    /// The feature's activation at each of them.
    pub activations: Vec<f32>,
    /// The example's token within the window.
    pub at: usize,
}

impl Lab {
    /// Recomputes feature `feature` of block `layer` on the window holding token
    /// `position` of document `document`; returns at most `context` tokens either side
    /// of it.
    pub async fn example(
        &self,
        layer: usize,
        feature: usize,
        document: usize,
        position: usize,
        context: usize,
    ) -> Result<ExampleActivations> {
        let corpus = self.loaded_corpus()?;
        let (window, at) = corpus.window_of(document, position).ok_or_else(|| {
            LabError::Request(format!(
                "the corpus has no token {position} in document {document}"
            ))
        })?;
        let activations = self.feature_activations(window, layer, feature).await?;
        if activations.len() != window.len() {
            return Err(LabError::Request(format!(
                "the engine returned {} activations for a window of {} tokens",
                activations.len(),
                window.len()
            )));
        }
        let from = at.saturating_sub(context);
        let to = (at + context + 1).min(window.len());
        let entry = &corpus.index.documents[document];
        let genre = corpus
            .index
            .genres
            .iter()
            .find(|(key, _)| *key == entry.genre)
            .map_or_else(|| entry.genre.clone(), |(_, name)| name.clone());
        Ok(ExampleActivations {
            document: entry.id.clone(),
            genre,
            tokens: window[from..to]
                .iter()
                .map(|&id| TokenView {
                    id,
                    text: self.token_text(id),
                })
                .collect(),
            activations: activations[from..to].to_vec(),
            at: at - from,
        })
    }
}

/// A corpus example as text, without recomputing: the tokens before the example's, its
/// token, and those after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snippet {
    /// The text before the token.
    pub before: String,
    /// The token.
    pub token: String,
    /// The text after it.
    pub after: String,
    /// The activation stored for it.
    pub activation: f32,
}

impl Lab {
    /// Token `position` of document `document` with up to `before` tokens before it and
    /// `after` after it (within the document); `None` if there is no such token.
    #[must_use]
    pub fn snippet(
        &self,
        document: usize,
        position: usize,
        (before, after): (usize, usize),
        activation: f32,
    ) -> Option<Snippet> {
        let tokens = self.corpus()?.document(document)?;
        let token = *tokens.get(position)?;
        let text = |ids: &[u32]| {
            ids.iter()
                .map(|&id| self.token_text(id))
                .collect::<String>()
        };
        Some(Snippet {
            before: text(&tokens[position.saturating_sub(before)..position]),
            token: self.token_text(token),
            after: text(&tokens[position + 1..(position + 1 + after).min(tokens.len())]),
            activation,
        })
    }
}
