//! The attribution graph of a prompt: every active feature, error, embedding and the
//! likeliest logits as nodes; as edges, each source's direct effect on each target
//! through the frozen replacement model, found by carrying each target's reading
//! direction back through the blocks (residual connections and frozen attention) in
//! batches, and reading off each source's write against it.

use candle_core::{D, Device, Tensor};
use glassbox_model::Gpt2;

use crate::error::{CircuitError, Result};
use crate::graph::{Graph, Node, NodeKind};
use crate::replacement::Replacement;
use crate::transpose::FrozenAttention;

/// How a graph is built.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttributionOptions {
    /// Logit nodes for the likeliest next tokens until their probabilities add up to this…
    pub logit_probability: f32,
    /// …but at most this many.
    pub max_logits: usize,
    /// Targets carried back together (memory: targets × positions × d floats).
    pub batch: usize,
}

impl Default for AttributionOptions {
    fn default() -> Self {
        Self {
            logit_probability: 0.95,
            max_logits: 10,
            batch: 256,
        }
    }
}

/// One target: where it reads and what it reads.
struct Target {
    node: usize,
    /// The block whose residual input (before attention) it reads, or `None` for a
    /// logit, which reads the last block's output.
    layer: Option<usize>,
    position: usize,
    /// Its reading direction in the residual stream, `[d]`.
    direction: Tensor,
    /// Its own bias.
    constant: f32,
    /// Its pre-activation in the real model.
    value: f32,
}

/// The attribution graph of `replacement`'s prompt on `model`.
pub fn attribute(
    model: &Gpt2,
    replacement: &Replacement,
    options: &AttributionOptions,
) -> Result<Graph> {
    let n_layer = model.config().n_layer;
    let positions = replacement.len();
    let mut nodes = Vec::new();
    let active = feature_nodes(replacement, &mut nodes)?;
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
    for p in 0..positions {
        nodes.push(Node {
            kind: NodeKind::Position { position: p },
            activation: 1.0,
        });
    }
    let logit_base = nodes.len();
    let logits = likeliest(replacement, options)?;
    let mut targets = feature_targets(model, replacement, &nodes[..error_base])?;
    targets.extend(logit_targets(model, replacement, &logits, logit_base)?);
    for (token, probability, centred) in &logits {
        nodes.push(Node {
            kind: NodeKind::Logit {
                token: *token,
                probability: *probability,
            },
            activation: *centred,
        });
    }

    let n = nodes.len();
    let mut graph = Graph {
        tokens: replacement.tokens.clone(),
        adjacency: vec![0.0; n * n],
        constants: vec![0.0; n],
        pre_activations: vec![0.0; n],
        nodes,
    };
    let attention = (0..n_layer)
        .map(|l| FrozenAttention::new(model, replacement, l))
        .collect::<Result<Vec<_>>>()?;
    let layout = Sources {
        active: &active,
        error_base,
        token_base,
        position_base,
        positions,
    };
    // Targets that start at the same block go back together.
    for start in (0..=n_layer).rev() {
        let group: Vec<&Target> = targets
            .iter()
            .filter(|t| t.layer.unwrap_or(n_layer) == start)
            .collect();
        for chunk in group.chunks(options.batch.max(1)) {
            carry_back(model, replacement, &attention, &layout, chunk, &mut graph)?;
        }
    }
    for t in &targets {
        graph.pre_activations[t.node] = t.value;
    }
    Ok(graph)
}

/// The features active at one block and position.
struct ActiveAt {
    nodes: Vec<usize>,
    features: Vec<u32>,
    activations: Vec<f32>,
}

