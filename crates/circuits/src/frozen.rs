//! What attribution reads of a model's weights, the same for every family: each block's
//! attention value path (its input norm, `W_V`, `W_O`, biases, heads), the norm before each
//! MLP, the final norm and the unembedding. A GPT-2 normalizes with LayerNorm (centred,
//! with biases); a Llama with `RMSNorm` (no centring, no biases) and shares each key and
//! value head among several query heads.

use candle_core::{D, Tensor};
use glassbox_model::Model;

use crate::error::Result;

/// A norm with its scale frozen: `(P x / s) ⊙ gain + bias`, `P` centring or not.
#[derive(Debug, Clone)]
pub struct FrozenNorm {
    /// `[d]`.
    pub gain: Tensor,
    /// `[d]`, if the norm has one.
    pub bias: Option<Tensor>,
    /// Whether it subtracts the mean first (LayerNorm) or not (`RMSNorm`).
    pub centred: bool,
}

impl FrozenNorm {
    /// `P x`: `x` less its mean over the last axis when the norm centres, else `x`.
    pub fn centre(&self, x: &Tensor) -> Result<Tensor> {
        Ok(if self.centred {
            x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?
        } else {
            x.clone()
        })
    }
}

/// One block's attention as its frozen value path sees it.
#[derive(Debug, Clone)]
pub struct AttentionWeights {
    /// The norm before attention.
    pub norm: FrozenNorm,
    /// `W_V` of every key/value head, `[d, kv_heads · d_head]`.
    pub w_v: Tensor,
    /// `W_O` of every query head, `[heads · d_head, d]`.
    pub w_o: Tensor,
    /// What the block adds at every position whatever its input once the pattern is
    /// frozen (the pattern's rows sum to one): `b_O` plus each head's value of the norm's
    /// bias and `b_V`, `[d]`.
    pub constant: Tensor,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (each shared by `heads / kv_heads` query heads).
    pub kv_heads: usize,
}

/// Everything attribution reads of the weights.
#[derive(Debug, Clone)]
pub struct FrozenWeights {
    /// Per block, attention.
    pub attention: Vec<AttentionWeights>,
    /// Per block, the norm before the MLP (its transcoder reads `ln2.hook_normalized`,
    /// the norm's input over its scale).
    pub mlp_norms: Vec<FrozenNorm>,
    /// The norm before the unembedding.
    pub final_norm: FrozenNorm,
    /// `[vocab, d]`.
    pub unembedding: Tensor,
}

impl FrozenWeights {
    /// The view of `model`'s weights.
    pub fn of(model: &Model) -> Result<Self> {
        match model {
            Model::Gpt2(m) => {
                let w = m.weights();
                let layer_norm = |ln: &glassbox_model::LayerNormWeights| FrozenNorm {
                    gain: ln.weight.clone(),
                    bias: Some(ln.bias.clone()),
                    centred: true,
                };
                let attention = (0..m.config().n_layer)
                    .map(|l| {
                        Ok(AttentionWeights {
                            norm: layer_norm(&w.blocks[l].ln_1),
                            w_v: crate::transpose::value_weight(m, l)?,
                            w_o: w.blocks[l].attn_out_weight.clone(),
                            constant: crate::transpose::attention_constant(m, l)?,
                            heads: m.config().n_head,
                            kv_heads: m.config().n_head,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Self {
                    attention,
                    mlp_norms: w.blocks.iter().map(|b| layer_norm(&b.ln_2)).collect(),
                    final_norm: layer_norm(&w.ln_final),
                    unembedding: w.unembedding().clone(),
                })
            }
            Model::Llama(m) => {
                let w = m.weights();
                let c = m.config();
                let rms = |gain: &Tensor| FrozenNorm {
                    gain: gain.clone(),
                    bias: None,
                    centred: false,
                };
                let attention = w
                    .blocks
                    .iter()
                    .map(|b| {
                        // b_O, plus b_V through each query head's W_O slice.
                        let mut constant = match &b.o.bias {
                            Some(bias) => bias.clone(),
                            None => Tensor::zeros(
                                c.d_model,
                                candle_core::DType::F32,
                                &candle_core::Device::Cpu,
                            )?,
                        };
                        if let Some(b_v) = &b.v.bias {
                            let group = c.n_head / c.n_kv_head;
                            let per_head: Vec<Tensor> = (0..c.n_head)
                                .map(|h| b_v.narrow(0, (h / group) * c.d_head, c.d_head))
                                .collect::<candle_core::Result<_>>()?;
                            let values = Tensor::cat(&per_head, 0)?;
                            constant = (constant
                                + values.unsqueeze(0)?.matmul(&b.o.weight)?.squeeze(0)?)?;
                        }
                        Ok(AttentionWeights {
                            norm: rms(&b.ln_1),
                            w_v: b.v.weight.clone(),
                            w_o: b.o.weight.clone(),
                            constant,
                            heads: c.n_head,
                            kv_heads: c.n_kv_head,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Self {
                    attention,
                    mlp_norms: w.blocks.iter().map(|b| rms(&b.ln_2)).collect(),
                    final_norm: rms(&w.ln_final),
                    unembedding: w.unembedding().clone(),
                })
            }
        }
    }

    /// Blocks.
    #[must_use]
    pub fn n_layer(&self) -> usize {
        self.attention.len()
    }
}
