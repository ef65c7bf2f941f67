//! Why an edge crosses positions: which attention heads carry it. With patterns and norm
//! scales frozen, a node's write at position `k` reaches a target at a later position `q`
//! only through attention. The paths that make one hop, through head `h` of a block `b`
//! between the two, carry
//! `A_h(q, k) · direction_t · (((P write / s_k) ⊙ γ) W_V^{kv(h)} W_O^h)`
//! each (the notation of [`crate::transpose`]); the rest of the edge takes two hops or
//! more (through `k` to `k`, or another position, first). Between adjacent blocks there is
//! only one hop to make, so the heads' parts sum to the edge.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{CircuitError, Result};
use crate::frozen::FrozenWeights;
use crate::graph::NodeKind;
use crate::replacement::Replacement;
use crate::setup::Target;

/// One head's one-hop part of an edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadRoute {
    /// The head's block.
    pub layer: usize,
    /// The head.
    pub head: usize,
    /// Its attention from the target's position to the source's.
    pub attention: f32,
    /// The part of the edge it carries in one hop.
    pub weight: f32,
}

/// What `kind` writes into the residual stream (its activation included), and the first
/// block whose attention reads it; refused for a logit, which writes nothing.
fn write_of(replacement: &Replacement, kind: &NodeKind) -> Result<(Tensor, usize)> {
    Ok(match *kind {
        NodeKind::Feature {
            layer,
            position,
            feature,
        } => {
            let activation = replacement.activations[layer]
                .get(position)?
                .get(feature)?
                .to_scalar::<f32>()?;
            let decoder = replacement.transcoders[layer].w_dec.get(feature)?;
            ((decoder * f64::from(activation))?, layer + 1)
        }
        NodeKind::Error { layer, position } => {
            (replacement.errors[layer].get(position)?, layer + 1)
        }
        NodeKind::Token { position, .. } => (replacement.token_embeddings.get(position)?, 0),
        NodeKind::Position { position } => {
            let embeddings = replacement.position_embeddings.as_ref().ok_or_else(|| {
                CircuitError::Request("this model adds no position embeddings".to_owned())
            })?;
            (embeddings.get(position)?, 0)
        }
        NodeKind::Logit { .. } => {
            return Err(CircuitError::Request(
                "a logit writes nothing for a head to carry".to_owned(),
            ));
        }
    })
}

/// Every head's one-hop part of the edge from `source` to `target` (`target_kind` at a
/// later position), largest first by size. Heads of blocks the path cannot pass (before
/// the source writes, after the target reads) carry nothing and are left out.
pub fn head_routes(
    weights: &FrozenWeights,
    replacement: &Replacement,
    source: &NodeKind,
    target_kind: &NodeKind,
    target: &Target,
) -> Result<Vec<HeadRoute>> {
    let last = replacement.len().saturating_sub(1);
    let (key, query) = (source.position(last), target_kind.position(last));
    if key >= query {
        return Err(CircuitError::Request(format!(
            "an edge crosses positions when its source stands before its target; this one \
             goes from token {key} to token {query}"
        )));
    }
    let (write, enters) = write_of(replacement, source)?;
    // A feature reads after its own block's attention; a logit after the last block.
    let through = target.layer.unwrap_or(weights.n_layer().saturating_sub(1));
    let direction = Tensor::new(target.direction.as_slice(), write.device())?;
    let mut routes = Vec::new();
    for layer in enters..=through {
        let w = &weights.attention[layer];
        let d_head = w.w_o.dim(0)? / w.heads;
        let group = w.heads / w.kv_heads.max(1);
        let scale = replacement.ln1_scales[layer].get(key)?.to_scalar::<f32>()?;
        let normed = (w.norm.centre(&write.unsqueeze(0)?)? / f64::from(scale))?
            .broadcast_mul(&w.norm.gain)?;
        let values = normed.matmul(&w.w_v)?;
        // What each head's output is read as by the target, per unit of attention.
        let read = w.w_o.matmul(&direction.unsqueeze(1)?)?.squeeze(1)?;
        let pattern = &replacement.patterns[layer];
        for head in 0..w.heads {
            let value = values
                .narrow(1, (head / group) * d_head, d_head)?
                .squeeze(0)?;
            let per_unit = (value * read.narrow(0, head * d_head, d_head)?)?
                .sum_all()?
                .to_scalar::<f32>()?;
            let attention = pattern
                .get(head)?
                .get(query)?
                .get(key)?
                .to_scalar::<f32>()?;
            routes.push(HeadRoute {
                layer,
                head,
                attention,
                weight: attention * per_unit,
            });
        }
    }
    routes.sort_by(|a, b| b.weight.abs().total_cmp(&a.weight.abs()));
    Ok(routes)
}
