//! Carrying targets back: a batch of targets that read the same block, each seeded with
//! its reading direction at its position, taken back through the frozen model (residual
//! connections and attention) block by block to the embeddings; at each block's output
//! every source written there (active features, the error) is read off against it.
//!
//! [`Carrier`] is what the attribution asks of an engine; [`CpuCarrier`] answers on the
//! CPU (candle-core). The GPU engine has its own.

use std::future::Future;

use candle_core::{D, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{CircuitError, Result};
use crate::frozen::FrozenWeights;
use crate::replacement::Replacement;
use crate::setup::{Sources, Target};
use crate::transpose::FrozenAttention;

/// One target's row: its direct effect from every source column, and what its
/// pre-activation gets from biases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Per source column (see [`Sources`]), the effect.
    pub effects: Vec<f32>,
    /// The target's own bias plus every bias its direction meets on the way back.
    pub constant: f32,
}

/// Computes the rows of a batch of targets that all read the same block (or are all
/// logits), sorted by position.
pub trait Carrier {
    /// The rows of `batch`, in its order.
    fn carry(&self, batch: &[&Target]) -> impl Future<Output = Result<Vec<Row>>>;

    /// How many batches it carries at once (more than one when it hands batches to other
    /// workers); the attribution keeps that many in flight.
    fn lanes(&self) -> usize {
        1
    }
}

/// A batch as every carrier takes it: the block its targets read (`None`: logits, which
/// read the last block's output) and how many positions to carry (up to its last target's:
/// attention is causal, nothing a target reads comes from later on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchShape {
    /// The block the targets read.
    pub layer: Option<usize>,
    /// Positions carried.
    pub span: usize,
}

impl BatchShape {
    /// The shape of `batch` over `sources` of a model with `n_layer` blocks; `None` for an
    /// empty batch, an error for targets of different blocks or outside the model or the
    /// prompt.
    pub fn of(batch: &[&Target], sources: &Sources, n_layer: usize) -> Result<Option<Self>> {
        let Some(first) = batch.first() else {
            return Ok(None);
        };
        if batch.iter().any(|t| t.layer != first.layer) {
            return Err(CircuitError::Request(
                "a batch of targets must read the same block".to_owned(),
            ));
        }
        if first.layer.is_some_and(|l| l >= n_layer)
            || batch.iter().any(|t| t.position >= sources.positions)
        {
            return Err(CircuitError::Request(
                "a target outside the model or the prompt".to_owned(),
            ));
        }
        Ok(Some(Self {
            layer: first.layer,
            span: batch.iter().map(|t| t.position).max().unwrap_or(0) + 1,
        }))
    }
}

/// The CPU engine's carrier.
#[derive(Debug)]
pub struct CpuCarrier<'a> {
    replacement: &'a Replacement,
    sources: &'a Sources,
    attention: Vec<FrozenAttention>,
}

impl<'a> CpuCarrier<'a> {
    /// A carrier for `replacement`'s prompt on a model with `weights`, over `sources`.
    pub fn new(
        weights: &FrozenWeights,
        replacement: &'a Replacement,
        sources: &'a Sources,
    ) -> Result<Self> {
        let attention = weights
            .attention
            .iter()
            .enumerate()
            .map(|(l, w)| FrozenAttention::new(w, replacement, l))
            .collect();
        Ok(Self {
            replacement,
            sources,
            attention,
        })
    }

