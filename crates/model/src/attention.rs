//! What every family's attention shares once its queries, keys and values are computed:
//! the key/value cache, scaled dot products under the causal mask, the softmax and the
//! weighted values, with their hooks. Grouped-query attention (fewer key/value heads
//! than query heads, each shared by a group of query heads) is the general case; GPT-2
//! is the case of groups of one.

use candle_core::{DType, Device, Tensor};

use crate::hooks::{HookPoint, Hooks};
use crate::many_rows::{Order, batched_matmul};
use crate::{ModelError, Result};

/// Keys and values of the positions seen so far, per block, so that generation computes
/// each new token's attention without recomputing the prompt.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    /// `[batch, positions, kv_head, d_head]` keys (after any rotation) and values per block.
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
}

impl KvCache {
    /// Positions held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been run yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Block `l`'s keys and values for every position so far: the cached ones followed by
    /// `k` and `v` (this pass's), which are kept for the next pass.
    pub(crate) fn extend(
        &mut self,
        l: usize,
        n_layer: usize,
        k: Tensor,
        v: Tensor,
    ) -> Result<(Tensor, Tensor)> {
        if self.layers.len() < n_layer {
            self.layers.resize(n_layer, None);
        }
        let slot = &mut self.layers[l];
        let (k, v) = match slot.as_ref() {
            Some((past_k, past_v)) => (
                Tensor::cat(&[past_k, &k], 1)?,
                Tensor::cat(&[past_v, &v], 1)?,
            ),
            None => (k, v),
        };
        *slot = Some((k.clone(), v.clone()));
        Ok((k, v))
    }

    /// Records that a pass of `len` positions from `offset` has run.
    pub(crate) fn advance(&mut self, offset: usize, len: usize) {
        self.len = offset + len;
    }
}

/// Block `l`'s attention from queries `[batch, len, head, d_head]` (positions from
/// `offset`) to keys and values `[batch, keys, kv_head, d_head]` (every position so far):
/// `hook_attn_scores`, `hook_pattern` and `hook_z`, returning `z` as `[batch, len, head,
/// d_head]`.
pub(crate) fn attend(
    l: usize,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    offset: usize,
    hooks: &mut Hooks,
) -> Result<Tensor> {
    let (batch, len, heads, d_head) = q.dims4()?;
    let (_, keys, kv_heads, _) = k.dims4()?;
    if kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
        return Err(ModelError::Input(format!(
            "{kv_heads} key/value heads cannot serve {heads} query heads"
        )));
    }
    // [batch, head, query, d_head] · [batch, head, d_head, key] → [batch, head, query, key]
    let q = q.transpose(1, 2)?.contiguous()?;
    let k = repeat_heads(&k.transpose(1, 2)?, heads / kv_heads)?;
    let v = repeat_heads(&v.transpose(1, 2)?, heads / kv_heads)?;
    let divisor = (d_head as f64).sqrt();
    let scale = (1.0 / divisor) as f32;
    let scores_kept = hooks.touches(HookPoint::AttnScores(l)) || q.dtype() != DType::F32;
    let z = if !scores_kept && !hooks.touches(HookPoint::Pattern(l)) {
        // Nothing kept between q and z: half the heads computed by a column helper where
        // one is installed.
        match crate::column_split::shared_heads(&q, &k, &v, offset, scale)? {
            Some(z) => z,
            None => attend_heads(&q, &k, &v, offset, scale)?,
        }
    } else {
        // gemm reads `k`'s rows as the product's columns, with no copy of kᵀ.
        let dots = per_head(&q, &k, Order::NByK)?;
        let pattern = if scores_kept {
            let scores = (dots / divisor)?;
            let scores = scores.broadcast_add(&causal_mask(offset, len, keys, q.device())?)?;
            let scores = hooks.at(HookPoint::AttnScores(l), scores, offset)?;
            crate::softmax::softmax_last(&scores)?
        } else {
            // The same numbers in one pass, without the scores as a tensor of their own.
            crate::softmax::causal_softmax(&dots, offset, scale)?
        };
        let pattern = hooks.at(HookPoint::Pattern(l), pattern, offset)?;
        per_head(&pattern, &v, Order::KByN)?
    };
    let z = z.transpose(1, 2)?.contiguous()?;
    debug_assert_eq!(z.dims(), [batch, len, heads, d_head]);
    hooks.at(HookPoint::Z(l), z, offset)
}

/// `z` (`[batch, head, query, d_head]`) of queries, keys and values laid out `[batch, head,
/// position, d_head]`, with nothing hooked between: the dot products, each times `scale`
/// and masked after its query (from position `offset`) in one pass with the softmax, then
/// the weighted values. Each head's `z` is the same whichever heads come with it.
pub(crate) fn attend_heads(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    offset: usize,
    scale: f32,
) -> Result<Tensor> {
    // gemm reads `k`'s rows as the product's columns, with no copy of kᵀ.
    let dots = per_head(q, k, Order::NByK)?;
    let pattern = crate::softmax::causal_softmax(&dots, offset, scale)?;
    per_head(&pattern, v, Order::KByN)
}

/// `a · b` (`[batch, head, m, k]` by `[batch, head, k, n]`, or by `[batch, head, n, k]`
/// read as its transpose for [`Order::NByK`]): each head's product a task of its own where
/// this build has the kernel for it, candle's matmul elsewhere.
fn per_head(a: &Tensor, b: &Tensor, order: Order) -> Result<Tensor> {
    let (batch, heads, m, k) = a.dims4()?;
    let (_, _, rows_b, columns_b) = b.dims4()?;
    let n = match order {
        Order::KByN => columns_b,
        Order::NByK => rows_b,
    };
    let flat = |x: &Tensor, rows, columns| x.reshape((batch * heads, rows, columns));
    match batched_matmul(&flat(a, m, k)?, &flat(b, rows_b, columns_b)?, order)? {
        Some(product) => Ok(product.reshape((batch, heads, m, n))?),
        None => Ok(match order {
            Order::KByN => a.matmul(b)?,
            Order::NByK => a.matmul(&b.t()?)?,
        }),
    }
}

/// `[batch, kv_head, pos, d]` → `[batch, kv_head · group, pos, d]`, each key/value head
/// repeated for the `group` query heads that share it (heads `g·group .. (g+1)·group`).
fn repeat_heads(x: &Tensor, group: usize) -> Result<Tensor> {
    if group == 1 {
        return Ok(x.contiguous()?);
    }
    let (batch, kv_heads, pos, d) = x.dims4()?;
    Ok(x.unsqueeze(2)?
        .broadcast_as((batch, kv_heads, group, pos, d))?
        .reshape((batch, kv_heads * group, pos, d))?)
}

/// `[query, key]`: 0 where query position `offset + i` may see key `j` (`j ≤ offset + i`),
/// −∞ elsewhere.
pub(crate) fn causal_mask(
    offset: usize,
    queries: usize,
    keys: usize,
    device: &Device,
) -> Result<Tensor> {
    let mask: Vec<f32> = (0..queries)
        .flat_map(|i| {
            (0..keys).map(move |j| {
                if j <= offset + i {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            })
        })
        .collect();
    Ok(Tensor::from_vec(mask, (queries, keys), device)?)
}
