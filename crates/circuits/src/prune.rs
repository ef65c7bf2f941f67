//! Pruning a graph to what matters for its logits, as circuit-tracer does: a node's
//! influence is how much of the logits' (probability-weighted) incoming weight reaches
//! it through any path of the row-normalized absolute adjacency; nodes are kept until
//! `nodes` of the total influence is covered, edges until `edges` of the total edge
//! score; then features and errors left without outgoing edges, and features left without
//! incoming ones, are dropped until nothing changes. Embeddings and logits always stay.
//!
//! [`Influence`] holds the expensive part (one series per graph); [`Influence::prune`]
//! is cheap, so thresholds can move live.

use crate::graph::{Graph, NodeKind};

/// The thresholds: fractions of the total influence kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Of node influence (circuit-tracer's default 0.8).
    pub nodes: f32,
    /// Of edge score (circuit-tracer's default 0.98).
    pub edges: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            nodes: 0.8,
            edges: 0.98,
        }
    }
}

impl Thresholds {
    /// Checks both thresholds: each a share between 0 and 1.
    pub fn check(self) -> crate::Result<Self> {
        threshold("node", self.nodes)?;
        threshold("edge", self.edges)?;
        Ok(self)
    }
}

/// `value` if it is a share between 0 and 1; an error naming the `what` threshold if not.
pub fn threshold(what: &str, value: f32) -> crate::Result<f32> {
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(crate::CircuitError::Request(format!(
            "the {what} threshold must be between 0 and 1, not {value}"
        )))
    }
}

/// What survives pruning.
#[derive(Debug, Clone, PartialEq)]
pub struct Pruned {
    /// Per node, whether it is kept.
    pub nodes: Vec<bool>,
    /// Kept edges as `(source, target, weight)`, weight as in the graph.
    pub edges: Vec<(usize, usize, f32)>,
    /// Per node, the fraction of all influence held by nodes at least as influential
    /// (what circuit-tracer reports as a node's `influence`).
    pub cumulative: Vec<f32>,
    /// The scores of the whole graph and of what was kept.
    pub scores: Scores,
}

/// A graph's scores before and after pruning.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scores {
    /// Of the whole graph.
    pub graph: GraphScores,
    /// Of the kept nodes and edges alone, as if they were the whole graph.
    pub pruned: GraphScores,
}

/// How much of a graph its features explain (circuit-tracer's definitions; 1 is all).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GraphScores {
    /// The share of the input's influence on the logits that reaches them through
    /// features rather than errors.
    pub replacement: f32,
    /// The influence-weighted share of the nodes' inputs that comes from features and
    /// embeddings rather than errors.
    pub completeness: f32,
}

/// The nodes' influence on the logits, computed once per graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Influence {
    /// Per node.
    pub nodes: Vec<f32>,
    logit_weights: Vec<f32>,
    /// The whole graph's scores.
    whole: GraphScores,
}

/// `|A|` with each row divided by its sum (rows: targets), over the nodes `keep` keeps
/// (`None`: all).
fn normalized(graph: &Graph, keep: Option<&[bool]>) -> Vec<f32> {
    let n = graph.len();
    let mut m = vec![0.0_f32; n * n];
    for t in 0..n {
        if keep.is_some_and(|k| !k[t]) {
            continue;
        }
        let row = &graph.adjacency[t * n..(t + 1) * n];
        let out = &mut m[t * n..(t + 1) * n];
        let mut sum = 0.0;
        for (s, (o, a)) in out.iter_mut().zip(row).enumerate() {
            if keep.is_none_or(|k| k[s]) {
                *o = a.abs();
                sum += *o;
            }
        }
        let sum = sum.max(1e-10);
        for o in out.iter_mut() {
            *o /= sum;
        }
    }
    m
}

/// `w·M + w·M² + …` over the dense `n × n` matrix `m` (rows: targets).
fn series(m: &[f32], weights: &[f32]) -> Vec<f32> {
    let n = weights.len();
    series_by(weights, |current, next| {
        for (t, &w) in current.iter().enumerate() {
            if w == 0.0 {
                continue;
            }
            for (x, &a) in next.iter_mut().zip(&m[t * n..(t + 1) * n]) {
                *x += w * a;
            }
        }
    })
}

