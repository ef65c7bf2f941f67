//! The frozen attention of one block as a linear map on the residual stream, and the
//! transpose of that map, which carries a target's gradient from a block's output back to
//! its input (what autograd would do, written out so the browser needs no autograd).
//!
//! With the pattern `A_h` and the `ln_1` scale `s` frozen, attention adds to position `q`
//! `Σ_h Σ_k A_h(q, k) · ((P x_k / s_k) ⊙ γ) W_V^h W_O^h` plus a constant, where `P`
//! subtracts the mean. Its transpose sends a gradient `g_q` to
//! `Σ_h Σ_q A_h(q, k) · P ((g_q W_O^hᵀ W_V^hᵀ) ⊙ γ) / s_k` at position `k`.

use candle_core::{D, Tensor};
use glassbox_model::Gpt2;

use crate::error::Result;
use crate::replacement::Replacement;

/// One block's attention with its pattern and `ln_1` scale frozen.
#[derive(Debug, Clone)]
pub(crate) struct FrozenAttention {
    /// `[head, query, key]`.
    pattern: Tensor,
    /// `ln_1`'s gain, `[d]`.
    gain: Tensor,
    /// `ln_1`'s scale per position, `[positions]`.
    scale: Tensor,
    /// `W_V` of all heads, `[d, d]`.
    w_v: Tensor,
    /// `W_O` of all heads, `[d, d]`.
    w_o: Tensor,
    /// What the block adds at every position whatever the input: `b_O` plus each head's
    /// value of `ln_1`'s bias and `b_V` (the pattern's rows sum to one), `[d]`.
    pub(crate) constant: Tensor,
    heads: usize,
}

impl FrozenAttention {
    pub(crate) fn new(model: &Gpt2, replacement: &Replacement, layer: usize) -> Result<Self> {
        let block = &model.weights().blocks[layer];
        let w_v = value_weight(model, layer)?;
        let w_o = block.attn_out_weight.clone();
        let constant = attention_constant(model, layer)?;
        Ok(Self {
            pattern: replacement.patterns[layer].clone(),
            gain: block.ln_1.weight.clone(),
            scale: replacement.ln1_scales[layer].clone(),
            w_v,
            w_o,
            constant,
            heads: model.config().n_head,
        })
    }

    /// The gradient at the block's input, through attention only, of gradients `g`
    /// `[targets, positions, d]` at its output. `g` may cover only the first positions of
    /// the prompt (attention is causal: nothing there reads a later position).
    pub(crate) fn transpose(&self, g: &Tensor) -> Result<Tensor> {
        let (targets, positions, d) = g.dims3()?;
        let d_head = d / self.heads;
        let pattern = self
            .pattern
            .narrow(1, 0, positions)?
            .narrow(2, 0, positions)?;
        // Back through W_O: each head's slice of the concatenated values.
        let z = g.broadcast_matmul(&self.w_o.t()?)?;
        let mut moved = Vec::with_capacity(self.heads);
        for h in 0..self.heads {
            let z_h = z.narrow(2, h * d_head, d_head)?.contiguous()?;
            // Σ_q A_h(q, k) z_h[q]: the pattern transposed, [key, query].
            let a_t = pattern.get(h)?.t()?.contiguous()?;
            moved.push(a_t.broadcast_matmul(&z_h)?);
        }
        let values = Tensor::cat(&moved, 2)?;
        let x = values.broadcast_matmul(&self.w_v.t()?)?;
        let x = x.broadcast_mul(&self.gain)?;
        let x = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
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
