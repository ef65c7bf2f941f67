//! Graph steering: set nodes of a prompt's attribution graph (a feature at its position
//! to a value, 0 ablating it; a transcoder's error taken out) and continue the prompt
//! greedily, next to the same continuation unsteered, as Neuronpedia's graph steering
//! does (temperature 0, 10 tokens by default, at most 20). Each edit acts at its position
//! of the prompt, and the model computes everything after it, the generated tokens
//! included; attention free, or frozen over the prompt as circuit-tracer's
//! `freeze_attention` does.

use std::collections::BTreeSet;

use glassbox_model::sampling::Sampling;
use glassbox_model::{Edit, HookPoint, Hooks, Intervention, Norm};
use serde::{Deserialize, Serialize};

use crate::beside::{Alone, Beside};
use crate::circuit::NodeEdit;
use crate::error::{LabError, Result};
use crate::lab::Lab;
use crate::steer::{FeatureSteer, SteerMode, SteerResult};

/// The most tokens graph steering generates.
pub const MAX_GRAPH_STEER_TOKENS: usize = 20;

/// The most nodes one graph steering sets.
pub const MAX_NODE_EDITS: usize = 64;

/// What graph steering does with the prompt's attention patterns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SteerAttention {
    /// Computed from the steered activations, like everything else.
    #[default]
    Free,
    /// Every head's pattern over the prompt kept as the unsteered prompt's (circuit-tracer's
    /// `freeze_attention`: the edits reach later positions only along the paths the graph
    /// traced); the generated tokens attend freely.
    Frozen,
}

impl Lab {
    /// `text` continued greedily for `max_tokens` with every edit of `edits` made at its
    /// position, and without; the next-token predictions of each and the logits that
    /// moved most. Refused: no edit or more than [`MAX_NODE_EDITS`], a node set twice, a
    /// position past the prompt, a feature that does not exist, a value that is not a
    /// number, 0 or more than [`MAX_GRAPH_STEER_TOKENS`] tokens.
    pub async fn steer_nodes(
        &self,
        text: &str,
        edits: &[NodeEdit],
        max_tokens: usize,
        attention: SteerAttention,
    ) -> Result<SteerResult> {
        self.steer_nodes_with(text, edits, max_tokens, attention, &Alone)
            .await
    }

    /// [`Lab::steer_nodes`], the unsteered text continued `beside` (another worker)
    /// meanwhile.
    pub async fn steer_nodes_with(
        &self,
        text: &str,
        edits: &[NodeEdit],
        max_tokens: usize,
        attention: SteerAttention,
        beside: &dyn Beside,
    ) -> Result<SteerResult> {
        if max_tokens == 0 || max_tokens > MAX_GRAPH_STEER_TOKENS {
            return Err(LabError::Request(format!(
                "graph steering generates 1 to {MAX_GRAPH_STEER_TOKENS} tokens, not {max_tokens}"
            )));
        }
        if edits.is_empty() || edits.len() > MAX_NODE_EDITS {
            return Err(LabError::Request(format!(
                "graph steering sets 1 to {MAX_NODE_EDITS} nodes, not {}",
                edits.len()
            )));
        }
        let ids = self.circuit_ids(text)?;
        let mut error_layers = BTreeSet::new();
        for (i, edit) in edits.iter().enumerate() {
            let position = edit.position();
            if position >= ids.len() {
                return Err(LabError::Request(format!(
                    "position {position} is past the prompt's {} tokens",
                    ids.len()
                )));
            }
            if edits[..i].iter().any(|e| e.node() == edit.node()) {
                return Err(LabError::Request(format!(
                    "{:?} is set twice; set each node once",
                    edit.node()
                )));
            }
            match *edit {
                NodeEdit::Feature { value, .. } if !value.is_finite() => {
                    return Err(LabError::Request(format!(
                        "{value} is not an activation to set a feature to"
                    )));
                }
                NodeEdit::Feature { .. } => {}
                NodeEdit::Error { layer, .. } => {
                    self.dictionary(layer)?;
                    error_layers.insert(layer);
                }
            }
        }
        // The errors taken out are those of the prompt's own run, and so are the patterns
        // kept.
        let mut kept: Vec<HookPoint> = error_layers
            .iter()
            .flat_map(|&l| [HookPoint::LnNormalized(l, Norm::Ln2), HookPoint::MlpOut(l)])
            .collect();
        let blocks = self.model().dims().n_layer;
        if attention == SteerAttention::Frozen {
            kept.extend((0..blocks).map(HookPoint::Pattern));
        }
        let cache = if kept.is_empty() {
            std::collections::BTreeMap::default()
        } else {
            self.activations(&ids, &kept).await?
        };
        let mut steering = Vec::new();
        let mut hooks = Hooks::none();
        if attention == SteerAttention::Frozen {
            let prompt: Vec<usize> = (0..ids.len()).collect();
            for hook in (0..blocks).map(HookPoint::Pattern) {
                let pattern = cache.get(&hook).ok_or_else(|| {
                    LabError::Request(format!("the prompt's run did not keep {hook}"))
                })?;
                hooks = hooks.intervene(Intervention::at(
                    hook,
                    prompt.clone(),
                    Edit::Replace(pattern.clone()),
                ));
            }
        }
        for edit in edits {
            match *edit {
                NodeEdit::Feature {
                    layer,
                    position,
                    feature,
                    value,
                } => steering.extend(self.steering(
                    &[FeatureSteer {
                        layer,
                        feature,
                        mode: SteerMode::Clamp(value),
                    }],
                    Some(&[position]),
                )?),
                NodeEdit::Error { layer, position } => {
                    hooks = hooks.intervene(self.error_out(layer, position, &cache)?);
                }
            }
        }
        let sampling = Sampling::greedy(max_tokens);
        self.compare_steered(&ids, &sampling, &steering, &hooks, beside)
            .await
    }
}