/// `w·M + w·M² + …` where `step(v, out)` adds `v·M` to `out` (which starts at zero); the
/// graph has no cycles, so the series ends.
fn series_by(weights: &[f32], step: impl Fn(&[f32], &mut [f32])) -> Vec<f32> {
    let n = weights.len();
    let mut total = vec![0.0_f32; n];
    let mut current = weights.to_vec();
    for _ in 0..=n {
        let mut next = vec![0.0_f32; n];
        step(&current, &mut next);
        if next.iter().all(|&x| x == 0.0) {
            break;
        }
        for (t, x) in total.iter_mut().zip(&next) {
            *t += x;
        }
        current = next;
    }
    total
}

/// The score at which the largest scores add up to `fraction` of their total. The running
/// total is kept in f64: in f32 it stops growing once the small scores fall below its
/// rounding step, so a fraction of 1 would cut them.
fn cutoff(scores: impl Iterator<Item = f32>, fraction: f32) -> f32 {
    let mut sorted: Vec<f32> = scores.collect();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let total: f64 = sorted.iter().map(|&s| f64::from(s)).sum();
    if total <= 0.0 {
        return 0.0;
    }
    let mut cumulative = 0.0_f64;
    for &s in &sorted {
        cumulative += f64::from(s);
        if cumulative / total >= f64::from(fraction) {
            return s;
        }
    }
    sorted.last().copied().unwrap_or(0.0)
}

/// Drops features and errors that send nothing, and features that receive nothing, until
/// none is left (each drop can leave another dangling); `always` nodes stay. Linear in
/// nodes and edges: each node's kept edges are counted once and counted down.
fn drop_dangling(
    graph: &Graph,
    keep: &mut [bool],
    edges: &mut Vec<(usize, usize, f32)>,
    always: impl Fn(usize) -> bool,
) {
    let n = keep.len();
    let (mut sends, mut receives) = (vec![0_usize; n], vec![0_usize; n]);
    let (mut outgoing, mut incoming) = (vec![Vec::new(); n], vec![Vec::new(); n]);
    for (e, &(s, t, _)) in edges.iter().enumerate() {
        sends[s] += 1;
        receives[t] += 1;
        outgoing[s].push(e);
        incoming[t].push(e);
    }
    let feature = |i: usize| matches!(graph.nodes[i].kind, NodeKind::Feature { .. });
    let dangling = |i: usize, sends: &[usize], receives: &[usize]| {
        !always(i) && (sends[i] == 0 || (feature(i) && receives[i] == 0))
    };
    let mut queue: Vec<usize> = (0..n)
        .filter(|&i| keep[i] && dangling(i, &sends, &receives))
        .collect();
    let mut alive = vec![true; edges.len()];
    while let Some(i) = queue.pop() {
        if !keep[i] {
            continue;
        }
        keep[i] = false;
        for &e in outgoing[i].iter().chain(&incoming[i]) {
            if !alive[e] {
                continue;
            }
            alive[e] = false;
            let (s, t, _) = edges[e];
            sends[s] -= 1;
            receives[t] -= 1;
            let other = if s == i { t } else { s };
            if keep[other] && dangling(other, &sends, &receives) {
                queue.push(other);
            }
        }
    }
    let mut e = 0;
    edges.retain(|_| {
        e += 1;
        alive[e - 1]
    });
}

