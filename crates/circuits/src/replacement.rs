//! A prompt's local replacement model: what one forward pass of the real model fixes
//! (attention patterns, norm scales) and what the transcoders explain (their active
//! features) and do not (the error at each MLP).

use std::sync::Arc;

use candle_core::{D, Tensor};
use glassbox_dict::Dictionary;
use glassbox_model::{HookPoint, Hooks, Model, Norm};

use crate::error::{CircuitError, Result};

/// Everything the graph needs from one forward pass on the prompt.
#[derive(Debug, Clone)]
pub struct Replacement {
    /// The prompt's token ids.
    pub tokens: Vec<u32>,
    /// Per block, the attention pattern `[head, query, key]`.
    pub patterns: Vec<Tensor>,
    /// Per block, the scale of the norm before attention (`ln1.hook_scale`) at each
    /// position, `[positions]`.
    pub ln1_scales: Vec<Tensor>,
    /// Per block, the scale of the norm before the MLP at each position, `[positions]`.
    pub ln2_scales: Vec<Tensor>,
    /// The scale of the final norm at each position, `[positions]`.
    pub final_scale: Tensor,
    /// Per block, the transcoder's input (`ln2.hook_normalized`), `[positions, d]`.
    pub transcoder_inputs: Vec<Tensor>,
    /// Per block, each position's feature activations, `[positions, d_sae]`.
    pub activations: Vec<Tensor>,
    /// Per block, the MLP's output minus the transcoder's, `[positions, d]`.
    pub errors: Vec<Tensor>,
    /// The token embeddings, `[positions, d]`.
    pub token_embeddings: Tensor,
    /// The position embeddings, `[positions, d]`, for a model that adds them (GPT-2; a
    /// Llama rotates queries and keys instead).
    pub position_embeddings: Option<Tensor>,
    /// The last position's logits, `[vocab]`.
    pub last_logits: Tensor,
    /// The last position's final norm input over its scale (`ln_final.hook_normalized`),
    /// `[d]`.
    pub last_normalized: Tensor,
    /// The transcoders, one per block.
    pub transcoders: Vec<Arc<Dictionary>>,
}

impl Replacement {
    /// Runs `model` on `tokens` once and keeps what the replacement model freezes.
    /// `transcoders[l]` must read `blocks.l.ln2.hook_normalized` and predict
    /// `blocks.l.hook_mlp_out`.
    pub fn trace(model: &Model, transcoders: &[Arc<Dictionary>], tokens: &[u32]) -> Result<Self> {
        let dims = model.dims();
        let n_layer = dims.n_layer;
        if transcoders.len() != n_layer {
            return Err(CircuitError::Request(format!(
                "{} transcoders for a model of {n_layer} blocks; a graph needs one per block",
                transcoders.len()
            )));
        }
        let d = dims.d_model;
        for (l, t) in transcoders.iter().enumerate() {
            if t.config.d_in != d || t.config.d_out() != d {
                return Err(CircuitError::Request(format!(
                    "transcoder {l} maps {} to {} values; the model's residual stream is {d} wide",
                    t.config.d_in,
                    t.config.d_out()
                )));
            }
        }
        if tokens.is_empty() {
            return Err(CircuitError::Request("the prompt has no tokens".to_owned()));
        }
        let positional = HookPoint::PosEmbed.exists_in(dims.family);
        let mut hooks = Hooks::none()
            .cache(HookPoint::Embed)
            .cache(HookPoint::LnFinalScale)
            .cache(HookPoint::LnFinalNormalized);
        if positional {
            hooks = hooks.cache(HookPoint::PosEmbed);
        }
        for l in 0..n_layer {
            hooks = hooks
                .cache(HookPoint::Pattern(l))
                .cache(HookPoint::LnScale(l, Norm::Ln1))
                .cache(HookPoint::LnScale(l, Norm::Ln2))
                .cache(HookPoint::LnNormalized(l, Norm::Ln2))
                .cache(HookPoint::MlpOut(l));
        }
        let logits = model.forward_ids(tokens, &mut hooks)?;
        let cache = hooks.take_cache();
        // Every cached activation has a leading batch axis of 1.
        let take = |hook: HookPoint| -> Result<Tensor> {
            let t = cache
                .get(&hook)
                .ok_or_else(|| CircuitError::Request(format!("{hook} was not kept")))?;
            Ok(t.squeeze(0)?)
        };
        let scale = |hook: HookPoint| -> Result<Tensor> { Ok(take(hook)?.squeeze(D::Minus1)?) };
        let mut patterns = Vec::with_capacity(n_layer);
        let (mut ln1_scales, mut ln2_scales) = (Vec::new(), Vec::new());
        let (mut transcoder_inputs, mut activations, mut errors) =
            (Vec::new(), Vec::new(), Vec::new());
        for (l, transcoder) in transcoders.iter().enumerate() {
            patterns.push(take(HookPoint::Pattern(l))?);
            ln1_scales.push(scale(HookPoint::LnScale(l, Norm::Ln1))?);
            ln2_scales.push(scale(HookPoint::LnScale(l, Norm::Ln2))?);
            let input = take(HookPoint::LnNormalized(l, Norm::Ln2))?;
            let acts = transcoder.encode(&input)?;
            let predicted = transcoder.decode(&acts)?;
            errors.push((take(HookPoint::MlpOut(l))? - predicted)?);
            activations.push(acts);
            transcoder_inputs.push(input);
        }
        let last = tokens.len() - 1;
        Ok(Self {
            tokens: tokens.to_vec(),
            patterns,
            ln1_scales,
            ln2_scales,
            final_scale: scale(HookPoint::LnFinalScale)?,
            transcoder_inputs,
            activations,
            errors,
            token_embeddings: take(HookPoint::Embed)?,
            position_embeddings: if positional {
                Some(take(HookPoint::PosEmbed)?)
            } else {
                None
            },
            last_logits: logits.get(last)?,
            last_normalized: take(HookPoint::LnFinalNormalized)?.get(last)?,
            transcoders: transcoders.to_vec(),
        })
    }

    /// The replacement with the first position's features and errors set to zero, as
    /// circuit-tracer treats the BOS token it puts first: that position's MLP outputs
    /// become neither nodes nor edges (what they add downstream is left out of the
    /// graph, like a bias the graph does not show), its embeddings stay.
    pub fn leaving_out_first(mut self) -> Result<Self> {
        let zero_first = |x: &Tensor| -> Result<Tensor> {
            let positions = x.dim(0)?;
            let mask: Vec<f32> = (0..positions).map(|p| f32::from(u8::from(p > 0))).collect();
            let mask = Tensor::from_vec(mask, (positions, 1), x.device())?;
            Ok(x.broadcast_mul(&mask)?)
        };
        for l in 0..self.activations.len() {
            self.activations[l] = zero_first(&self.activations[l])?;
            self.errors[l] = zero_first(&self.errors[l])?;
        }
        Ok(self)
    }

    /// Positions in the prompt.
    #[must_use]
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the prompt is empty (never, for a traced one).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}
