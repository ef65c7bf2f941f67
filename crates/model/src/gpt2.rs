//! GPT-2 (Radford et al., 2019, "Language Models are Unsupervised Multitask Learners"):
//! learned position embeddings, pre-LayerNorm blocks of causal multi-head attention and a
//! GELU MLP, a final LayerNorm, and an unembedding tied to the token embedding.
//!
//! Every intermediate activation passes through a [`Hooks`] point named as in
//! TransformerLens, where it can be kept or changed.

use candle_core::{D, Device, Tensor};

use crate::attention::{KvCache, attend};
use crate::hooks::{HookPoint, Hooks, Norm};
use crate::ops::{activate, check_tokens, linear};
use crate::weights::{BlockWeights, Gpt2Weights, LayerNormWeights};
use crate::{Family, Gpt2Config, ModelError, Result};

/// A GPT-2-family model ready to run on the CPU.
#[derive(Debug, Clone)]
pub struct Gpt2 {
    config: Gpt2Config,
    weights: Gpt2Weights,
}

impl Gpt2 {
    /// Loads a model from a `config.json` and a `model.safetensors`, checking every shape.
    pub fn load(config_json: &str, safetensors: &[u8]) -> Result<Self> {
        let config = Gpt2Config::from_json(config_json)?;
        let weights = Gpt2Weights::from_safetensors(safetensors, &config)?;
        Ok(Self { config, weights })
    }

    /// A model from weights already in memory (e.g. while training), which must match
    /// `config`.
    pub fn new(config: Gpt2Config, weights: Gpt2Weights) -> Result<Self> {
        config.validate()?;
        if weights.blocks.len() != config.n_layer {
            return Err(ModelError::Weights(format!(
                "{} blocks of weights for a config with n_layer = {}",
                weights.blocks.len(),
                config.n_layer
            )));
        }
        Ok(Self { config, weights })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Gpt2Config {
        &self.config
    }

    /// The weights.
    #[must_use]
    pub fn weights(&self) -> &Gpt2Weights {
        &self.weights
    }

    /// Logits `[positions, vocab]` for one sequence of token ids.
    pub fn forward_ids(&self, ids: &[u32], hooks: &mut Hooks) -> Result<Tensor> {
        let tokens = Tensor::new(ids, &Device::Cpu)?.unsqueeze(0)?;
        Ok(self.forward(&tokens, hooks)?.squeeze(0)?)
    }

    /// Logits `[batch, positions, vocab]` for a `[batch, positions]` tensor of u32 ids.
    pub fn forward(&self, tokens: &Tensor, hooks: &mut Hooks) -> Result<Tensor> {
        self.run(tokens, None, hooks)
    }

    /// Like [`Self::forward`], for the positions after those already in `cache`, which it
    /// extends. Interventions see absolute positions.
    pub fn forward_cached(
        &self,
        tokens: &Tensor,
        cache: &mut KvCache,
        hooks: &mut Hooks,
    ) -> Result<Tensor> {
        self.run(tokens, Some(cache), hooks)
    }

    fn run(
        &self,
        tokens: &Tensor,
        cache: Option<&mut KvCache>,
        hooks: &mut Hooks,
    ) -> Result<Tensor> {
        let (x, offset) = self.blocks(tokens, cache, hooks)?;
        self.read_out_at(&x, offset, hooks)
    }

    /// The residual stream after the last block, `[batch, positions, d]`, not read out:
    /// for passes that only need activations (the final LayerNorm and unembedding are
    /// skipped).
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
        hooks.validate(self.config.n_layer, Family::Gpt2)?;
        let offset = cache.as_ref().map_or(0, |c| c.len());
        let (batch, len) = check_tokens(
            tokens,
            offset,
            self.config.n_positions,
            self.config.vocab_size,
        )?;
        let w = &self.weights;

        let embed = w.token_embedding.index_select(&tokens.flatten_all()?, 0)?;
        let embed = hooks.at(
            HookPoint::Embed,
            embed.reshape((batch, len, self.config.n_embd))?,
            offset,
        )?;
        let positions = w.position_embedding.narrow(0, offset, len)?.unsqueeze(0)?;
        let positions = hooks.at(HookPoint::PosEmbed, positions, offset)?;
        let mut x = embed.broadcast_add(&positions)?;

        for (l, block) in w.blocks.iter().enumerate() {
            x = self.block(l, block, x, offset, cache.as_deref_mut(), hooks)?;
        }
        if let Some(cache) = cache {
            cache.advance(offset, len);
        }
        Ok((x, offset))
    }

    /// The logits the model reads off a residual stream `[batch, positions, d]`: the
    /// final LayerNorm (its own scale) and the unembedding. On a block's output this is
    /// the logit lens.
    pub fn read_out(&self, residual: &Tensor) -> Result<Tensor> {
        self.read_out_at(residual, 0, &mut Hooks::none())
    }