/// circuit-tracer's two scores of how much of a graph features explain (its
/// `compute_graph_scores`), from its nodes' `influence` and, per target, the share of its
/// normalized input that comes from errors: the replacement score, the share of the
/// embeddings' and errors' influence on the logits held by the embeddings (what reaches
/// the logits from the input through features alone; position embeddings count with the
/// tokens); and the completeness score, each node's share of normalized input that is not
/// from errors, weighted by its influence (plus its own weight, for a logit).
fn graph_scores(
    graph: &Graph,
    influence: &[f32],
    logit_weights: &[f32],
    from_errors: &[f64],
) -> GraphScores {
    let (mut embeddings, mut errors) = (0.0_f64, 0.0_f64);
    for (node, &x) in graph.nodes.iter().zip(influence) {
        match node.kind {
            NodeKind::Token { .. } | NodeKind::Position { .. } => embeddings += f64::from(x),
            NodeKind::Error { .. } => errors += f64::from(x),
            _ => {}
        }
    }
    let (mut explained, mut total) = (0.0_f64, 0.0_f64);
    for ((&x, &w), &e) in influence.iter().zip(logit_weights).zip(from_errors) {
        let weight = f64::from(x + w);
        explained += (1.0 - e) * weight;
        total += weight;
    }
    GraphScores {
        replacement: (embeddings / (embeddings + errors).max(1e-30)) as f32,
        completeness: (explained / total.max(1e-30)) as f32,
    }
}

/// Per target, the share of its row of the normalized adjacency `m` from error nodes.
fn error_shares(graph: &Graph, m: &[f32]) -> Vec<f64> {
    let n = graph.len();
    let errors_at: Vec<usize> = (0..n)
        .filter(|&s| matches!(graph.nodes[s].kind, NodeKind::Error { .. }))
        .collect();
    (0..n)
        .map(|t| errors_at.iter().map(|&s| f64::from(m[t * n + s])).sum())
        .collect()
}

impl Influence {
    /// Each node's influence on the logits, weighted by their probabilities.
    #[must_use]
    pub fn of(graph: &Graph) -> Self {
        let logit_weights: Vec<f32> = graph
            .nodes
            .iter()
            .map(|node| match node.kind {
                NodeKind::Logit { probability, .. } => probability,
                _ => 0.0,
            })
            .collect();
        let m = normalized(graph, None);
        let nodes = series(&m, &logit_weights);
        let whole = graph_scores(graph, &nodes, &logit_weights, &error_shares(graph, &m));
        Self {
            nodes,
            logit_weights,
            whole,
        }
    }

    /// The whole graph's replacement and completeness scores (see [`graph_scores`]).
    #[must_use]
    pub fn scores(&self) -> GraphScores {
        self.whole
    }

    /// The nodes and edges that `thresholds` keep.
    #[must_use]
    pub fn prune(&self, graph: &Graph, thresholds: Thresholds) -> Pruned {
        let n = graph.len();
        let always = |i: usize| {
            matches!(
                graph.nodes[i].kind,
                NodeKind::Token { .. } | NodeKind::Position { .. } | NodeKind::Logit { .. }
            )
        };
        let node_cut = cutoff(self.nodes.iter().copied(), thresholds.nodes.clamp(0.0, 1.0));
        let mut keep: Vec<bool> = (0..n)
            .map(|i| always(i) || self.nodes[i] >= node_cut)
            .collect();

        // Edge scores: the normalized weight into a target times the target's influence
        // (plus its own weight if it is a logit), on the graph of kept nodes.
        let m = normalized(graph, Some(&keep));
        let mut reach = series(&m, &self.logit_weights);
        for (r, w) in reach.iter_mut().zip(&self.logit_weights) {
            *r += w;
        }
        let score = |t: usize, s: usize| m[t * n + s] * reach[t];
        let edge_cut = cutoff(
            (0..n * n).map(|i| score(i / n, i % n)).filter(|&x| x > 0.0),
            thresholds.edges.clamp(0.0, 1.0),
        );
        let mut edges: Vec<(usize, usize, f32)> = Vec::new();
        for t in 0..n {
            for s in 0..n {
                let x = score(t, s);
                if x > 0.0 && x >= edge_cut {
                    edges.push((s, t, graph.adjacency[t * n + s]));
                }
            }
        }
        drop_dangling(graph, &mut keep, &mut edges, always);
        let scores = Scores {
            graph: self.whole,
            pruned: self.kept_scores(graph, &edges),
        };
        Pruned {
            nodes: keep,
            edges,
            cumulative: self.cumulative(),
            scores,
        }
    }

