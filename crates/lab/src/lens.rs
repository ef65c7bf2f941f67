//! Two views of a prompt's forward pass: each block's attention patterns, head by head,
//! and the logit lens (the residual stream after the embeddings and after each block,
//! read off through the final LayerNorm and the unembedding).

use candle_core::{D, Tensor};
use glassbox_model::HookPoint;
use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};
use crate::head_scores::HeadScores;
use crate::lab::Lab;

/// One block's attention patterns on a prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttentionPatterns {
    /// Each token as text.
    pub tokens: Vec<String>,
    /// The block.
    pub layer: usize,
    /// Per head, `[query × tokens + key]`: how much the query attends to the key.
    pub heads: Vec<Vec<f32>>,
    /// Per head, what it does on this prompt in the field's head scores.
    pub scores: Vec<HeadScores>,
    /// The scores of a head attending evenly to every token it may read: chance level.
    pub chance: HeadScores,
}

/// What one stage of the residual stream predicts at one position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LensCell {
    /// The likeliest next tokens, `(text, probability)`, likeliest first.
    pub top: Vec<(String, f32)>,
    /// The token that comes next in the prompt: its probability and rank (0 is the
    /// likeliest); `None` at the last position.
    pub next: Option<(f32, usize)>,
}

/// The logit lens of a prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogitLens {
    /// Each token as text.
    pub tokens: Vec<String>,
    /// Each stage's name: the embeddings, then after each block (the last is the model's
    /// own prediction).
    pub stages: Vec<String>,
    /// `[stage][position]`.
    pub cells: Vec<Vec<LensCell>>,
}

impl Lab {
    /// Block `layer`'s attention patterns on `text`.
    pub async fn attention(&self, text: &str, layer: usize) -> Result<AttentionPatterns> {
        let n_layer = self.model().dims().n_layer;
        if layer >= n_layer {
            return Err(LabError::Request(format!(
                "there is no block {layer}: the model has {n_layer}"
            )));
        }
        let mut blocks = self.attention_of(text, &[layer]).await?;
        blocks
            .pop()
            .ok_or_else(|| LabError::Request(format!("block {layer} was not kept")))
    }

    /// Every block's attention patterns on `text`, from one forward pass.
    pub async fn attention_everywhere(&self, text: &str) -> Result<Vec<AttentionPatterns>> {
        let layers: Vec<usize> = (0..self.model().dims().n_layer).collect();
        self.attention_of(text, &layers).await
    }

    /// The attention patterns of blocks `layers` (each below the model's count) on
    /// `text`, from one forward pass.
    async fn attention_of(&self, text: &str, layers: &[usize]) -> Result<Vec<AttentionPatterns>> {
        let ids = self.prompt_ids(text)?;
        let hooks: Vec<HookPoint> = layers.iter().map(|&l| HookPoint::Pattern(l)).collect();
        let kept = self.activations(&ids, &hooks).await?;
        let tokens: Vec<String> = ids.iter().map(|&t| self.token_text(t)).collect();
        let chance = HeadScores::uniform(&ids);
        layers
            .iter()
            .zip(&hooks)
            .map(|(&layer, hook)| {
                let pattern = kept
                    .get(hook)
                    .ok_or_else(|| LabError::Request(format!("{hook} was not kept")))?
                    .squeeze(0)?;
                let heads: Vec<Vec<f32>> = pattern.flatten_from(1)?.to_vec2()?;
                Ok(AttentionPatterns {
                    tokens: tokens.clone(),
                    layer,
                    scores: heads.iter().map(|h| HeadScores::of(h, &ids)).collect(),
                    chance,
                    heads,
                })
            })
            .collect()
    }

    /// The logit lens of `text`, with the `top` likeliest tokens of each cell.
    pub async fn logit_lens(&self, text: &str, top: usize) -> Result<LogitLens> {
        let ids = self.prompt_ids(text)?;
        let n_layer = self.model().dims().n_layer;
        let mut points = vec![HookPoint::ResidPre(0)];
        points.extend((0..n_layer).map(HookPoint::ResidPost));
        let kept = self.activations(&ids, &points).await?;
        let mut stages = Vec::with_capacity(points.len());
        let mut cells = Vec::with_capacity(points.len());
        for (s, point) in points.iter().enumerate() {
            let residual = kept
                .get(point)
                .ok_or_else(|| LabError::Request(format!("{point} was not kept")))?;
            let logits = self.model().read_out(residual)?.squeeze(0)?;
            cells.push(self.lens_row(&logits, &ids, top)?);
            stages.push(if s == 0 {
                "embeddings".to_owned()
            } else {
                format!("after block {}", s - 1)
            });
        }
        Ok(LogitLens {
            tokens: ids.iter().map(|&t| self.token_text(t)).collect(),
            stages,
            cells,
        })
    }

    /// One stage's cells from its logits `[positions, vocab]`.
    fn lens_row(&self, logits: &Tensor, ids: &[u32], top: usize) -> Result<Vec<LensCell>> {
        let largest = logits.max_keepdim(D::Minus1)?;
        let exp = logits.broadcast_sub(&largest)?.exp()?;
        let probabilities = exp.broadcast_div(&exp.sum_keepdim(D::Minus1)?)?;
        let rows: Vec<Vec<f32>> = probabilities.to_vec2()?;
        Ok(rows
            .iter()
            .enumerate()
            .map(|(p, row)| {
                // The `top` likeliest, in order, without sorting the whole vocabulary.
                let likelier = |&a: &usize, &b: &usize| row[b].total_cmp(&row[a]).then(a.cmp(&b));
                let mut order: Vec<usize> = (0..row.len()).collect();
                let top = top.min(order.len());
                if top < order.len() {
                    order.select_nth_unstable_by(top, likelier);
                    order.truncate(top);
                }
                order.sort_by(likelier);
                let next = ids.get(p + 1).map(|&t| {
                    let q = row[t as usize];
                    (q, row.iter().filter(|&&x| x > q).count())
                });
                LensCell {
                    top: order
                        .iter()
                        .map(|&t| (self.token_text(t as u32), row[t]))
                        .collect(),
                    next,
                }
            })
            .collect())
    }
}
