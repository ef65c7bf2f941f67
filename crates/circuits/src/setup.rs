//! What an attribution starts from: every source a target's edges can come from (each
//! active feature, each error, each token and position embedding) in one column space,
//! the likeliest logits, and every target (features and logits) with the direction it
//! reads in the residual stream.

use candle_core::{D, Tensor};
use serde::{Deserialize, Serialize};

use crate::attribute::AttributionOptions;
use crate::error::{CircuitError, Result};
use crate::frozen::FrozenWeights;
use crate::graph::{Node, NodeKind};
use crate::replacement::Replacement;

/// The features active at one block and position.
#[derive(Debug, Clone, Default)]
pub struct ActiveAt {
    /// Their columns in the source space.
    pub columns: Vec<usize>,
    /// Their indices in the block's transcoder.
    pub features: Vec<u32>,
    /// Their activations.
    pub activations: Vec<f32>,
}

/// The source space: every node an edge can start from, one column each. Columns are
/// the active features (by block, position, feature), then the errors (by block, then
/// position), the token embeddings and the position embeddings (by position; none for a
/// model without them).
#[derive(Debug, Clone)]
pub struct Sources {
    /// Per block, per position: the active features.
    pub active: Vec<Vec<ActiveAt>>,
    /// Per column, the node it stands for.
    pub nodes: Vec<Node>,
    /// The first error column.
    pub error_base: usize,
    /// The first token-embedding column.
    pub token_base: usize,
    /// The first position-embedding column (the end of the columns when the model has
    /// no position embeddings).
    pub position_base: usize,
    /// Positions in the prompt.
    pub positions: usize,
}

impl Sources {
    /// The source space of `replacement`'s prompt: its active features, errors and
    /// embeddings.
    pub fn of(replacement: &Replacement) -> Result<Self> {
        sources(replacement)
    }

    /// Columns in the source space.
    #[must_use]
    pub fn columns(&self) -> usize {
        self.nodes.len()
    }

    /// Active features (the first columns).
    #[must_use]
    pub fn features(&self) -> usize {
        self.error_base
    }
}

/// One target: where it reads and what it reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// The block whose residual stream after attention it reads (a feature's encoder
    /// input), or `None` for a logit, which reads the last block's output.
    pub layer: Option<usize>,
    /// Its position.
    pub position: usize,
    /// Its reading direction in the residual stream, `[d]`.
    pub direction: Vec<f32>,
    /// Its own bias.
    pub constant: f32,
    /// Its pre-activation in the real model.
    pub value: f32,
}

/// A candidate next token: `(token, probability, centred logit)`.
pub(crate) type LogitChoice = (u32, f32, f32);

/// Everything an attribution starts from.
#[derive(Debug, Clone)]
pub struct Setup {
    /// The source space.
    pub sources: Sources,
    /// The logit nodes, likeliest first.
    pub logits: Vec<Node>,
    /// Per active feature (in column order), it as a target.
    pub feature_targets: Vec<Target>,
    /// Per logit node, it as a target.
    pub logit_targets: Vec<Target>,
}

impl Setup {
    /// The sources and targets of `replacement`'s prompt on a model with `weights`, with
    /// logit nodes for the likeliest tokens until `logit_probability` is covered, at most
    /// `max_logits`.
    pub fn new(
        weights: &FrozenWeights,
        replacement: &Replacement,
        logit_probability: f32,
        max_logits: usize,
    ) -> Result<Self> {
        let sources = sources(replacement)?;
        let feature_targets = feature_targets(weights, replacement, &sources.nodes)?;
        let chosen = likeliest(replacement, logit_probability, max_logits)?;
        let logit_targets = logit_targets(weights, replacement, &chosen)?;
        let logits = chosen
            .iter()
            .map(|&(token, probability, centred)| Node {
                kind: NodeKind::Logit {
                    token,
                    probability,
                    versus: None,
                },
                activation: centred,
            })
            .collect();
        Ok(Self {
            sources,
            logits,
            feature_targets,
            logit_targets,
        })
    }

