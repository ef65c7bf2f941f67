//! What a worker helping another with a graph answers: the rows of a batch of targets
//! over a prompt, carried on the CPU engine, the prompt traced as the graph traces it
//! ([`Lab::attribute_spread`] hands the batches out). The prompt's trace is kept for the
//! batches that follow.

use std::sync::{Arc, Mutex, OnceLock};

use glassbox_circuits::{Carrier, CpuCarrier, FrozenWeights, Replacement, Row, Sources, Target};
use glassbox_engine::lock;

use crate::circuit::MAX_CIRCUIT_TOKENS;
use crate::error::{LabError, Result};
use crate::lab::Lab;

/// A prompt traced for carrying: its ids, replacement and source space.
#[derive(Debug)]
struct Traced {
    ids: Vec<u32>,
    replacement: Replacement,
    sources: Sources,
}

/// What [`Lab::carry_rows`] keeps: the model's frozen weights (the same for every
/// prompt) and the last prompt traced.
#[derive(Debug, Default)]
pub(crate) struct RowsMemo {
    weights: OnceLock<FrozenWeights>,
    last: Mutex<Option<Arc<Traced>>>,
}

impl Lab {
    /// The rows of `targets` (all reading one block, or all logits) over the prompt `ids`,
    /// carried on the CPU engine: the same rows the graph of `ids` gets on this worker.
    pub async fn carry_rows(&self, ids: &[u32], targets: &[Target]) -> Result<Vec<Row>> {
        let traced = self.traced(ids)?;
        let d = traced.replacement.token_embeddings.dim(1)?;
        if let Some(target) = targets.iter().find(|t| t.direction.len() != d) {
            return Err(LabError::Request(format!(
                "a target reads a direction of {} numbers; the model's residual stream has {d}",
                target.direction.len()
            )));
        }
        let carrier =
            CpuCarrier::new(self.frozen_weights()?, &traced.replacement, &traced.sources)?;
        let batch: Vec<&Target> = targets.iter().collect();
        Ok(carrier.carry(&batch).await?)
    }

    /// The model's frozen weights, made once.
    fn frozen_weights(&self) -> Result<&FrozenWeights> {
        if self.rows.weights.get().is_none() {
            let _ = self.rows.weights.set(FrozenWeights::of(self.model())?);
        }
        self.rows
            .weights
            .get()
            .ok_or_else(|| LabError::Request("the model's frozen weights were not kept".to_owned()))
    }

    /// `ids` traced, from the memo when it was the last prompt.
    fn traced(&self, ids: &[u32]) -> Result<Arc<Traced>> {
        if let Some(last) = lock(&self.rows.last).as_ref().filter(|t| t.ids == ids) {
            return Ok(Arc::clone(last));
        }
        if ids.is_empty() || ids.len() > MAX_CIRCUIT_TOKENS {
            return Err(LabError::Request(format!(
                "a graph's prompt is 1 to {MAX_CIRCUIT_TOKENS} tokens, not {}",
                ids.len()
            )));
        }
        let replacement = self.replacement(ids)?;
        let traced = Arc::new(Traced {
            ids: ids.to_vec(),
            sources: Sources::of(&replacement)?,
            replacement,
        });
        *lock(&self.rows.last) = Some(Arc::clone(&traced));
        Ok(traced)
    }
}
