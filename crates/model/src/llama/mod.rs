//! The Llama family (Touvron et al., 2023, "LLaMA"): token embeddings only (positions
//! enter through rotary embeddings of queries and keys), pre-`RMSNorm` blocks of causal
//! grouped-query attention and a gated `SiLU` MLP, a final `RMSNorm`, and an unembedding tied
//! to the embedding or not.
//!
//! Hooks are named and shaped as in TransformerLens's Llama: `ln*.hook_normalized` is
//! `x / scale` before the gain, `attn.hook_rot_q`/`hook_rot_k` follow the rotation, and
//! the MLP has `hook_pre` (the gate), `hook_pre_linear` (the up projection) and
//! `hook_post` (their product after the gate's activation).

mod config;
mod weights;

use candle_core::{D, Device, Tensor};

pub use config::LlamaConfig;
pub(crate) use config::rotary_dim;
pub use weights::{Linear, LlamaBlockWeights, LlamaWeights, RmsNormWeights, TensorSource};

use crate::attention::{KvCache, attend};
use crate::hooks::{HookPoint, Hooks, Norm};
use crate::ops::{activate, check_tokens, linear};
use crate::{Family, ModelError, Result};

/// A Llama-family model ready to run on the CPU.
#[derive(Debug, Clone)]
pub struct Llama {
    config: LlamaConfig,
    weights: LlamaWeights,
}

impl Llama {
    /// A model from its config and weights, which must agree.
    pub fn new(config: LlamaConfig, weights: LlamaWeights) -> Result<Self> {
        config.validate()?;
        if weights.blocks.len() != config.n_layer {
            return Err(ModelError::Weights(format!(
                "{} blocks of weights for a config with {} layers",
                weights.blocks.len(),
                config.n_layer
            )));
        }
        Ok(Self { config, weights })
    }

