//! A pack's attribution graphs on named prompts, for its report: the top logit, the
//! graph's size, circuit-tracer's replacement and completeness scores, and the features
//! that write most directly to the top logit (with the token at their position).

use std::sync::Arc;

use glassbox_circuits::{AttributionOptions, Influence, NodeKind, Replacement, attribute};
use glassbox_dict::Dictionary;
use glassbox_model::{Model, Tokenizer};
use serde::{Deserialize, Serialize};

use crate::error::{BuildError, Result};

/// The prompts a pack of a real model reports on: an indirect object and a fact.
pub const PROMPTS: [&str; 2] = [
    "When Mary and John went to the store, John gave a drink to",
    "The capital of France is",
];

/// Feature nodes at most, as the page computes graphs.
pub const MAX_FEATURES: usize = 2048;

/// One feature's direct effect on the top logit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogitInput {
    /// `{layer}_{feature}`.
    pub feature: String,
    /// Its position in the prompt.
    pub position: usize,
    /// The prompt's token there.
    pub token: String,
    /// The edge to the top logit.
    pub effect: f32,
}

/// One prompt's graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphReport {
    /// The prompt.
    pub prompt: String,
    /// Its tokens.
    pub tokens: usize,
    /// The likeliest next token and its probability.
    pub top_logit: (String, f32),
    /// Features active on the prompt, and nodes in the graph (at most
    /// [`MAX_FEATURES`] features).
    pub active_features: usize,
    /// Nodes in the graph.
    pub nodes: usize,
    /// circuit-tracer's replacement score.
    pub replacement: f32,
    /// circuit-tracer's completeness score.
    pub completeness: f32,
    /// The eight features with the strongest direct effect on the top logit.
    pub strongest_inputs: Vec<LogitInput>,
}

/// The graph of `prompt` on `model` with `transcoders`, on the CPU engine.
pub fn report(
    model: &Model,
    tokenizer: &Tokenizer,
    transcoders: &[Dictionary],
    prompt: &str,
) -> Result<GraphReport> {
    let ids = tokenizer.encode_ids(prompt)?;
    let shared: Vec<Arc<Dictionary>> = transcoders.iter().cloned().map(Arc::new).collect();
    let circuit = |e: glassbox_circuits::CircuitError| BuildError::Checkpoint(e.to_string());
    let replacement = Replacement::trace(model, &shared, &ids).map_err(circuit)?;
    let options = AttributionOptions {
        max_feature_nodes: Some(MAX_FEATURES),
        ..AttributionOptions::default()
    };
    let graph = attribute(model, &replacement, &options).map_err(circuit)?;
    let scores = Influence::of(&graph).scores();
    let (top, top_logit) = graph
        .nodes
        .iter()
        .enumerate()
        .find_map(|(i, n)| match n.kind {
            NodeKind::Logit {
                token, probability, ..
            } => Some((
                i,
                (tokenizer.decode(&[token]).unwrap_or_default(), probability),
            )),
            _ => None,
        })
        .ok_or_else(|| BuildError::Checkpoint("a graph without a logit".to_owned()))?;
    let mut inputs: Vec<LogitInput> = graph
        .feature_edges_into(top)
        .map(|((layer, feature, position), effect)| LogitInput {
            feature: format!("{layer}_{feature}"),
            position,
            token: tokenizer
                .decode(&ids[position..=position])
                .unwrap_or_default(),
            effect,
        })
        .collect();
    inputs.sort_by(|a, b| b.effect.abs().total_cmp(&a.effect.abs()));
    inputs.truncate(8);
    Ok(GraphReport {
        prompt: prompt.to_owned(),
        tokens: ids.len(),
        top_logit,
        active_features: graph.active_features,
        nodes: graph.len(),
        replacement: scores.replacement,
        completeness: scores.completeness,
        strongest_inputs: inputs,
    })
}
