//! The attribution graph of a prompt: the active features, errors, embeddings and the
//! likeliest logits as nodes; as edges, each source's direct effect on each target
//! through the frozen replacement model (computed by a [`Carrier`]).
//!
//! Every active feature is a node unless `max_feature_nodes` caps them; then, as
//! circuit-tracer does, the logits' rows come first and features are added in rounds,
//! each round taking the not yet computed features with the most influence on the logits
//! through the rows computed so far. Features left out are dropped from the graph, with
//! their edges.

use glassbox_model::Model;

use crate::carry::{Carrier, CpuCarrier, Row};
use crate::error::{CircuitError, Result};
use crate::frozen::FrozenWeights;
use crate::graph::Graph;
use crate::replacement::Replacement;
use crate::setup::{Setup, Target};
use crate::spread::carry_all;

/// How a graph is built.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttributionOptions {
    /// Logit nodes for the likeliest next tokens until their probabilities add up to this…
    pub logit_probability: f32,
    /// …but at most this many.
    pub max_logits: usize,
    /// Targets carried back together (memory: targets × positions × d floats).
    pub batch: usize,
    /// At most this many feature nodes, the most influential (`None`: every active one).
    pub max_feature_nodes: Option<usize>,
    /// Batches per round of choosing features by influence, when they are capped.
    pub update_interval: usize,
    /// `(token, versus)`: one logit node, `token`'s logit minus `versus`'s, in place of
    /// the likeliest tokens (the contrastive target; its edges are the differences of
    /// the two logits' edges).
    pub contrast: Option<(u32, u32)>,
}

impl Default for AttributionOptions {
    fn default() -> Self {
        Self {
            logit_probability: 0.95,
            max_logits: 10,
            batch: 256,
            max_feature_nodes: None,
            update_interval: 4,
            contrast: None,
        }
    }
}

/// The attribution graph of `replacement`'s prompt on `model`, on the CPU engine.
pub fn attribute(
    model: &Model,
    replacement: &Replacement,
    options: &AttributionOptions,
) -> Result<Graph> {
    let weights = FrozenWeights::of(model)?;
    let setup = Setup::of(&weights, replacement, options)?;
    let carrier = CpuCarrier::new(&weights, replacement, &setup.sources)?;
    glassbox_engine::now(attribute_with(&setup, replacement, &carrier, options)).unwrap_or_else(
        || {
            Err(CircuitError::Request(
                "the CPU engine's attribution did not finish at once".to_owned(),
            ))
        },
    )
}

/// The attribution graph of `setup`, with rows computed by `carrier` (any engine).
pub async fn attribute_with<C: Carrier>(
    setup: &Setup,
    replacement: &Replacement,
    carrier: &C,
    options: &AttributionOptions,
) -> Result<Graph> {
    let batch = options.batch.max(1);
    let logit_refs: Vec<&Target> = setup.logit_targets.iter().collect();
    let logit_chunks: Vec<&[&Target]> = logit_refs.chunks(batch).collect();
    let logit_rows: Vec<Row> = carry_all(carrier, &logit_chunks)
        .await?
        .into_iter()
        .flatten()
        .collect();
    let features = setup.feature_targets.len();
    let cap = options.max_feature_nodes.unwrap_or(features).min(features);
    let mut rows: Vec<Option<Row>> = vec![None; features];
    let mut visited = 0;
    while visited < cap {
        let pending: Vec<usize> = if cap == features {
            (0..features).collect()
        } else {
            let influence = partial_influence(setup, &logit_rows, &rows);
            let mut ranked: Vec<usize> = (0..features).filter(|&f| rows[f].is_none()).collect();
            ranked.sort_by(|&a, &b| influence[b].total_cmp(&influence[a]).then(a.cmp(&b)));
            ranked.truncate((batch * options.update_interval.max(1)).min(cap - visited));
            // Batches read one block; positions in order keep the carried span short.
            ranked.sort_unstable();
            ranked
        };
        // The round's batches, each of one block, carried as many at once as the carrier
        // takes: a row does not depend on which batch or worker carried it.
        let mut spans = Vec::new();
        let mut start = 0;
        while start < pending.len() {
            let layer = setup.feature_targets[pending[start]].layer;
            let end = (start..pending.len())
                .find(|&i| setup.feature_targets[pending[i]].layer != layer || i - start == batch)
                .unwrap_or(pending.len());
            spans.push(start..end);
            start = end;
        }
        let targets: Vec<&Target> = pending.iter().map(|&f| &setup.feature_targets[f]).collect();
        let chunks: Vec<&[&Target]> = spans.iter().map(|s| &targets[s.clone()]).collect();
        let carried = carry_all(carrier, &chunks).await?;
        for (span, chunk_rows) in spans.into_iter().zip(carried) {
            for (&f, row) in pending[span].iter().zip(chunk_rows) {
                rows[f] = Some(row);
            }
        }
        visited += pending.len();
    }
    Ok(assemble(setup, replacement, &logit_rows, &rows))
}

