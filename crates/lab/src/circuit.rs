//! A prompt's attribution graph, pruned to thresholds, as the graph file the view draws
//! and exports. The attribution (the costly part) is kept for the last prompt, so moving
//! a threshold only prunes again.

use std::sync::{Arc, Mutex, PoisonError};

use glassbox_circuits::{
    AttributionOptions, ExportContext, Graph, GraphFile, Influence, NodeKind, Replacement,
    Thresholds, attribute,
};
use glassbox_model::Hooks;
use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};
use crate::lab::Lab;
use crate::steer::{FeatureSteer, SteerMode};

/// One logit's change when a feature is ablated at one position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogitChange {
    /// The token.
    pub token: u32,
    /// How it reads.
    pub text: String,
    /// The graph's prediction: minus the feature's direct effect on the (mean-centred)
    /// logit, everything else frozen.
    pub predicted: f32,
    /// The real model's change of the mean-centred logit, attention and everything
    /// downstream free.
    pub actual: f32,
}

/// The most tokens a graph is computed for (half the default pack's context).
pub const MAX_CIRCUIT_TOKENS: usize = 64;

/// The most feature nodes a graph gets: the most influential of the active ones, as
/// circuit-tracer's `max_feature_nodes` (each is one row to carry back, and the dense
/// adjacency grows with their square; the default pack has 128 active per token).
pub const MAX_CIRCUIT_FEATURES: usize = 2048;

/// How the lab attributes.
fn options() -> AttributionOptions {
    AttributionOptions {
        max_feature_nodes: Some(MAX_CIRCUIT_FEATURES),
        ..AttributionOptions::default()
    }
}

/// A prompt's attributed graph and its influence.
type Attributed = (String, Arc<Graph>, Arc<Influence>);

/// The last prompt's graph and its influence.
#[derive(Debug, Default)]
pub(crate) struct CircuitMemo {
    last: Mutex<Option<Attributed>>,
}

impl Lab {
    /// The attribution graph of `text`, pruned to `thresholds`.
    pub fn circuit(&self, text: &str, thresholds: Thresholds) -> Result<GraphFile> {
        for (name, value) in [("node", thresholds.nodes), ("edge", thresholds.edges)] {
            if !(0.0..=1.0).contains(&value) {
                return Err(LabError::Request(format!(
                    "the {name} threshold must be between 0 and 1, not {value}"
                )));
            }
        }
        let ids = self.prompt_ids(text)?;
        if ids.len() > MAX_CIRCUIT_TOKENS {
            return Err(LabError::Request(format!(
                "the prompt is {} tokens long; graphs are computed for at most {MAX_CIRCUIT_TOKENS}",
                ids.len()
            )));
        }
        let (graph, influence) = self.attributed(text, &ids)?;
        let pruned = influence.prune(&graph, thresholds);
        let token_text = |t: u32| self.token_text(t);
        let label = |l: usize, f: usize| self.label(l, f).to_owned();
        let slug: String = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .take(6)
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
            .join("-");
        let context = ExportContext {
            slug: &slug,
            scan: &self.manifest.name,
            prompt: text,
            d_sae: self.dictionaries.first().map_or(0, |d| d.config.d_sae),
            n_layer: self.model.config().n_layer,
            token_text: &token_text,
            label: &label,
        };
        Ok(GraphFile::export(&graph, &pruned, thresholds, &context))
    }

    fn attributed(&self, text: &str, ids: &[u32]) -> Result<(Arc<Graph>, Arc<Influence>)> {
        let mut last = self
            .circuits
            .last
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((prompt, graph, influence)) = last.as_ref()
            && prompt == text
        {
            return Ok((Arc::clone(graph), Arc::clone(influence)));
        }
        let replacement = Replacement::trace(&self.model, &self.dictionaries, ids)?;
        let graph = Arc::new(attribute(&self.model, &replacement, &options())?);
        let influence = Arc::new(Influence::of(&graph));
        *last = Some((text.to_owned(), Arc::clone(&graph), Arc::clone(&influence)));
        Ok((graph, influence))
    }
}

impl Lab {
    /// Ablates feature `feature` of block `layer` at `position` of `text`: for each logit
    /// node of the prompt's graph, the change the graph predicts next to the real one.
    pub fn ablate_node(
        &self,
        text: &str,
        layer: usize,
        position: usize,
        feature: usize,
    ) -> Result<Vec<LogitChange>> {
        self.check_feature(layer, feature)?;
        let ids = self.prompt_ids(text)?;
        if ids.len() > MAX_CIRCUIT_TOKENS {
            return Err(LabError::Request(format!(
                "the prompt is {} tokens long; graphs are computed for at most {MAX_CIRCUIT_TOKENS}",
                ids.len()
            )));
        }
        let (graph, _) = self.attributed(text, &ids)?;
        let source = graph
            .nodes
            .iter()
            .position(|n| {
                n.kind
                    == NodeKind::Feature {
                        layer,
                        position,
                        feature,
                    }
            })
            .ok_or_else(|| {
                LabError::Request(format!(
                    "feature {layer}/{feature} is not active at position {position} of this prompt"
                ))
            })?;
        let ablate = [FeatureSteer {
            layer,
            feature,
            mode: SteerMode::Scale(0.0),
        }];
        let last = ids.len() - 1;
        let centred = |hooks: &mut Hooks| -> Result<Vec<f32>> {
            let logits: Vec<f32> = self.model.forward_ids(&ids, hooks)?.get(last)?.to_vec1()?;
            let mean = logits.iter().sum::<f32>() / logits.len() as f32;
            Ok(logits.into_iter().map(|l| l - mean).collect())
        };
        let before = centred(&mut Hooks::none())?;
        let after = centred(&mut self.steering_hooks_at(&ablate, Some(&[position]))?)?;
        Ok(graph
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| match n.kind {
                NodeKind::Logit { token, .. } => Some(LogitChange {
                    token,
                    text: self.token_text(token),
                    predicted: -graph.edge(source, i),
                    actual: after[token as usize] - before[token as usize],
                }),
                _ => None,
            })
            .collect())
    }
}
