//! QK attribution: why a head looked where it did. The attention score of head `h` of
//! block `l` from a query position to a key position is `q · k / √d_head`, with `q` and
//! `k` affine in the residual stream at each position once LayerNorm's scale is frozen
//! there. The residual entering block `l` is a sum of parts: the token and position
//! embeddings, each earlier block's attention output, and each earlier block's MLP output
//! split by its transcoder into the active features' writes, the decoder bias and the
//! error. Each query-side part times each key-side part, plus the norm's bias and `b_Q`
//! (or `b_K`) as a part of its own on each side, gives one term; the terms sum to the
//! score exactly. GPT-2-style models (LayerNorm, biases); a model with rotary position
//! embeddings is refused.

use candle_core::{D, Tensor};
use glassbox_model::{HookPoint, Model, Norm};
use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};
use crate::lab::Lab;

/// One term of a score: a query-side part times a key-side part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QkTerm {
    /// The query-side part (see [`QkAttribution::query_parts`]).
    pub query: usize,
    /// The key-side part.
    pub key: usize,
    /// Its share of the score.
    pub value: f32,
}

/// A part of the residual stream at one position, and the score it accounts for with
/// every part of the other side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QkPart {
    /// What it is: `token embedding`, `position embedding`, `attention of block m`,
    /// `feature m/f`, `decoder bias of block m`, `error of block m`, or `bias` (the norm's
    /// bias through `W_Q`/`W_K`, plus `b_Q`/`b_K`).
    pub name: String,
    /// Its feature as `(block, feature)`, for a feature's write.
    pub feature: Option<(usize, usize)>,
    /// The sum of its terms.
    pub total: f32,
}

/// Head `head` of block `layer` on a prompt, from `query` to `key`, its score split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QkAttribution {
    /// Each token as text.
    pub tokens: Vec<String>,
    /// The block.
    pub layer: usize,
    /// The head.
    pub head: usize,
    /// The query position.
    pub query: usize,
    /// The key position.
    pub key: usize,
    /// The score the model computed (scaled, before the softmax).
    pub score: f32,
    /// The attention the head paid (after the softmax).
    pub attention: f32,
    /// The query-side parts, in the residual's order (embeddings, then block by block:
    /// attention, features, decoder bias, error), the bias last.
    pub query_parts: Vec<QkPart>,
    /// The key-side parts, in the same order.
    pub key_parts: Vec<QkPart>,
    /// The largest terms by size, at most [`QK_TERMS`].
    pub terms: Vec<QkTerm>,
    /// The sum of every term (equal to `score` but for rounding).
    pub sum: f32,
}

/// The most terms an attribution lists.
pub const QK_TERMS: usize = 40;

/// The parts of the residual entering a block at one position: names, features, vectors
/// as rows of `[parts, d]`.
struct Parts {
    names: Vec<String>,
    features: Vec<Option<(usize, usize)>>,
    rows: Tensor,
}

/// Refuses a head the model lacks, or a key after its query or past the prompt's `len`
/// tokens.
fn check_cell(
    n_layer: usize,
    n_head: usize,
    len: usize,
    (layer, head): (usize, usize),
    (query, key): (usize, usize),
) -> Result<()> {
    if layer >= n_layer || head >= n_head {
        return Err(LabError::Request(format!(
            "there is no head {layer}.{head}: the model has {n_layer} blocks of {n_head} heads"
        )));
    }
    if query >= len || key > query {
        return Err(LabError::Request(format!(
            "a query reads keys at or before it: query {query}, key {key}, of {len} tokens"
        )));
    }
    Ok(())
}

/// The [`QK_TERMS`] largest of `terms` (`[query part][key part]`) by size.
fn largest(terms: &[Vec<f32>]) -> Vec<QkTerm> {
    let mut listed: Vec<QkTerm> = terms
        .iter()
        .enumerate()
        .flat_map(|(i, row)| {
            row.iter().enumerate().map(move |(j, &value)| QkTerm {
                query: i,
                key: j,
                value,
            })
        })
        .collect();
    listed.sort_by(|a, b| b.value.abs().total_cmp(&a.value.abs()));
    listed.truncate(QK_TERMS);
    listed
}

impl Parts {
    /// The parts with the bias row after them, each with its total.
    fn named(self, totals: Vec<f32>) -> Vec<QkPart> {
        self.names
            .into_iter()
            .chain(std::iter::once("bias".to_owned()))
            .zip(self.features.into_iter().chain(std::iter::once(None)))
            .zip(totals)
            .map(|((name, feature), total)| QkPart {
                name,
                feature,
                total,
            })
            .collect()
    }
}