    fn carry_now(&self, batch: &[&Target]) -> Result<Vec<Row>> {
        let n_layer = self.attention.len();
        let d = self.replacement.token_embeddings.dim(1)?;
        let Some(BatchShape { layer, span }) = BatchShape::of(batch, self.sources, n_layer)? else {
            return Ok(Vec::new());
        };
        let count = batch.len();
        let columns = self.sources.columns();
        let mut rows: Vec<Row> = batch
            .iter()
            .map(|t| Row {
                effects: vec![0.0; columns],
                constant: t.constant,
            })
            .collect();
        // Each target's direction at its position, zero elsewhere: [targets, span, d].
        let mut seed = vec![0.0_f32; count * span * d];
        for (i, t) in batch.iter().enumerate() {
            let at = (i * span + t.position) * d;
            seed[at..at + d].copy_from_slice(&t.direction);
        }
        let mut g = Tensor::from_vec(seed, (count, span, d), &Device::Cpu)?;
        let add_constant = |rows: &mut [Row], g: &Tensor, vector: &Tensor| -> Result<()> {
            // Σ_p g[t, p, :] · vector: each position's product, then their sum along the
            // last axis (candle sums a middle axis one value at a time: a sixth of an
            // attribution's time).
            let (count, span, d) = g.dims3()?;
            let per_target: Vec<f32> = g
                .reshape((count * span, d))?
                .matmul(&vector.unsqueeze(1)?)?
                .reshape((count, span))?
                .sum(1)?
                .to_vec1()?;
            for (row, v) in rows.iter_mut().zip(per_target) {
                row.constant += v;
            }
            Ok(())
        };
        let below = match layer {
            // A feature reads its block's residual stream after attention: through it first.
            Some(layer) => {
                add_constant(&mut rows, &g, self.attention[layer].constant())?;
                g = (&g + self.attention[layer].transpose(&g)?)?;
                layer
            }
            None => n_layer,
        };
        let by_position = |rows: &mut [Row], effects: Vec<Vec<f32>>, base: usize| {
            for (row, values) in rows.iter_mut().zip(effects) {
                row.effects[base..base + values.len()].copy_from_slice(&values);
            }
        };
        for l in (0..below).rev() {
            // g is now the gradient at block l's output, where its MLP's nodes write.
            for (p, at) in self.sources.active[l].iter().enumerate().take(span) {
                if at.columns.is_empty() {
                    continue;
                }
                let index = Tensor::new(at.features.as_slice(), &Device::Cpu)?;
                let decoders = self.replacement.transcoders[l]
                    .w_dec
                    .index_select(&index, 0)?;
                let at_p = g.narrow(1, p, 1)?.squeeze(1)?;
                let effects: Vec<Vec<f32>> = at_p.matmul(&decoders.t()?)?.to_vec2()?;
                for (row, values) in rows.iter_mut().zip(effects) {
                    for ((&column, &a), e) in at.columns.iter().zip(&at.activations).zip(values) {
                        row.effects[column] = e * a;
                    }
                }
            }
            let errors = self.replacement.errors[l].narrow(0, 0, span)?;
            let base = self.sources.error_base + l * self.sources.positions;
            by_position(&mut rows, read_off(&g, &errors)?, base);
            add_constant(&mut rows, &g, &self.replacement.transcoders[l].b_dec)?;
            add_constant(&mut rows, &g, self.attention[l].constant())?;
            g = (&g + self.attention[l].transpose(&g)?)?;
        }
        // g is now the gradient at the embeddings.
        let embeddings =
            std::iter::once((self.sources.token_base, &self.replacement.token_embeddings)).chain(
                self.replacement
                    .position_embeddings
                    .as_ref()
                    .map(|p| (self.sources.position_base, p)),
            );
        for (base, embeddings) in embeddings {
            let embeddings = embeddings.narrow(0, 0, span)?;
            by_position(&mut rows, read_off(&g, &embeddings)?, base);
        }
        Ok(rows)
    }
}

impl Carrier for CpuCarrier<'_> {
    fn carry(&self, batch: &[&Target]) -> impl Future<Output = Result<Vec<Row>>> {
        std::future::ready(self.carry_now(batch))
    }
}

/// `g[t, p, :] · vectors[p, :]` for every target and position: `[targets][positions]`.
fn read_off(g: &Tensor, vectors: &Tensor) -> Result<Vec<Vec<f32>>> {
    Ok(g.broadcast_mul(&vectors.unsqueeze(0)?)?
        .sum(D::Minus1)?
        .to_vec2()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(layer: Option<usize>, position: usize) -> Target {
        Target {
            layer,
            position,
            direction: Vec::new(),
            constant: 0.0,
            value: 0.0,
        }
    }

    #[test]
    fn a_batch_carries_up_to_its_last_position_and_reads_one_block() {
        let sources = Sources {
            active: Vec::new(),
            nodes: Vec::new(),
            error_base: 0,
            token_base: 0,
            position_base: 0,
            positions: 6,
        };
        let (a, b) = (target(Some(1), 2), target(Some(1), 4));
        assert_eq!(
            BatchShape::of(&[&a, &b], &sources, 2).ok().flatten(),
            Some(BatchShape {
                layer: Some(1),
                span: 5
            })
        );
        assert!(matches!(BatchShape::of(&[], &sources, 2), Ok(None)));
        let (logit, outside, beyond) = (target(None, 5), target(Some(1), 6), target(Some(2), 0));
        for bad in [vec![&a, &logit], vec![&outside], vec![&beyond]] {
            assert!(BatchShape::of(&bad, &sources, 2).is_err());
        }
    }
}