    /// The setup `options` ask for: [`Self::new`], then [`Self::contrasting`] when they
    /// name a contrast.
    pub fn of(
        weights: &FrozenWeights,
        replacement: &Replacement,
        options: &AttributionOptions,
    ) -> Result<Self> {
        let setup = Self::new(
            weights,
            replacement,
            options.logit_probability,
            options.max_logits,
        )?;
        match options.contrast {
            Some((token, versus)) => setup.contrasting(weights, replacement, token, versus),
            None => Ok(setup),
        }
    }

    /// This setup with one logit node in place of the likeliest tokens: `token`'s logit
    /// minus `versus`'s. Its reading direction, constant and value are the differences
    /// of the two logits' (the mean-centring cancels), so each edge into it is the
    /// difference of the edges into the two logits.
    pub fn contrasting(
        mut self,
        weights: &FrozenWeights,
        replacement: &Replacement,
        token: u32,
        versus: u32,
    ) -> Result<Self> {
        let choices = every_choice(&replacement.last_logits.to_vec1()?);
        let vocab = choices.len();
        if token == versus || token as usize >= vocab || versus as usize >= vocab {
            return Err(CircuitError::Request(format!(
                "a logit difference needs two different tokens of the vocabulary (0 to {}), \
                 not {token} and {versus}",
                vocab - 1
            )));
        }
        let chosen = choices[token as usize];
        let pair = logit_targets(weights, replacement, &[chosen, choices[versus as usize]])?;
        let [a, b] = <[Target; 2]>::try_from(pair).map_err(|_| {
            CircuitError::Request("a logit difference needs two targets".to_owned())
        })?;
        let difference = Target {
            layer: None,
            position: a.position,
            direction: a
                .direction
                .iter()
                .zip(&b.direction)
                .map(|(x, y)| x - y)
                .collect(),
            constant: a.constant - b.constant,
            value: a.value - b.value,
        };
        self.logits = vec![Node {
            kind: NodeKind::Logit {
                token,
                probability: chosen.1,
                versus: Some(versus),
            },
            activation: difference.value,
        }];
        self.logit_targets = vec![difference];
        Ok(self)
    }

    /// The target `kind` is: an active feature or a logit node of this setup.
    #[must_use]
    pub fn target_of(&self, kind: &NodeKind) -> Option<&Target> {
        match kind {
            NodeKind::Feature { .. } => self.sources.nodes[..self.sources.features()]
                .iter()
                .position(|n| n.kind == *kind)
                .and_then(|i| self.feature_targets.get(i)),
            NodeKind::Logit { .. } => self
                .logits
                .iter()
                .position(|n| n.kind == *kind)
                .and_then(|i| self.logit_targets.get(i)),
            _ => None,
        }
    }
}

fn sources(replacement: &Replacement) -> Result<Sources> {
    let positions = replacement.len();
    let mut nodes = Vec::new();
    let mut active: Vec<Vec<ActiveAt>> = Vec::with_capacity(replacement.activations.len());
    for (l, acts) in replacement.activations.iter().enumerate() {
        let rows: Vec<Vec<f32>> = acts.to_vec2()?;
        let mut per_position = Vec::with_capacity(positions);
        for (p, row) in rows.iter().enumerate() {
            let mut at = ActiveAt::default();
            for (f, &a) in row.iter().enumerate() {
                if a > 0.0 {
                    at.columns.push(nodes.len());
                    at.features.push(f as u32);
                    at.activations.push(a);
                    nodes.push(Node {
                        kind: NodeKind::Feature {
                            layer: l,
                            position: p,
                            feature: f,
                        },
                        activation: a,
                    });
                }
            }
            per_position.push(at);
        }
        active.push(per_position);
    }
    let error_base = nodes.len();
    for (l, errors) in replacement.errors.iter().enumerate() {
        let norms: Vec<f32> = errors.sqr()?.sum(D::Minus1)?.sqrt()?.to_vec1()?;
        for (p, norm) in norms.into_iter().enumerate() {
            nodes.push(Node {
                kind: NodeKind::Error {
                    layer: l,
                    position: p,
                },
                activation: norm,
            });
        }
    }
    let token_base = nodes.len();
    for (p, &token) in replacement.tokens.iter().enumerate() {
        nodes.push(Node {
            kind: NodeKind::Token { position: p, token },
            activation: 1.0,
        });
    }
    let position_base = nodes.len();
    if replacement.position_embeddings.is_some() {
        for p in 0..positions {
            nodes.push(Node {
                kind: NodeKind::Position { position: p },
                activation: 1.0,
            });
        }
    }
    Ok(Sources {
        active,
        nodes,
        error_base,
        token_base,
        position_base,
        positions,
    })
}

