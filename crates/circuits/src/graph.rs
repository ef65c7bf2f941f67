//! An attribution graph: its nodes and the direct effects between them.

use serde::{Deserialize, Serialize};

/// What a node stands for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum NodeKind {
    /// A transcoder feature active at a position.
    Feature {
        /// The block whose MLP it replaces.
        layer: usize,
        /// The token position.
        position: usize,
        /// The feature's index.
        feature: usize,
    },
    /// What block `layer`'s transcoder leaves unexplained at a position.
    Error {
        /// The block.
        layer: usize,
        /// The token position.
        position: usize,
    },
    /// The token embedding at a position.
    Token {
        /// The token position.
        position: usize,
        /// The token id.
        token: u32,
    },
    /// The position embedding at a position.
    Position {
        /// The token position.
        position: usize,
    },
    /// A candidate next token after the last position (its mean-centred logit); with
    /// `versus`, its logit minus that token's (a contrastive target: why this token
    /// rather than that one).
    Logit {
        /// The token id.
        token: u32,
        /// Its probability.
        probability: f32,
        /// The token whose logit is subtracted, for a logit difference.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        versus: Option<u32>,
    },
}

impl NodeKind {
    /// The token position it stands at; a logit's is `last`, the prompt's last.
    #[must_use]
    pub fn position(&self, last: usize) -> usize {
        match *self {
            Self::Feature { position, .. }
            | Self::Error { position, .. }
            | Self::Token { position, .. }
            | Self::Position { position } => position,
            Self::Logit { .. } => last,
        }
    }
}

/// One node with its activation (a feature's activation, an error's norm, 1 for an
/// embedding, the centred logit for a logit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// What it is.
    pub kind: NodeKind,
    /// Its activation.
    pub activation: f32,
}

/// Nodes and the direct effect of each on each.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    /// The prompt's token ids.
    pub tokens: Vec<u32>,
    /// Features first (by block, position, feature), then errors, token embeddings,
    /// position embeddings, and logits (most likely first).
    pub nodes: Vec<Node>,
    /// `adjacency[target * n + source]`: the source's direct effect on the target's
    /// pre-activation (a feature's encoder input, a logit); rows of sources that are not
    /// targets (errors, embeddings) are zero.
    pub adjacency: Vec<f32>,
    /// Per node, the part of its pre-activation that comes from biases, not from nodes.
    pub constants: Vec<f32>,
    /// Per node, its pre-activation in the real model (a target's edges plus its constant
    /// add up to it).
    pub pre_activations: Vec<f32>,
    /// Features active on the prompt; more than the graph's feature nodes when they were
    /// capped to the most influential (the others' edges are not in the graph).
    pub active_features: usize,
}

impl Graph {
    /// Nodes in the graph.
    #[must_use]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the graph has no nodes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The direct effect of node `source` on node `target`.
    #[must_use]
    pub fn edge(&self, source: usize, target: usize) -> f32 {
        self.adjacency[target * self.nodes.len() + source]
    }

    /// Feature nodes in the graph.
    #[must_use]
    pub fn feature_nodes(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| matches!(n.kind, NodeKind::Feature { .. }))
            .count()
    }

    /// Each feature node's direct edge into node `target`:
    /// `((layer, feature, position), effect)`, in node order.
    pub fn feature_edges_into(
        &self,
        target: usize,
    ) -> impl Iterator<Item = ((usize, usize, usize), f32)> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(move |(i, n)| match n.kind {
                NodeKind::Feature {
                    layer,
                    position,
                    feature,
                } => Some(((layer, feature, position), self.edge(i, target))),
                _ => None,
            })
    }

    /// Whether node `i` is a target (a feature or a logit), with edges into it.
    #[must_use]
    pub fn is_target(&self, i: usize) -> bool {
        matches!(
            self.nodes[i].kind,
            NodeKind::Feature { .. } | NodeKind::Logit { .. }
        )
    }
}
