//! Generation on any engine: the same choices as every other (greedy, or seeded sampling
//! with temperature, top-k and top-p), one pass per token over the engine's KV cache,
//! reading only the logits the sampling can pick from.

use glassbox_model::Hooks;
use glassbox_model::rng::SplitMix64;
use glassbox_model::sampling::{Generation, Sampling, StopReason, choose};

use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::request::{Logits, LogitsRead, PassRequest, Steering};

/// Continues `prompt` with `steering` applied at every step. The interventions in `hooks`
/// apply at every step, at absolute positions; what it keeps grows by a position a step.
pub async fn generate<E: Engine>(
    engine: &E,
    prompt: &[u32],
    sampling: &Sampling,
    steering: &[Steering],
    hooks: &mut Hooks,
) -> Result<Generation> {
    sampling.validate()?;
    let context = engine.dims().n_positions;
    if prompt.is_empty() {
        return Err(EngineError::Request("the prompt has no tokens".to_owned()));
    }
    if prompt.len() > context {
        return Err(EngineError::Request(format!(
            "the prompt has {} tokens, more than the model's context of {context}",
            prompt.len()
        )));
    }
    // Only the top k can be chosen (the top 1 when greedy): the rest is not read.
    let read = if sampling.temperature == 0.0 {
        LogitsRead::LastTop(1)
    } else if let Some(k) = sampling.top_k {
        LogitsRead::LastTop(k)
    } else {
        LogitsRead::Last
    };
    let request = PassRequest {
        steering: steering.to_vec(),
        ..PassRequest::logits(read)
    };
    let vocab = engine.dims().vocab_size;
    let mut rng = SplitMix64::new(sampling.seed);
    let mut cache = engine.new_cache();
    let mut tokens = Vec::new();
    let mut input = prompt.to_vec();
    loop {
        if tokens.len() == sampling.max_new_tokens {
            return Ok(Generation {
                tokens,
                stop: StopReason::MaxTokens,
            });
        }
        if engine.cached_len(&cache) + input.len() > context {
            return Ok(Generation {
                tokens,
                stop: StopReason::ContextFull,
            });
        }
        let output = engine
            .pass(&input, &request, hooks, Some(&mut cache))
            .await?;
        let last = match output.logits {
            Some(Logits::Rows { values, .. }) => values,
            // Only the top k can be chosen: the rest may as well be -inf.
            Some(Logits::Top(top)) => {
                let mut row = vec![f32::NEG_INFINITY; vocab];
                for (id, value) in top {
                    row[id as usize] = value;
                }
                row
            }
            None => return Err(EngineError::Failed("no logits came back".to_owned())),
        };
        let next = choose(&last, sampling, &mut rng);
        tokens.push(next);
        if sampling.stop_token == Some(next) {
            return Ok(Generation {
                tokens,
                stop: StopReason::StopToken,
            });
        }
        input = vec![next];
    }
}