    /// Reads the config and weights of a Hugging Face checkpoint: `config.json` and its
    /// safetensors shards as `(file name, bytes)`.
    pub fn from_hf(config_json: &str, shards: &[(&str, &[u8])]) -> Result<Self> {
        let config = LlamaConfig::from_json(config_json)?;
        let source = crate::SafetensorsSource::new(shards)?;
        let weights = LlamaWeights::read(&source, &config)?;
        Self::new(config, weights)
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// The weights.
    #[must_use]
    pub fn weights(&self) -> &LlamaWeights {
        &self.weights
    }

    /// Logits `[batch, positions, vocab]` for a `[batch, positions]` tensor of u32 ids,
    /// after the positions already in `cache` (which it extends) when there is one.
    pub fn run(
        &self,
        tokens: &Tensor,
        cache: Option<&mut KvCache>,
        hooks: &mut Hooks,
    ) -> Result<Tensor> {
        let (x, offset) = self.blocks(tokens, cache, hooks)?;
        self.read_out_at(&x, offset, hooks)
    }

    /// The residual stream after the last block, `[batch, positions, d]`, not read out:
    /// for passes that only need activations (the final norm and unembedding are skipped).
    pub fn residual(&self, tokens: &Tensor, hooks: &mut Hooks) -> Result<Tensor> {
        Ok(self.blocks(tokens, None, hooks)?.0)
    }

    /// Every block on `tokens`: the residual stream after the last, and the offset of the
    /// first position.
    fn blocks(
        &self,
        tokens: &Tensor,
        mut cache: Option<&mut KvCache>,
        hooks: &mut Hooks,
    ) -> Result<(Tensor, usize)> {
        let c = &self.config;
        hooks.validate(c.n_layer, Family::Llama)?;
        let offset = cache.as_ref().map_or(0, |c| c.len());
        let (batch, len) = check_tokens(tokens, offset, c.n_positions, c.vocab_size)?;
        let embed = self
            .weights
            .token_embedding
            .index_select(&tokens.flatten_all()?, 0)?
            .reshape((batch, len, c.d_model))?;
        let mut x = hooks.at(HookPoint::Embed, embed, offset)?;
        let (cos, sin) = c.rope.tables(offset, len, &Device::Cpu)?;
        for (l, block) in self.weights.blocks.iter().enumerate() {
            x = self.block(
                l,
                block,
                x,
                offset,
                (&cos, &sin),
                cache.as_deref_mut(),
                hooks,
            )?;
        }
        if let Some(cache) = cache {
            cache.advance(offset, len);
        }
        Ok((x, offset))
    }

    /// The logits read off a residual stream `[batch, positions, d]`: the final `RMSNorm`
    /// and the unembedding (the logit lens on a block's output).
    pub fn read_out(&self, residual: &Tensor) -> Result<Tensor> {
        self.read_out_at(residual, 0, &mut Hooks::none())
    }

    fn read_out_at(&self, x: &Tensor, offset: usize, hooks: &mut Hooks) -> Result<Tensor> {
        let (batch, len, d) = x.dims3()?;
        let x = self.rms_norm(
            x,
            &self.weights.ln_final,
            (HookPoint::LnFinalScale, HookPoint::LnFinalNormalized),
            offset,
            hooks,
        )?;
        let logits = crate::few_rows::matmul_transposed(
            &x.reshape((batch * len, d))?,
            self.weights.unembedding(),
        )?;
        Ok(logits.reshape((batch, len, self.config.vocab_size))?)
    }

    #[allow(clippy::too_many_arguments, reason = "one block's inputs, named")]
    fn block(
        &self,
        l: usize,
        w: &LlamaBlockWeights,
        x: Tensor,
        offset: usize,
        rotation: (&Tensor, &Tensor),
        cache: Option<&mut KvCache>,
        hooks: &mut Hooks,
    ) -> Result<Tensor> {
        let resid_pre = hooks.at(HookPoint::ResidPre(l), x, offset)?;
        let ln1 = self.rms_norm(
            &resid_pre,
            &w.ln_1,
            (
                HookPoint::LnScale(l, Norm::Ln1),
                HookPoint::LnNormalized(l, Norm::Ln1),
            ),
            offset,
            hooks,
        )?;
        let attn_out = self.attention(l, w, &ln1, offset, rotation, cache, hooks)?;
        let attn_out = hooks.at(HookPoint::AttnOut(l), attn_out, offset)?;
        let resid_mid = hooks.at(HookPoint::ResidMid(l), (resid_pre + attn_out)?, offset)?;
        let ln2 = self.rms_norm(
            &resid_mid,
            &w.ln_2,
            (
                HookPoint::LnScale(l, Norm::Ln2),
                HookPoint::LnNormalized(l, Norm::Ln2),
            ),
            offset,
            hooks,
        )?;
        let gate = hooks.at(HookPoint::MlpPre(l), apply(&ln2, &w.gate)?, offset)?;
        let up = hooks.at(HookPoint::MlpPreLinear(l), apply(&ln2, &w.up)?, offset)?;
        let post = (activate(&gate, self.config.activation)? * up)?;
        let post = hooks.at(HookPoint::MlpPost(l), post, offset)?;
        let mlp_out = hooks.at(HookPoint::MlpOut(l), apply(&post, &w.down)?, offset)?;
        hooks.at(HookPoint::ResidPost(l), (resid_mid + mlp_out)?, offset)
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "one attention layer's inputs, named"
    )]
    fn attention(
        &self,
        l: usize,
        w: &LlamaBlockWeights,
        x: &Tensor,
        offset: usize,
        (cos, sin): (&Tensor, &Tensor),
        cache: Option<&mut KvCache>,
        hooks: &mut Hooks,
    ) -> Result<Tensor> {
        let c = &self.config;
        let (batch, len, _) = x.dims3()?;
        let heads = |t: Tensor, n: usize| t.reshape((batch, len, n, c.d_head));
        let q = hooks.at(HookPoint::Q(l), heads(apply(x, &w.q)?, c.n_head)?, offset)?;
        let k = hooks.at(
            HookPoint::K(l),
            heads(apply(x, &w.k)?, c.n_kv_head)?,
            offset,
        )?;
        let v = hooks.at(
            HookPoint::V(l),
            heads(apply(x, &w.v)?, c.n_kv_head)?,
            offset,
        )?;
        let q = hooks.at(HookPoint::RotQ(l), c.rope.apply(&q, cos, sin)?, offset)?;
        let k = hooks.at(HookPoint::RotK(l), c.rope.apply(&k, cos, sin)?, offset)?;
        let (k, v) = match cache {
            Some(cache) => cache.extend(l, c.n_layer, k, v)?,
            None => (k, v),
        };
        let z = attend(l, &q, &k, &v, offset, hooks)?;
        apply(&z.reshape((batch, len, c.n_head * c.d_head))?, &w.o)
    }

    /// `RMSNorm` as TransformerLens hooks it: `scale = sqrt(mean(x²) + eps)` at
    /// `hook_scale`, `x / scale` at `hook_normalized`, then the gain.
    fn rms_norm(
        &self,
        x: &Tensor,
        gain: &Tensor,
        (scale_hook, normalized_hook): (HookPoint, HookPoint),
        offset: usize,
        hooks: &mut Hooks,
    ) -> Result<Tensor> {
        let mean_square = x.sqr()?.mean_keepdim(D::Minus1)?;
        let scale = (mean_square + self.config.rms_norm_eps)?.sqrt()?;
        let scale = hooks.at(scale_hook, scale, offset)?;
        let normalized = hooks.at(normalized_hook, x.broadcast_div(&scale)?, offset)?;
        Ok(normalized.broadcast_mul(gain)?)
    }
}

fn apply(x: &Tensor, layer: &Linear) -> Result<Tensor> {
    linear(x, &layer.weight, layer.bias.as_ref())
}