/// Adds a node for every active feature, by block, position and feature; returns them
/// per block and position.
fn feature_nodes(replacement: &Replacement, nodes: &mut Vec<Node>) -> Result<Vec<Vec<ActiveAt>>> {
    let positions = replacement.len();
    // Per block and position: the active features.
    let mut active: Vec<Vec<ActiveAt>> = Vec::with_capacity(replacement.activations.len());
    for (l, acts) in replacement.activations.iter().enumerate() {
        let rows: Vec<Vec<f32>> = acts.to_vec2()?;
        let mut per_position = Vec::with_capacity(positions);
        for (p, row) in rows.iter().enumerate() {
            let (mut ids, mut features, mut values) = (Vec::new(), Vec::new(), Vec::new());
            for (f, &a) in row.iter().enumerate() {
                if a > 0.0 {
                    ids.push(nodes.len());
                    features.push(f as u32);
                    values.push(a);
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
            per_position.push(ActiveAt {
                nodes: ids,
                features,
                activations: values,
            });
        }
        active.push(per_position);
    }
    Ok(active)
}

/// Where the source nodes are.
struct Sources<'a> {
    active: &'a [Vec<ActiveAt>],
    error_base: usize,
    token_base: usize,
    position_base: usize,
    positions: usize,
}

/// The likeliest next tokens: `(token, probability, centred logit)`.
fn likeliest(
    replacement: &Replacement,
    options: &AttributionOptions,
) -> Result<Vec<(u32, f32, f32)>> {
    let logits: Vec<f32> = replacement.last_logits.to_vec1()?;
    let largest = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|l| (l - largest).exp()).collect();
    let total: f32 = exp.iter().sum();
    let mean = logits.iter().sum::<f32>() / logits.len() as f32;
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    let mut chosen = Vec::new();
    let mut covered = 0.0;
    for i in order {
        if chosen.len() == options.max_logits.max(1) || covered >= options.logit_probability {
            break;
        }
        let p = exp[i] / total;
        covered += p;
        chosen.push((i as u32, p, logits[i] - mean));
    }
    Ok(chosen)
}

/// Each active feature as a target: its encoder direction through the frozen `ln_2`.
fn feature_targets(
    model: &Gpt2,
    replacement: &Replacement,
    features: &[Node],
) -> Result<Vec<Target>> {
    let mut targets = Vec::with_capacity(features.len());
    for (node, n) in features.iter().enumerate() {
        let NodeKind::Feature {
            layer,
            position,
            feature,
        } = n.kind
        else {
            continue;
        };
        let transcoder = &replacement.transcoders[layer];
        let ln = &model.weights().blocks[layer].ln_2;
        let w = transcoder.w_enc.narrow(1, feature, 1)?.squeeze(1)?;
        let mut bias = transcoder.b_enc.get(feature)?.to_scalar::<f32>()?;
        if transcoder.config.apply_b_dec_to_input {
            bias -= dot(&transcoder.b_dec, &w)?;
        }
        let scale = replacement.ln2_scales[layer]
            .get(position)?
            .to_scalar::<f32>()?;
        let direction = centre(&(ln.weight.mul(&w)? / f64::from(scale))?)?;
        let input = replacement.transcoder_inputs[layer].get(position)?;
        targets.push(Target {
            node,
            layer: Some(layer),
            position,
            direction,
            constant: dot(&ln.bias, &w)? + bias,
            value: dot(&input, &w)? + bias,
        });
    }
    Ok(targets)
}

/// Each chosen logit as a target: its mean-centred unembedding through the frozen `ln_f`.
fn logit_targets(
    model: &Gpt2,
    replacement: &Replacement,
    logits: &[(u32, f32, f32)],
    base: usize,
) -> Result<Vec<Target>> {
    let unembedding = model.weights().unembedding();
    let mean = unembedding.mean(0)?;
    let ln = &model.weights().ln_final;
    let last = replacement.len() - 1;
    let scale = replacement.final_scale.get(last)?.to_scalar::<f32>()?;
    logits
        .iter()
        .enumerate()
        .map(|(i, &(token, _, centred))| {
            let u = (unembedding.get(token as usize)? - &mean)?;
            Ok(Target {
                node: base + i,
                layer: None,
                position: last,
                direction: centre(&(ln.weight.mul(&u)? / f64::from(scale))?)?,
                constant: dot(&ln.bias, &u)?,
                value: centred,
            })
        })
        .collect()
}