    fn read_out_at(&self, x: &Tensor, offset: usize, hooks: &mut Hooks) -> Result<Tensor> {
        let (batch, len, _) = x.dims3()?;
        let w = &self.weights;
        let x = self.layer_norm(
            x,
            &w.ln_final,
            HookPoint::LnFinalScale,
            HookPoint::LnFinalNormalized,
            offset,
            hooks,
        )?;
        let logits = crate::few_rows::matmul_transposed(
            &x.reshape((batch * len, self.config.n_embd))?,
            w.unembedding(),
        )?;
        Ok(logits.reshape((batch, len, self.config.vocab_size))?)
    }

    fn block(
        &self,
        l: usize,
        w: &BlockWeights,
        x: Tensor,
        offset: usize,
        cache: Option<&mut KvCache>,
        hooks: &mut Hooks,
    ) -> Result<Tensor> {
        let resid_pre = hooks.at(HookPoint::ResidPre(l), x, offset)?;
        let ln1 = self.layer_norm(
            &resid_pre,
            &w.ln_1,
            HookPoint::LnScale(l, Norm::Ln1),
            HookPoint::LnNormalized(l, Norm::Ln1),
            offset,
            hooks,
        )?;
        let attn_out = self.attention(l, w, &ln1, offset, cache, hooks)?;
        let attn_out = hooks.at(HookPoint::AttnOut(l), attn_out, offset)?;
        let resid_mid = hooks.at(HookPoint::ResidMid(l), (resid_pre + attn_out)?, offset)?;
        let ln2 = self.layer_norm(
            &resid_mid,
            &w.ln_2,
            HookPoint::LnScale(l, Norm::Ln2),
            HookPoint::LnNormalized(l, Norm::Ln2),
            offset,
            hooks,
        )?;
        let pre = hooks.at(
            HookPoint::MlpPre(l),
            linear(&ln2, &w.mlp_in_weight, Some(&w.mlp_in_bias))?,
            offset,
        )?;
        let post = activate(&pre, self.config.activation_function)?;
        let post = hooks.at(HookPoint::MlpPost(l), post, offset)?;
        let mlp_out = hooks.at(
            HookPoint::MlpOut(l),
            linear(&post, &w.mlp_out_weight, Some(&w.mlp_out_bias))?,
            offset,
        )?;
        hooks.at(HookPoint::ResidPost(l), (resid_mid + mlp_out)?, offset)
    }

    fn attention(
        &self,
        l: usize,
        w: &BlockWeights,
        x: &Tensor,
        offset: usize,
        cache: Option<&mut KvCache>,
        hooks: &mut Hooks,
    ) -> Result<Tensor> {
        let (batch, len, d) = x.dims3()?;
        let heads = self.config.n_head;
        let d_head = self.config.d_head();
        let qkv = linear(x, &w.qkv_weight, Some(&w.qkv_bias))?;
        let split = |i: usize| -> Result<Tensor> {
            Ok(qkv
                .narrow(2, i * d, d)?
                .reshape((batch, len, heads, d_head))?)
        };
        let q = hooks.at(HookPoint::Q(l), split(0)?, offset)?;
        let k = hooks.at(HookPoint::K(l), split(1)?, offset)?;
        let v = hooks.at(HookPoint::V(l), split(2)?, offset)?;
        let (k, v) = match cache {
            Some(cache) => cache.extend(l, self.config.n_layer, k, v)?,
            None => (k, v),
        };
        let z = attend(l, &q, &k, &v, offset, hooks)?;
        linear(
            &z.reshape((batch, len, d))?,
            &w.attn_out_weight,
            Some(&w.attn_out_bias),
        )
    }

    fn layer_norm(
        &self,
        x: &Tensor,
        w: &LayerNormWeights,
        scale_hook: HookPoint,
        normalized_hook: HookPoint,
        offset: usize,
        hooks: &mut Hooks,
    ) -> Result<Tensor> {
        let epsilon = self.config.layer_norm_epsilon;
        if !(hooks.touches(scale_hook) || hooks.touches(normalized_hook))
            && let Some(y) = crate::layer_norm::layer_norm(x, &w.weight, &w.bias, epsilon)?
        {
            // The same numbers in one pass, without the scale and the normalized values as
            // tensors of their own.
            return Ok(y);
        }
        // The statistics of the one pass, so that both paths agree to the bit.
        let (centred, scale) =
            if let Some((mean, scale)) = crate::layer_norm::mean_and_scale(x, epsilon)? {
                (x.broadcast_sub(&mean)?, scale)
            } else {
                let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
                let variance = centred.sqr()?.mean_keepdim(D::Minus1)?;
                (centred, (variance + epsilon)?.sqrt()?)
            };
        let scale = hooks.at(scale_hook, scale, offset)?;
        let normalized = hooks.at(normalized_hook, centred.broadcast_div(&scale)?, offset)?;
        Ok(normalized
            .broadcast_mul(&w.weight)?
            .broadcast_add(&w.bias)?)
    }
}