impl Lab {
    /// Head `head` of block `layer` on `text`, its score from position `query` to
    /// position `key` split into query-side × key-side terms that sum to it.
    pub async fn qk_attribution(
        &self,
        text: &str,
        layer: usize,
        head: usize,
        query: usize,
        key: usize,
    ) -> Result<QkAttribution> {
        let Model::Gpt2(model) = self.model() else {
            return Err(LabError::Request(
                "QK attribution is computed for GPT-2-style models; this one rotates its \
                 queries and keys by position"
                    .to_owned(),
            ));
        };
        let dims = self.model().dims();
        let ids = self.prompt_ids(text)?;
        check_cell(
            dims.n_layer,
            dims.n_head,
            ids.len(),
            (layer, head),
            (query, key),
        )?;
        self.transcoders()?;
        let mut points = vec![
            HookPoint::Embed,
            HookPoint::PosEmbed,
            HookPoint::LnScale(layer, Norm::Ln1),
            HookPoint::AttnScores(layer),
            HookPoint::Pattern(layer),
        ];
        for m in 0..layer {
            points.extend([
                HookPoint::AttnOut(m),
                HookPoint::MlpOut(m),
                HookPoint::LnNormalized(m, Norm::Ln2),
            ]);
        }
        let kept = self.activations(&ids, &points).await?;
        let at = |point: HookPoint| -> Result<&Tensor> {
            kept.get(&point)
                .ok_or_else(|| LabError::Request(format!("{point} was not kept")))
        };
        let cell = |point: HookPoint| -> Result<f32> {
            Ok(at(point)?
                .squeeze(0)?
                .get(head)?
                .get(query)?
                .get(key)?
                .to_scalar::<f32>()?)
        };
        let (score, attention) = (
            cell(HookPoint::AttnScores(layer))?,
            cell(HookPoint::Pattern(layer))?,
        );
        let weights = &model.weights().blocks[layer];
        let d = dims.d_model;
        let d_head = d / dims.n_head;
        let scale = at(HookPoint::LnScale(layer, Norm::Ln1))?.flatten_all()?;
        // Each side's projection of its parts: centred, over the frozen scale, through the
        // norm's gain and the head's slice of W_Q or W_K; then the bias row.
        let side = |position: usize, offset: usize| -> Result<(Parts, Tensor)> {
            let parts = self.parts_at(&kept, layer, position)?;
            let w = weights
                .qkv_weight
                .narrow(1, offset + head * d_head, d_head)?;
            let b = weights.qkv_bias.narrow(0, offset + head * d_head, d_head)?;
            let sigma = f64::from(scale.get(position)?.to_scalar::<f32>()?);
            let centred = parts
                .rows
                .broadcast_sub(&parts.rows.mean_keepdim(D::Minus1)?)?;
            let normed = (centred / sigma)?.broadcast_mul(&weights.ln_1.weight)?;
            let projected = normed.matmul(&w)?;
            let bias = (weights.ln_1.bias.unsqueeze(0)?.matmul(&w)? + b.unsqueeze(0)?)?;
            Ok((parts, Tensor::cat(&[projected, bias], 0)?))
        };
        let (query_parts, q) = side(query, 0)?;
        let (key_parts, k) = side(key, d)?;
        let terms = (q.matmul(&k.t()?)? / (d_head as f64).sqrt())?;
        let terms: Vec<Vec<f32>> = terms.to_vec2()?;
        let row_totals: Vec<f32> = terms.iter().map(|row| row.iter().sum()).collect();
        let column_totals: Vec<f32> = (0..terms.first().map_or(0, Vec::len))
            .map(|j| terms.iter().map(|row| row[j]).sum())
            .collect();
        let sum = row_totals.iter().sum();
        Ok(QkAttribution {
            tokens: ids.iter().map(|&t| self.token_text(t)).collect(),
            layer,
            head,
            query,
            key,
            score,
            attention,
            query_parts: query_parts.named(row_totals),
            key_parts: key_parts.named(column_totals),
            terms: largest(&terms),
            sum,
        })
    }

    /// The parts of the residual entering block `layer` at `position`, from a run that
    /// kept the embeddings and each earlier block's attention output, MLP output and
    /// transcoder input.
    fn parts_at(
        &self,
        kept: &std::collections::BTreeMap<HookPoint, Tensor>,
        layer: usize,
        position: usize,
    ) -> Result<Parts> {
        let row = |point: HookPoint| -> Result<Tensor> {
            let tensor = kept
                .get(&point)
                .ok_or_else(|| LabError::Request(format!("{point} was not kept")))?;
            Ok(tensor.squeeze(0)?.get(position)?)
        };
        let mut names = vec![
            "token embedding".to_owned(),
            "position embedding".to_owned(),
        ];
        let mut features = vec![None, None];
        let mut rows = vec![row(HookPoint::Embed)?, row(HookPoint::PosEmbed)?];
        for m in 0..layer {
            names.push(format!("attention of block {m}"));
            features.push(None);
            rows.push(row(HookPoint::AttnOut(m))?);
            let transcoder = self.dictionary(m)?;
            let input = row(HookPoint::LnNormalized(m, Norm::Ln2))?.unsqueeze(0)?;
            let acts: Vec<f32> = transcoder.encode(&input)?.squeeze(0)?.to_vec1()?;
            let mut written = transcoder.b_dec.clone();
            for (f, &a) in acts.iter().enumerate().filter(|(_, a)| **a != 0.0) {
                let write = (transcoder.w_dec.get(f)? * f64::from(a))?;
                written = (written + &write)?;
                names.push(format!("feature {m}/{f}"));
                features.push(Some((m, f)));
                rows.push(write);
            }
            names.push(format!("decoder bias of block {m}"));
            features.push(None);
            rows.push(transcoder.b_dec.clone());
            names.push(format!("error of block {m}"));
            features.push(None);
            rows.push((row(HookPoint::MlpOut(m))? - written)?);
        }
        Ok(Parts {
            names,
            features,
            rows: Tensor::stack(&rows, 0)?,
        })
    }
}
