//! A prompt's tokens, the model's next-token predictions, and each token's strongest
//! features at every block.

use glassbox_engine::{ColumnRead, FeatureRead, LogitsRead, PassRequest};
use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};
use crate::lab::Lab;

/// One token of the prompt, as it reads on its own (e.g. " jury", with its space).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenView {
    /// Its id.
    pub id: u32,
    /// Its text as it appears in the prompt.
    pub text: String,
}

/// A candidate next token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Its id.
    pub id: u32,
    /// How it reads.
    pub text: String,
    /// Its probability.
    pub probability: f32,
}

/// A feature active at a token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveFeature {
    /// The block.
    pub layer: usize,
    /// The feature's index.
    pub feature: usize,
    /// Its activation here.
    pub activation: f32,
    /// Its label.
    pub label: String,
}

/// What the playground shows for a prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromptAnalysis {
    /// The tokens.
    pub tokens: Vec<TokenView>,
    /// The most likely next tokens after the last one.
    pub predictions: Vec<Prediction>,
    /// Per token, per block, its strongest features, strongest first.
    pub features: Vec<Vec<Vec<ActiveFeature>>>,
}

/// The longest text (in UTF-8 bytes) a prompt, a search or a link may carry: far more than
/// any context the page runs holds, and little enough to tokenize at once.
pub const MAX_PROMPT_BYTES: usize = 64 * 1024;

/// An error for a text longer than [`MAX_PROMPT_BYTES`], before any work on it.
pub(crate) fn check_text_length(text: &str) -> Result<()> {
    if text.len() > MAX_PROMPT_BYTES {
        return Err(LabError::Request(format!(
            "the text is {} bytes long; at most {MAX_PROMPT_BYTES} are read",
            text.len()
        )));
    }
    Ok(())
}

impl Lab {
    /// Tokenizes `text` and checks it fits the model (and, before tokenizing, that it is
    /// at most [`MAX_PROMPT_BYTES`] long).
    pub fn prompt_ids(&self, text: &str) -> Result<Vec<u32>> {
        check_text_length(text)?;
        let ids = self.tokenizer.encode_ids(text)?;
        if ids.is_empty() {
            return Err(LabError::Request("the prompt is empty".to_owned()));
        }
        if ids.len() > self.max_tokens() {
            return Err(LabError::Request(format!(
                "the prompt is {} tokens long; this model reads at most {}",
                ids.len(),
                self.max_tokens()
            )));
        }
        Ok(ids)
    }

    /// Runs the model on `text`: its tokens, `top_predictions` next tokens, and each
    /// token's `top_features` strongest features at every block.
    pub async fn analyze(
        &self,
        text: &str,
        top_predictions: usize,
        top_features: usize,
    ) -> Result<PromptAnalysis> {
        let ids = self.prompt_ids(text)?;
        let request = PassRequest {
            features: (0..self.dictionaries.len())
                .map(|dictionary| FeatureRead {
                    dictionary,
                    top: top_features,
                })
                .collect(),
            ..PassRequest::logits(LogitsRead::Last)
        };
        let mut output = self.pass(&ids, &request).await?;
        let by_layer = std::mem::take(&mut output.features);
        let predictions = self.top_predictions(&output.last_logits()?, top_predictions);
        let mut features = vec![Vec::with_capacity(by_layer.len()); ids.len()];
        for (layer, positions) in by_layer.iter().enumerate() {
            for (position, strongest) in positions.iter().enumerate() {
                features[position].push(
                    strongest
                        .iter()
                        .map(|&(feature, activation)| ActiveFeature {
                            layer,
                            feature: feature as usize,
                            activation,
                            label: self.label(layer, feature as usize).to_owned(),
                        })
                        .collect(),
                );
            }
        }
        Ok(PromptAnalysis {
            tokens: ids
                .iter()
                .map(|&id| TokenView {
                    id,
                    text: self.token_text(id),
                })
                .collect(),
            predictions,
            features,
        })
    }

    /// The `n` most probable tokens under `logits` `[vocab]`.
    #[must_use]
    pub fn top_predictions(&self, logits: &[f32], n: usize) -> Vec<Prediction> {
        let largest = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exp: Vec<f32> = logits.iter().map(|&l| (l - largest).exp()).collect();
        let total: f32 = exp.iter().sum();
        let probabilities: Vec<f32> = exp.iter().map(|e| e / total).collect();
        let mut order: Vec<usize> = (0..probabilities.len()).collect();
        order.sort_by(|&a, &b| {
            probabilities[b]
                .total_cmp(&probabilities[a])
                .then(a.cmp(&b))
        });
        order
            .into_iter()
            .take(n)
            .map(|i| Prediction {
                id: i as u32,
                text: self.token_text(i as u32),
                probability: probabilities[i],
            })
            .collect()
    }

    /// One feature's activation at every token of `ids` (a prompt or a corpus window).
    pub async fn feature_activations(
        &self,
        ids: &[u32],
        layer: usize,
        feature: usize,
    ) -> Result<Vec<f32>> {
        self.check_feature(layer, feature)?;
        let request = PassRequest {
            columns: vec![ColumnRead {
                dictionary: layer,
                feature,
            }],
            ..PassRequest::logits(LogitsRead::None)
        };
        let mut output = self.pass(ids, &request).await?;
        Ok(output.columns.swap_remove(0))
    }
}