/// Every token of the vocabulary as a next-token choice, in token order.
fn every_choice(logits: &[f32]) -> Vec<LogitChoice> {
    let largest = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let total: f32 = logits.iter().map(|l| (l - largest).exp()).sum();
    let mean = logits.iter().sum::<f32>() / logits.len() as f32;
    (0_u32..)
        .zip(logits)
        .map(|(token, l)| (token, (l - largest).exp() / total, l - mean))
        .collect()
}

/// The likeliest next tokens.
fn likeliest(
    replacement: &Replacement,
    logit_probability: f32,
    max_logits: usize,
) -> Result<Vec<LogitChoice>> {
    let logits: Vec<f32> = replacement.last_logits.to_vec1()?;
    let choices = every_choice(&logits);
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    let mut chosen = Vec::new();
    let mut covered = 0.0;
    for choice in order.into_iter().map(|i| choices[i]) {
        if chosen.len() == max_logits.max(1) || covered >= logit_probability {
            break;
        }
        covered += choice.1;
        chosen.push(choice);
    }
    Ok(chosen)
}

/// Each active feature as a target: its encoder direction through the frozen scale (and
/// centring, for LayerNorm) of the norm before its MLP (the transcoder reads
/// `ln2.hook_normalized`, before the gain).
fn feature_targets(
    weights: &FrozenWeights,
    replacement: &Replacement,
    nodes: &[Node],
) -> Result<Vec<Target>> {
    let mut targets = Vec::new();
    for n in nodes {
        let NodeKind::Feature {
            layer,
            position,
            feature,
        } = n.kind
        else {
            break;
        };
        let transcoder = &replacement.transcoders[layer];
        let w = transcoder.w_enc.narrow(1, feature, 1)?.squeeze(1)?;
        let mut bias = transcoder.b_enc.get(feature)?.to_scalar::<f32>()?;
        if transcoder.config.apply_b_dec_to_input {
            bias -= dot(&transcoder.b_dec, &w)?;
        }
        let scale = replacement.ln2_scales[layer]
            .get(position)?
            .to_scalar::<f32>()?;
        let direction = weights.mlp_norms[layer].centre(&(&w / f64::from(scale))?)?;
        let input = replacement.transcoder_inputs[layer].get(position)?;
        targets.push(Target {
            layer: Some(layer),
            position,
            direction: direction.to_vec1()?,
            constant: bias,
            value: dot(&input, &w)? + bias,
        });
    }
    Ok(targets)
}

/// Each chosen logit as a target: its mean-centred unembedding through the frozen final
/// norm.
fn logit_targets(
    weights: &FrozenWeights,
    replacement: &Replacement,
    logits: &[LogitChoice],
) -> Result<Vec<Target>> {
    let unembedding = &weights.unembedding;
    let mean = unembedding.mean(0)?;
    let norm = &weights.final_norm;
    let last = replacement.len() - 1;
    let scale = replacement.final_scale.get(last)?.to_scalar::<f32>()?;
    logits
        .iter()
        .map(|&(token, _, centred)| {
            let u = (unembedding.get(token as usize)? - &mean)?;
            Ok(Target {
                layer: None,
                position: last,
                direction: norm
                    .centre(&(norm.gain.mul(&u)? / f64::from(scale))?)?
                    .to_vec1()?,
                constant: match &norm.bias {
                    Some(bias) => dot(bias, &u)?,
                    None => 0.0,
                },
                value: centred,
            })
        })
        .collect()
}

fn dot(a: &Tensor, b: &Tensor) -> Result<f32> {
    Ok((a * b)?.sum_all()?.to_scalar::<f32>()?)
}
