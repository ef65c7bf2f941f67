//! A prompt's tokens, the model's next-token predictions, and each token's strongest
//! features at every block.

use candle_core::{D, Device, Tensor};
use glassbox_model::{HookPoint, Hooks, Norm};
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

impl Lab {
    /// Tokenizes `text` and checks it fits the model.
    pub fn prompt_ids(&self, text: &str) -> Result<Vec<u32>> {
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
    pub fn analyze(
        &self,
        text: &str,
        top_predictions: usize,
        top_features: usize,
    ) -> Result<PromptAnalysis> {
        let ids = self.prompt_ids(text)?;
        let n_layer = self.dictionaries.len();
        let mut hooks = Hooks::none();
        for l in 0..n_layer {
            hooks = hooks.cache(HookPoint::LnNormalized(l, Norm::Ln2));
        }
        let logits = self.model.forward_ids(&ids, &mut hooks)?;
        let cache = hooks.take_cache();
        let last = logits.squeeze(0)?.get(ids.len() - 1)?;
        let predictions = self.top_predictions(&last, top_predictions)?;
        let mut features = vec![Vec::with_capacity(n_layer); ids.len()];
        for (layer, dictionary) in self.dictionaries.iter().enumerate() {
            let input = cache[&HookPoint::LnNormalized(layer, Norm::Ln2)].squeeze(0)?;
            let acts: Vec<Vec<f32>> = dictionary.encode(&input)?.to_vec2()?;
            for (position, row) in acts.iter().enumerate() {
                features[position].push(self.strongest(layer, row, top_features));
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
    pub fn top_predictions(&self, logits: &Tensor, n: usize) -> Result<Vec<Prediction>> {
        let probabilities: Vec<f32> =
            candle_core::Tensor::exp(&logits.broadcast_sub(&logits.max_keepdim(D::Minus1)?)?)
                .and_then(|e| e.broadcast_div(&e.sum_keepdim(D::Minus1)?))?
                .to_vec1()?;
        let mut order: Vec<usize> = (0..probabilities.len()).collect();
        order.sort_by(|&a, &b| {
            probabilities[b]
                .total_cmp(&probabilities[a])
                .then(a.cmp(&b))
        });
        Ok(order
            .into_iter()
            .take(n)
            .map(|i| Prediction {
                id: i as u32,
                text: self.token_text(i as u32),
                probability: probabilities[i],
            })
            .collect())
    }

    /// The `n` strongest non-zero entries of one token's activations at `layer`.
    fn strongest(&self, layer: usize, row: &[f32], n: usize) -> Vec<ActiveFeature> {
        let mut active: Vec<usize> = (0..row.len()).filter(|&f| row[f] > 0.0).collect();
        active.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        active
            .into_iter()
            .take(n)
            .map(|feature| ActiveFeature {
                layer,
                feature,
                activation: row[feature],
                label: self.label(layer, feature).to_owned(),
            })
            .collect()
    }

    /// One feature's activation at every token of `ids` (a prompt or a corpus window).
    pub fn feature_activations(
        &self,
        ids: &[u32],
        layer: usize,
        feature: usize,
    ) -> Result<Vec<f32>> {
        self.check_feature(layer, feature)?;
        let hook = HookPoint::LnNormalized(layer, Norm::Ln2);
        let mut hooks = Hooks::none().cache(hook);
        let ids_tensor = Tensor::new(ids, &Device::Cpu)?.unsqueeze(0)?;
        self.model.forward(&ids_tensor, &mut hooks)?;
        let input = hooks.take_cache()[&hook].squeeze(0)?;
        let acts = self.dictionary(layer)?.encode(&input)?;
        Ok(acts.narrow(1, feature, 1)?.squeeze(1)?.to_vec1()?)
    }
}