/// Each source column's influence on the logits through the rows computed so far (the
/// series of the row-normalized absolute rows, weighted by the logits' probabilities).
fn partial_influence(setup: &Setup, logit_rows: &[Row], rows: &[Option<Row>]) -> Vec<f32> {
    let columns = setup.sources.columns();
    let norm = |row: &Row| row.effects.iter().map(|e| e.abs()).sum::<f32>().max(1e-10);
    let feature_norms: Vec<f32> = rows.iter().map(|r| r.as_ref().map_or(1.0, norm)).collect();
    let mut influence = vec![0.0_f32; columns];
    // This step's weight of each column: starts at the logits' rows.
    let mut reached = vec![0.0_f32; columns];
    for (row, node) in logit_rows.iter().zip(&setup.logits) {
        let weight = match node.kind {
            crate::graph::NodeKind::Logit { probability, .. } => probability,
            _ => 0.0,
        } / norm(row);
        for (r, e) in reached.iter_mut().zip(&row.effects) {
            *r += weight * e.abs();
        }
    }
    for _ in 0..=columns {
        if reached.iter().all(|&x| x == 0.0) {
            break;
        }
        for (i, r) in influence.iter_mut().zip(&reached) {
            *i += r;
        }
        let mut next = vec![0.0_f32; columns];
        for (f, row) in rows.iter().enumerate() {
            let Some(row) = row else { continue };
            let weight = reached[f] / feature_norms[f];
            if weight == 0.0 {
                continue;
            }
            for (x, e) in next.iter_mut().zip(&row.effects) {
                *x += weight * e.abs();
            }
        }
        reached = next;
    }
    influence
}

/// The graph of the features that have rows, every other source and the logits.
fn assemble(
    setup: &Setup,
    replacement: &Replacement,
    logit_rows: &[Row],
    rows: &[Option<Row>],
) -> Graph {
    let sources = &setup.sources;
    // Source column → graph node.
    let mut node_of = vec![None; sources.columns()];
    let mut nodes = Vec::new();
    for (column, node) in sources.nodes.iter().enumerate() {
        if column >= sources.features() || rows[column].is_some() {
            node_of[column] = Some(nodes.len());
            nodes.push(node.clone());
        }
    }
    let logit_base = nodes.len();
    nodes.extend(setup.logits.iter().cloned());
    let n = nodes.len();
    let mut graph = Graph {
        tokens: replacement.tokens.clone(),
        adjacency: vec![0.0; n * n],
        constants: vec![0.0; n],
        pre_activations: vec![0.0; n],
        active_features: sources.features(),
        nodes,
    };
    let targets = rows
        .iter()
        .enumerate()
        .filter_map(|(f, row)| Some((node_of[f]?, row.as_ref()?, &setup.feature_targets[f])))
        .chain(
            logit_rows
                .iter()
                .zip(&setup.logit_targets)
                .enumerate()
                .map(|(i, (row, target))| (logit_base + i, row, target)),
        );
    for (t, row, target) in targets {
        let out = &mut graph.adjacency[t * n..(t + 1) * n];
        for (column, &e) in row.effects.iter().enumerate() {
            if let Some(s) = node_of[column] {
                out[s] = e;
            }
        }
        graph.constants[t] = row.constant;
        graph.pre_activations[t] = target.value;
    }
    graph
}