/// Carries a batch of targets that start at the same block back to the embeddings,
/// filling their rows of the adjacency and their constants.
fn carry_back(
    model: &Gpt2,
    replacement: &Replacement,
    attention: &[FrozenAttention],
    sources: &Sources<'_>,
    batch: &[&Target],
    graph: &mut Graph,
) -> Result<()> {
    let n_layer = model.config().n_layer;
    let (count, positions) = (batch.len(), sources.positions);
    let d = model.config().n_embd;
    let n = graph.nodes.len();
    // Each target's direction at its position, zero elsewhere: [targets, positions, d].
    let mut seed = vec![0.0_f32; count * positions * d];
    for (i, t) in batch.iter().enumerate() {
        let values: Vec<f32> = t.direction.to_vec1()?;
        let at = (i * positions + t.position) * d;
        seed[at..at + d].copy_from_slice(&values);
    }
    let mut g = Tensor::from_vec(seed, (count, positions, d), &Device::Cpu)?;
    let mut constants: Vec<f32> = batch.iter().map(|t| t.constant).collect();
    let mut add_constant = |g: &Tensor, vector: &Tensor| -> Result<()> {
        // Σ_p g[t, p, :] · vector
        let per_target: Vec<f32> = g
            .sum(1)?
            .matmul(&vector.unsqueeze(1)?)?
            .squeeze(1)?
            .to_vec1()?;
        for (c, v) in constants.iter_mut().zip(per_target) {
            *c += v;
        }
        Ok(())
    };
    let below = match batch[0].layer {
        // A feature reads its block's residual stream after attention: through it first.
        Some(layer) => {
            add_constant(&g, &attention[layer].constant)?;
            g = (&g + attention[layer].transpose(&g)?)?;
            layer
        }
        None => n_layer,
    };
    let mut write = |row: usize, column: usize, value: f32| {
        graph.adjacency[row * n + column] = value;
    };
    for l in (0..below).rev() {
        // g is now the gradient at block l's output, where its MLP's nodes write.
        for (p, at) in sources.active[l].iter().enumerate() {
            if at.nodes.is_empty() {
                continue;
            }
            let index = Tensor::new(at.features.as_slice(), &Device::Cpu)?;
            let decoders = replacement.transcoders[l].w_dec.index_select(&index, 0)?;
            let at_p = g.narrow(1, p, 1)?.squeeze(1)?;
            let effects: Vec<Vec<f32>> = at_p.matmul(&decoders.t()?)?.to_vec2()?;
            for (i, row) in effects.iter().enumerate() {
                for (j, e) in row.iter().enumerate() {
                    write(batch[i].node, at.nodes[j], e * at.activations[j]);
                }
            }
        }
        let errors: Vec<Vec<f32>> = g
            .broadcast_mul(&replacement.errors[l].unsqueeze(0)?)?
            .sum(D::Minus1)?
            .to_vec2()?;
        for (i, row) in errors.iter().enumerate() {
            for (p, e) in row.iter().enumerate() {
                write(batch[i].node, sources.error_base + l * positions + p, *e);
            }
        }
        add_constant(&g, &replacement.transcoders[l].b_dec)?;
        add_constant(&g, &attention[l].constant)?;
        g = (&g + attention[l].transpose(&g)?)?;
    }
    // g is now the gradient at the embeddings.
    for (base, embeddings) in [
        (sources.token_base, &replacement.token_embeddings),
        (sources.position_base, &replacement.position_embeddings),
    ] {
        let effects: Vec<Vec<f32>> = g
            .broadcast_mul(&embeddings.unsqueeze(0)?)?
            .sum(D::Minus1)?
            .to_vec2()?;
        for (i, row) in effects.iter().enumerate() {
            for (p, e) in row.iter().enumerate() {
                write(batch[i].node, base + p, *e);
            }
        }
    }
    for (t, c) in batch.iter().zip(constants) {
        graph.constants[t.node] = c;
    }
    if batch.iter().any(|t| t.layer.is_some_and(|l| l >= n_layer)) {
        return Err(CircuitError::Request(
            "a target beyond the last block".to_owned(),
        ));
    }
    Ok(())
}

/// `x − mean(x)`: the centring that LayerNorm applies before scaling.
fn centre(x: &Tensor) -> Result<Tensor> {
    Ok(x.broadcast_sub(&x.mean_keepdim(0)?)?)
}

fn dot(a: &Tensor, b: &Tensor) -> Result<f32> {
    Ok((a * b)?.sum_all()?.to_scalar::<f32>()?)
}
