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
        let (window, at) = self.corpus.window_of(document, position).ok_or_else(|| {
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
        let entry = &self.corpus.index.documents[document];
        let genre = self
            .corpus
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