    /// The scores of the graph made of `edges` alone, its influence recomputed on them:
    /// the series over the kept edges' sparse rows (pruned graphs keep a few thousand
    /// edges of millions).
    fn kept_scores(&self, graph: &Graph, edges: &[(usize, usize, f32)]) -> GraphScores {
        let n = graph.len();
        let mut row_sums = vec![0.0_f32; n];
        for &(_, t, w) in edges {
            row_sums[t] += w.abs();
        }
        // (source, target, normalized weight), and each target's share from errors.
        let normalized: Vec<(usize, usize, f32)> = edges
            .iter()
            .map(|&(s, t, w)| (s, t, w.abs() / row_sums[t].max(1e-10)))
            .collect();
        let mut from_errors = vec![0.0_f64; n];
        for &(s, t, m) in &normalized {
            if matches!(graph.nodes[s].kind, NodeKind::Error { .. }) {
                from_errors[t] += f64::from(m);
            }
        }
        let influence = series_by(&self.logit_weights, |current, next| {
            for &(s, t, m) in &normalized {
                next[s] += current[t] * m;
            }
        });
        graph_scores(graph, &influence, &self.logit_weights, &from_errors)
    }

    /// Per node, the share of all influence held by the nodes at least as influential.
    fn cumulative(&self) -> Vec<f32> {
        let mut order: Vec<usize> = (0..self.nodes.len()).collect();
        order.sort_by(|&a, &b| self.nodes[b].total_cmp(&self.nodes[a]).then(a.cmp(&b)));
        let total = self
            .nodes
            .iter()
            .map(|&x| f64::from(x))
            .sum::<f64>()
            .max(1e-10);
        let mut out = vec![0.0; self.nodes.len()];
        let mut running = 0.0_f64;
        for i in order {
            running += f64::from(self.nodes[i]);
            out[i] = (running / total) as f32;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Node;

    /// token → a → b → logit, and token → c → logit with a weaker edge.
    fn chain() -> Graph {
        let node = |kind| Node {
            kind,
            activation: 1.0,
        };
        let feature = |feature, layer| NodeKind::Feature {
            layer,
            position: 0,
            feature,
        };
        let nodes = vec![
            node(feature(0, 0)), // a
            node(feature(1, 1)), // b
            node(feature(2, 0)), // c
            node(NodeKind::Token {
                position: 0,
                token: 5,
            }),
            node(NodeKind::Logit {
                token: 9,
                probability: 1.0,
                versus: None,
            }),
        ];
        let n = nodes.len();
        let mut adjacency = vec![0.0; n * n];
        let mut edge = |s: usize, t: usize, w: f32| adjacency[t * n + s] = w;
        edge(3, 0, 2.0);
        edge(0, 1, -3.0);
        edge(1, 4, 4.0);
        edge(3, 2, 1.0);
        edge(2, 4, 1.0);
        Graph {
            tokens: vec![5],
            nodes,
            adjacency,
            constants: vec![0.0; n],
            pre_activations: vec![0.0; n],
            active_features: 3,
        }
    }

    #[test]
    fn influence_follows_paths_to_the_logits() {
        let graph = chain();
        let influence = Influence::of(&graph);
        // The logit's row normalizes to b: 0.8, c: 0.2; b's to a: 1; a's and c's to the token.
        let expected = [0.8, 0.8, 0.2, 1.0, 0.0];
        for (got, want) in influence.nodes.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{:?}", influence.nodes);
        }
    }

    #[test]
    fn thresholds_keep_the_strongest_path() {
        let graph = chain();
        let influence = Influence::of(&graph);
        let all = influence.prune(
            &graph,
            Thresholds {
                nodes: 1.0,
                edges: 1.0,
            },
        );
        assert!(all.nodes.iter().all(|&k| k));
        assert_eq!(all.edges.len(), 5);
        let strong = influence.prune(
            &graph,
            Thresholds {
                nodes: 0.6,
                edges: 1.0,
            },
        );
        // c holds the least influence: dropped, and its edges with it.
        assert_eq!(strong.nodes, vec![true, true, false, true, true]);
        assert!(strong.edges.iter().all(|&(s, t, _)| s != 2 && t != 2));
        assert!(strong.edges.contains(&(0, 1, -3.0)));
        let cumulative = &strong.cumulative;
        assert!((cumulative[3] - 1.0 / 2.8).abs() < 1e-6 && (cumulative[2] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn scores_share_influence_between_features_and_errors_as_circuit_tracer_does() {
        // token → feature → logit and an error → logit, equally strong.
        let graph = with_error(-2.0);
        let scores = Influence::of(&graph).scores();
        // The token reaches the logit with 0.5, the error with 0.5.
        assert!((scores.replacement - 0.5).abs() < 1e-6, "{scores:?}");
        // Weights: logit 1 (half from the error), feature, error and token 0.5 each (none
        // from errors): 2.0 of 2.5 explained.
        assert!((scores.completeness - 0.8).abs() < 1e-6, "{scores:?}");
        // Without errors, everything is explained.
        let chain = chain();
        let whole = Influence::of(&chain).scores();
        assert!((whole.replacement - 1.0).abs() < 1e-6 && (whole.completeness - 1.0).abs() < 1e-6);
    }

    /// token → feature (0.5) → logit (2) beside an error → logit (`error`).
    fn with_error(error: f32) -> Graph {
        let node = |kind| Node {
            kind,
            activation: 1.0,
        };
        let nodes = vec![
            node(NodeKind::Feature {
                layer: 0,
                position: 0,
                feature: 0,
            }),
            node(NodeKind::Error {
                layer: 0,
                position: 0,
            }),
            node(NodeKind::Token {
                position: 0,
                token: 5,
            }),
            node(NodeKind::Logit {
                token: 9,
                probability: 1.0,
                versus: None,
            }),
        ];
        let n = nodes.len();
        let mut adjacency = vec![0.0; n * n];
        adjacency[3 * n] = 2.0; // feature → logit
        adjacency[3 * n + 1] = error; // error → logit
        adjacency[2] = 0.5; // token → feature
        Graph {
            tokens: vec![5],
            nodes,
            adjacency,
            constants: vec![0.0; n],
            pre_activations: vec![0.0; n],
            active_features: 1,
        }
    }

    #[test]
    fn a_pruned_graph_is_scored_on_what_it_keeps() {
        let graph = with_error(-1.0);
        let influence = Influence::of(&graph);
        // The logit's row: feature 2/3, error 1/3; the token reaches it through the feature.
        let whole = influence.scores();
        assert!((whole.replacement - 2.0 / 3.0).abs() < 1e-6, "{whole:?}");
        let everything = influence.prune(
            &graph,
            Thresholds {
                nodes: 1.0,
                edges: 1.0,
            },
        );
        assert_eq!(everything.scores.graph, whole);
        assert_eq!(everything.scores.pruned, whole);
        // Influence: feature 2/3, token 2/3, error 1/3; keeping 0.6 of it drops the error,
        // and what is left is all features.
        let strong = influence.prune(
            &graph,
            Thresholds {
                nodes: 0.6,
                edges: 1.0,
            },
        );
        assert_eq!(strong.nodes, vec![true, false, true, true]);
        assert_eq!(strong.scores.graph, whole);
        let kept = strong.scores.pruned;
        assert!(
            (kept.replacement - 1.0).abs() < 1e-6 && (kept.completeness - 1.0).abs() < 1e-6,
            "{kept:?}"
        );
    }

    #[test]
    #[allow(clippy::float_cmp, reason = "the cutoff is one of the scores, copied")]
    fn a_threshold_of_one_keeps_scores_far_below_the_largest() {
        // In an f32 running total the 1e-9s vanish beside the 1: the total would be reached
        // at the first score, and every small one cut.
        let scores = std::iter::once(1.0).chain(std::iter::repeat_n(1e-9, 1000));
        assert_eq!(cutoff(scores.clone(), 1.0), 1e-9);
        assert_eq!(cutoff(scores, 0.5), 1.0);
    }
}
