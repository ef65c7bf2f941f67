//! The frozen attention of one block as a linear map on the residual stream, and the
//! transpose of that map, which carries a target's gradient from a block's output back to
//! its input (what autograd would do, written out so the browser needs no autograd).
//!
//! With the pattern `A_h` and the input norm's scale `s` frozen, attention adds to position
//! `q` `Σ_h Σ_k A_h(q, k) · ((P x_k / s_k) ⊙ γ) W_V^{kv(h)} W_O^h` plus a constant, where `P`
//! subtracts the mean (LayerNorm) or is the identity (`RMSNorm`) and `kv(h)` is the
//! key/value head query head `h` shares. Its transpose sends a gradient `g_q` to
//! `Σ_h Σ_q A_h(q, k) · P ((g_q W_O^hᵀ W_V^{kv(h)}ᵀ) ⊙ γ) / s_k` at position `k`.

use candle_core::Tensor;
use glassbox_model::Gpt2;

use crate::error::Result;
use crate::frozen::AttentionWeights;
use crate::replacement::Replacement;

/// One block's attention with its pattern and norm scale frozen.
#[derive(Debug, Clone)]
pub(crate) struct FrozenAttention {
    /// `[head, query, key]`.
    pattern: Tensor,
    /// The norm's scale per position, `[positions]`.
    scale: Tensor,
    weights: AttentionWeights,
}

impl FrozenAttention {
    pub(crate) fn new(weights: &AttentionWeights, replacement: &Replacement, layer: usize) -> Self {
        Self {
            pattern: replacement.patterns[layer].clone(),
            scale: replacement.ln1_scales[layer].clone(),
            weights: weights.clone(),
        }
    }

    /// What the block adds at every position whatever its input, `[d]`.
    pub(crate) fn constant(&self) -> &Tensor {
        &self.weights.constant
    }

    /// The gradient at the block's input, through attention only, of gradients `g`
    /// `[targets, positions, d]` at its output. `g` may cover only the first positions of
    /// the prompt (attention is causal: nothing there reads a later position). A key/value
    /// head shared by several query heads gathers what each of them sends back.
    pub(crate) fn transpose(&self, g: &Tensor) -> Result<Tensor> {
        let w = &self.weights;
        let (targets, positions, d) = g.dims3()?;
        let d_head = w.w_o.dim(0)? / w.heads;
        let group = w.heads / w.kv_heads.max(1);
        let pattern = self
            .pattern
            .narrow(1, 0, positions)?
            .narrow(2, 0, positions)?;
        // Back through W_O: each head's slice of the concatenated values.
        let z = g.broadcast_matmul(&w.w_o.t()?)?;
        let mut gathered: Vec<Option<Tensor>> = vec![None; w.kv_heads];
        for h in 0..w.heads {
            let z_h = z.narrow(2, h * d_head, d_head)?.contiguous()?;
            // Σ_q A_h(q, k) z_h[q]: the pattern transposed, [key, query].
            let a_t = pattern.get(h)?.t()?.contiguous()?;
            let moved = a_t.broadcast_matmul(&z_h)?;
            let kv = &mut gathered[h / group];
            *kv = Some(match kv.take() {
                Some(sum) => (sum + moved)?,
                None => moved,
            });
        }
        let values = gathered
            .into_iter()
            .map(|v| {
                v.ok_or_else(|| {
                    crate::error::CircuitError::Request(
                        "a key/value head no query head reads".to_owned(),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let values = Tensor::cat(&values, 2)?;
        let x = values.broadcast_matmul(&w.w_v.t()?)?;
        let x = w.norm.centre(&x.broadcast_mul(&w.norm.gain)?)?;
        let scale = self.scale.narrow(0, 0, positions)?;
        let x = x.broadcast_div(&scale.reshape((1, positions, 1))?)?;
        debug_assert_eq!(x.dims(), &[targets, positions, d]);
        Ok(x)
    }
}

/// Block `layer`'s `W_V` of all heads, `[d, d]`.
pub fn value_weight(model: &Gpt2, layer: usize) -> Result<Tensor> {
    let d = model.config().n_embd;
    let block = &model.weights().blocks[layer];
    Ok(block.qkv_weight.narrow(1, 2 * d, d)?.contiguous()?)
}

/// What block `layer`'s attention adds at every position when its pattern is frozen,
/// whatever the input: `b_O` plus each head's value of `ln_1`'s bias and `b_V` (the
/// pattern's rows sum to one), `[d]`.
pub fn attention_constant(model: &Gpt2, layer: usize) -> Result<Tensor> {
    let d = model.config().n_embd;
    let block = &model.weights().blocks[layer];
    let b_v = block.qkv_bias.narrow(0, 2 * d, d)?;
    let values = (block
        .ln_1
        .bias
        .unsqueeze(0)?
        .matmul(&value_weight(model, layer)?)?
        .squeeze(0)?
        + b_v)?;
    Ok((values
        .unsqueeze(0)?
        .matmul(&block.attn_out_weight)?
        .squeeze(0)?
        + &block.attn_out_bias)?)
}
