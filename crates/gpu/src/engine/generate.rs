//! Generation on the GPU: the same choices as `glassbox_model::generate` (greedy, or
//! seeded sampling with temperature, top-k and top-p), one pass and one small readback
//! per token over a device KV cache.

use glassbox_model::Hooks;
use glassbox_model::generate::{Generation, Sampling, StopReason, choose};
use glassbox_model::rng::SplitMix64;

use super::GpuModel;
use super::request::{Logits, LogitsRead, PassRequest, Steering};
use crate::GpuError;

/// Generation with steering, as [`GpuModel::generate`] runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuGeneration {
    /// How each next token is chosen.
    pub sampling: Sampling,
    /// Steering applied at every step.
    pub steering: Vec<Steering>,
}

impl GpuModel {
    /// Continues `prompt` as `glassbox_model::generate::generate` does, reading back only
    /// the logits the sampling can pick from (the top k, or the whole last row when no
    /// top-k limit is set and the temperature is not 0).
    pub async fn generate(
        &self,
        prompt: &[u32],
        settings: &GpuGeneration,
        hooks: &mut Hooks,
    ) -> Result<Generation, GpuError> {
        let sampling = &settings.sampling;
        let context = self.config.n_positions;
        if prompt.is_empty() {
            return Err(GpuError::Shape("the prompt has no tokens".to_owned()));
        }
        if prompt.len() > context {
            return Err(GpuError::Shape(format!(
                "the prompt has {} tokens, more than the model's context of {context}",
                prompt.len()
            )));
        }
        let read = if sampling.temperature == 0.0 {
            LogitsRead::LastTop(1)
        } else if let Some(k) = sampling.top_k {
            LogitsRead::LastTop(k)
        } else {
            LogitsRead::Last
        };
        let request = PassRequest {
            logits: read,
            features: Vec::new(),
            columns: Vec::new(),
            steering: settings.steering.clone(),
        };
        let mut rng = SplitMix64::new(sampling.seed);
        let mut cache = self.kv_cache();
        let mut tokens = Vec::new();
        let mut input = prompt.to_vec();
        let vocab = self.config.vocab_size;
        loop {
            if tokens.len() == sampling.max_new_tokens {
                return Ok(Generation {
                    tokens,
                    stop: StopReason::MaxTokens,
                });
            }
            if cache.len() + input.len() > context {
                return Ok(Generation {
                    tokens,
                    stop: StopReason::ContextFull,
                });
            }
            let output = self
                .pass_cached(&input, &request, hooks, &mut cache)
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
                None => return Err(GpuError::Readback("no logits came back".to_owned())),
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
}
