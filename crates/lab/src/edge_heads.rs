//! An edge of a prompt's graph that crosses positions, split by the attention heads that
//! carry it in one hop (`glassbox_circuits::head_routes`): "which heads moved this from
//! that token to this one?", each head then open to QK attribution ("why did it look
//! there?").

use glassbox_circuits::{FrozenWeights, HeadRoute, NodeKind, Setup, head_routes, node_id};
use serde::{Deserialize, Serialize};

use crate::circuit::Contrast;
use crate::error::{LabError, Result};
use crate::lab::Lab;

/// The most heads an [`EdgeHeads`] lists.
pub const EDGE_HEADS: usize = 12;

/// An edge between two positions and the heads that carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeHeads {
    /// The source node's id (as in the graph file).
    pub source: String,
    /// The target node's id.
    pub target: String,
    /// The source's position (the heads' key).
    pub key: usize,
    /// The target's position (the heads' query).
    pub query: usize,
    /// The edge: the source's direct effect on the target.
    pub edge: f32,
    /// What every head carries in one hop, summed; the rest of the edge takes two hops
    /// or more.
    pub one_hop: f32,
    /// The heads carrying most, at most [`EDGE_HEADS`], largest first by size.
    pub heads: Vec<HeadRoute>,
}

impl Lab {
    /// The edge from node `source` to node `target` (ids as in the graph file) of
    /// `text`'s graph (for `contrast`, if any), split by the heads that carry it from the
    /// source's position to the target's. Refused: a node the graph lacks, a source that
    /// is not before its target, a target that is neither a feature nor a logit.
    pub async fn edge_heads(
        &self,
        text: &str,
        contrast: Option<&Contrast>,
        source: &str,
        target: &str,
    ) -> Result<EdgeHeads> {
        let (graph, _) = self.attributed(text, contrast).await?;
        let ids = self.circuit_ids(text)?;
        let n_layer = self.model().dims().n_layer;
        let last = ids.len().saturating_sub(1);
        let find = |id: &str| -> Result<usize> {
            graph
                .nodes
                .iter()
                .position(|n| node_id(&n.kind, n_layer, last) == id)
                .ok_or_else(|| {
                    LabError::Request(format!(
                        "{id:?} is not a node of this graph (not active there, or not among \
                         the most influential)"
                    ))
                })
        };
        let (s, t) = (find(source)?, find(target)?);
        let (source_kind, target_kind) = (&graph.nodes[s].kind, &graph.nodes[t].kind);
        if !matches!(
            target_kind,
            NodeKind::Feature { .. } | NodeKind::Logit { .. }
        ) {
            return Err(LabError::Request(format!(
                "{target:?} has no edges into it: a feature or a logit has"
            )));
        }
        let replacement = self.replacement(&ids)?;
        let weights = FrozenWeights::of(self.model())?;
        let options = self.attribution_options(&replacement, contrast)?;
        let setup = Setup::of(&weights, &replacement, &options)?;
        let reads = setup.target_of(target_kind).ok_or_else(|| {
            LabError::Request(format!("{target:?} is not among this graph's targets"))
        })?;
        let mut heads = head_routes(&weights, &replacement, source_kind, target_kind, reads)?;
        let one_hop = heads.iter().map(|h| h.weight).sum();
        heads.truncate(EDGE_HEADS);
        Ok(EdgeHeads {
            source: source.to_owned(),
            target: target.to_owned(),
            key: source_kind.position(last),
            query: target_kind.position(last),
            edge: graph.edge(s, t),
            one_hop,
            heads,
        })
    }
}
