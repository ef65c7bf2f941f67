//! Attribution graphs on the committed default pack: each target's incoming edges plus
//! its constant add up to its pre-activation in the real model (completeness).
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

mod common;

use std::path::Path;
use std::sync::{Arc, OnceLock};

use glassbox_circuits::{
    AttributionOptions, Carrier, CircuitError, CpuCarrier, ExportContext, FreeLane, FrozenWeights,
    Graph, GraphFile, Influence, LaneAnswer, Lanes, NodeKind, Replacement, Setup, Sources, Spread,
    Target, Thresholds, attribute, attribute_with,
};
use glassbox_dict::Dictionary;
use glassbox_model::{Model, Tokenizer};
use glassbox_pack::dir;

struct Pack {
    model: Model,
    tokenizer: Tokenizer,
    transcoders: Vec<Arc<Dictionary>>,
}

fn pack() -> &'static Pack {
    static PACK: OnceLock<Pack> = OnceLock::new();
    PACK.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../www/packs/brown");
        let loaded = dir::load(&root).unwrap();
        Pack {
            model: loaded.model,
            tokenizer: loaded.tokenizer,
            transcoders: loaded.dictionaries.into_iter().map(Arc::new).collect(),
        }
    })
}

const PROMPT: &str = "The jury said that the city of Atlanta";

fn graph(text: &str, options: &AttributionOptions) -> Graph {
    let pack = pack();
    let tokens = pack.tokenizer.encode_ids(text).unwrap();
    let replacement = Replacement::trace(&pack.model, &pack.transcoders, &tokens).unwrap();
    attribute(&pack.model, &replacement, options).unwrap()
}

#[test]
fn every_target_is_its_edges_plus_its_constant() {
    let graph = graph(PROMPT, &AttributionOptions::default());
    let n = graph.len();
    let mut checked = 0;
    let mut worst = 0.0_f32;
    for t in (0..n).filter(|&t| graph.is_target(t)) {
        let edges: f32 = (0..n).map(|s| graph.edge(s, t)).sum();
        let total = edges + graph.constants[t];
        let actual = graph.pre_activations[t];
        let error = (total - actual).abs() / actual.abs().max(1.0);
        worst = worst.max(error);
        assert!(
            error < 2e-3,
            "node {t} {:?}: edges {edges} + constant {} = {total}, actual {actual}",
            graph.nodes[t].kind,
            graph.constants[t]
        );
        checked += 1;
    }
    let logits = graph
        .nodes
        .iter()
        .filter(|n| matches!(n.kind, NodeKind::Logit { .. }))
        .count();
    assert!((1..=10).contains(&logits));
    // Every active feature of every block at every position, and the logits.
    let features = graph
        .nodes
        .iter()
        .filter(|n| matches!(n.kind, NodeKind::Feature { .. }))
        .count();
    assert_eq!(checked, features + logits);
    assert!(features >= 8 * 4 * 30, "{features} features");
    eprintln!("completeness: {checked} targets, worst relative error {worst:e}");
}

#[test]
fn edges_only_run_forward_in_layers_and_positions() {
    let graph = graph(PROMPT, &AttributionOptions::default());
    let n = graph.len();
    let place = |i: usize| match graph.nodes[i].kind {
        NodeKind::Feature {
            layer, position, ..
        }
        | NodeKind::Error { layer, position } => (Some(layer), position),
        NodeKind::Token { position, .. } | NodeKind::Position { position } => (None, position),
        NodeKind::Logit { .. } => (Some(usize::MAX), usize::MAX),
    };
    for t in 0..n {
        for s in 0..n {
            let e = graph.edge(s, t);
            if e == 0.0 {
                continue;
            }
            let ((tl, tp), (sl, sp)) = (place(t), place(s));
            assert!(graph.is_target(t), "edge into a source-only node {t}");
            assert!(sp <= tp, "edge from position {sp} to {tp}");
            // A source writes after its block's MLP: only later blocks read it.
            if let (Some(tl), Some(sl)) = (tl, sl) {
                assert!(sl < tl, "edge from block {sl} to block {tl}");
            }
        }
    }
}

#[test]
fn batching_does_not_change_the_graph() {
    let small = graph(
        "In the morning",
        &AttributionOptions {
            batch: 7,
            ..AttributionOptions::default()
        },
    );
    let large = graph(
        "In the morning",
        &AttributionOptions {
            batch: 4096,
            ..AttributionOptions::default()
        },
    );
    assert_eq!(small.nodes, large.nodes);
    let worst = small
        .adjacency
        .iter()
        .zip(&large.adjacency)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0_f32, f32::max);
    assert!(worst < 1e-4, "{worst}");
}

fn exported(text: &str, thresholds: Thresholds) -> (Graph, GraphFile) {
    let pack = pack();
    let graph = graph(text, &AttributionOptions::default());
    let pruned = Influence::of(&graph).prune(&graph, thresholds);
    let token_text = |t: u32| pack.tokenizer.token_text(t).unwrap();
    let label = |l: usize, f: usize| format!("feature {l}/{f}");
    let context = ExportContext {
        slug: "jury",
        scan: "brown",
        prompt: text,
        d_sae: 2048,
        n_layer: 4,
        token_text: &token_text,
        label: &label,
    };
    let file = GraphFile::export(&graph, &pruned, thresholds, &context);
    (graph, file)
}

#[test]
fn pruning_keeps_a_connected_core_that_thresholds_grow() {
    let graph = graph(PROMPT, &AttributionOptions::default());
    let influence = Influence::of(&graph);
    let kept = |t: Thresholds| influence.prune(&graph, t);
    let small = kept(Thresholds {
        nodes: 0.5,
        edges: 0.9,
    });
    let large = kept(Thresholds::default());
    let count = |p: &glassbox_circuits::Pruned| p.nodes.iter().filter(|&&k| k).count();
    assert!(
        count(&small) < count(&large) && count(&large) < graph.len(),
        "{} {} {}",
        count(&small),
        count(&large),
        graph.len()
    );
    for p in [&small, &large] {
        // Every kept edge joins kept nodes, and every kept feature sends and receives.
        for &(s, t, w) in &p.edges {
            assert!(p.nodes[s] && p.nodes[t] && w.to_bits() == graph.edge(s, t).to_bits());
        }
        for (i, node) in graph.nodes.iter().enumerate() {
            if p.nodes[i] && matches!(node.kind, NodeKind::Feature { .. }) {
                assert!(p.edges.iter().any(|e| e.0 == i) && p.edges.iter().any(|e| e.1 == i));
            }
        }
    }
    // The pruned graph's scores (influence recomputed on its sparse edges) are the whole
    // graph's when everything is kept; every score is a share.
    let everything = kept(Thresholds {
        nodes: 1.0,
        edges: 1.0,
    });
    let (whole, all) = (everything.scores.graph, everything.scores.pruned);
    assert!(
        (whole.replacement - all.replacement).abs() < 1e-5
            && (whole.completeness - all.completeness).abs() < 1e-5,
        "{whole:?} {all:?}"
    );
    assert_eq!(large.scores.graph, whole);
    for s in [whole, small.scores.pruned, large.scores.pruned] {
        assert!((0.0..=1.0).contains(&s.replacement) && (0.0..=1.0).contains(&s.completeness));
    }
    println!(
        "scores: whole {whole:?}, default thresholds {:?}, 0.5/0.9 {:?}",
        large.scores.pruned, small.scores.pruned
    );
}

#[test]
fn the_graph_file_round_trips_and_malformed_files_are_refused() {
    let (_, file) = exported(PROMPT, Thresholds::default());
    assert_eq!(file.metadata.prompt_tokens.concat(), PROMPT);
    assert!(
        file.nodes
            .iter()
            .any(|n| n.feature_type == "logit" && n.is_target_logit)
    );
    assert!(
        file.nodes
            .iter()
            .any(|n| n.feature_type == "cross layer transcoder")
    );
    let json = file.to_json().unwrap();
    let back = GraphFile::parse(&json).unwrap();
    assert_eq!(back, file);
    // The fields circuit-tracer and Neuronpedia read.
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    for key in ["metadata", "qParams", "nodes", "links"] {
        assert!(value.get(key).is_some(), "{key}");
    }
    let node = &value["nodes"][0];
    for key in [
        "node_id",
        "feature",
        "layer",
        "ctx_idx",
        "feature_type",
        "influence",
        "activation",
        "clerp",
    ] {
        assert!(node.get(key).is_some(), "{key}");
    }
    for key in ["source", "target", "weight"] {
        assert!(value["links"][0].get(key).is_some(), "{key}");
    }
    let broken = [
        json.replacen(
            "\"links\":[{\"source\":\"",
            "\"links\":[{\"source\":\"nowhere",
            1,
        ),
        json.replacen("\"prompt_tokens\"", "\"prompt_tokenz\"", 1),
        "{}".to_owned(),
        format!("{}]", &json[..json.len() / 2]),
    ];
    for bad in broken {
        assert!(GraphFile::parse(&bad).is_err());
    }
    let mut pinned = file.clone();
    pinned.q_params.pinned_ids.push("9_9_9".to_owned());
    let error = GraphFile::parse(&pinned.to_json().unwrap())
        .unwrap_err()
        .to_string();
    assert!(error.contains("9_9_9"), "{error}");
    // A layer of a million would draw a million rows: refused; so is a file that does not
    // fit the loaded model.
    let mut deep = file.clone();
    let feature = deep
        .nodes
        .iter_mut()
        .find(|n| n.feature_type == "cross layer transcoder")
        .unwrap();
    feature.layer = "1000000".to_owned();
    let error = GraphFile::parse(&deep.to_json().unwrap())
        .unwrap_err()
        .to_string();
    assert!(error.contains("layer 1000000"), "{error}");
    let blocks = back.blocks();
    back.check_fits(blocks, 128).unwrap();
    let error = back.check_fits(blocks - 1, 128).unwrap_err().to_string();
    assert!(
        error.contains(&format!("this model has {} blocks", blocks - 1)),
        "{error}"
    );
    let error = back.check_fits(blocks, 2).unwrap_err().to_string();
    assert!(error.contains("this model reads at most 2"), "{error}");
    let huge = " ".repeat(glassbox_circuits::MAX_FILE_BYTES + 1);
    let error = GraphFile::parse(&huge).unwrap_err().to_string();
    assert!(error.contains("graph files of at most"), "{error}");
}

/// Ablating a feature in the real model with attention patterns, LayerNorm scales and
/// every other MLP output frozen changes each centred logit by exactly minus the feature's
/// edge into it: the edges are the direct effects they claim to be.
#[test]
fn ablating_a_feature_with_everything_else_frozen_moves_the_logits_by_its_edges() {
    let pack = pack();
    let tokens = pack.tokenizer.encode_ids(PROMPT).unwrap();
    let replacement = Replacement::trace(&pack.model, &pack.transcoders, &tokens).unwrap();
    let graph = attribute(&pack.model, &replacement, &AttributionOptions::default()).unwrap();
    common::check_frozen_ablation(&pack.model, &pack.transcoders, &tokens, &graph, 1e-3);
}

/// With feature nodes capped, the graph keeps the most influential features and their
/// rows are the uncapped graph's rows; a cap of at least the active count changes nothing.
#[test]
fn capped_graphs_keep_influential_features_with_the_same_edges() {
    let full = graph(PROMPT, &AttributionOptions::default());
    let active = full.feature_nodes();
    assert_eq!(full.active_features, active);
    let capped_at = |cap: usize| {
        graph(
            PROMPT,
            &AttributionOptions {
                max_feature_nodes: Some(cap),
                ..AttributionOptions::default()
            },
        )
    };
    let same = capped_at(active + 5);
    assert_eq!(same.nodes, full.nodes);
    assert_eq!(same.adjacency, full.adjacency);

    let cap = active / 4;
    let capped = capped_at(cap);
    assert_eq!(capped.feature_nodes(), cap);
    assert_eq!(capped.active_features, active);
    let index_in_full = |kind: &NodeKind| full.nodes.iter().position(|n| n.kind == *kind).unwrap();
    let map: Vec<usize> = capped
        .nodes
        .iter()
        .map(|n| index_in_full(&n.kind))
        .collect();
    let mut worst = 0.0_f32;
    for t in (0..capped.len()).filter(|&t| capped.is_target(t)) {
        for s in 0..capped.len() {
            worst = worst.max((capped.edge(s, t) - full.edge(map[s], map[t])).abs());
        }
        assert!((capped.constants[t] - full.constants[map[t]]).abs() < 1e-3);
    }
    assert!(
        worst < 1e-4,
        "capped edges differ from the full graph's by {worst}"
    );
    // The chosen quarter holds most of the influence the best quarter would.
    let influence = Influence::of(&full);
    let mut best: Vec<f32> = (0..full.len())
        .filter(|&i| matches!(full.nodes[i].kind, NodeKind::Feature { .. }))
        .map(|i| influence.nodes[i])
        .collect();
    best.sort_by(|a, b| b.total_cmp(a));
    let best: f32 = best[..cap].iter().sum();
    let chosen: f32 = (0..capped.len())
        .filter(|&i| matches!(capped.nodes[i].kind, NodeKind::Feature { .. }))
        .map(|i| influence.nodes[map[i]])
        .sum();
    eprintln!("capped at {cap} of {active}: influence {chosen} of the best {best}");
    assert!(chosen >= 0.9 * best, "chosen {chosen}, best {best}");
}

#[test]
fn a_logit_difference_is_the_difference_of_the_two_logits_graphs() {
    let text = "The men said that they";
    let both = graph(
        text,
        &AttributionOptions {
            logit_probability: 1.0,
            ..AttributionOptions::default()
        },
    );
    let logit = |graph: &Graph, rank: usize| {
        let at = graph
            .nodes
            .iter()
            .position(|n| matches!(n.kind, NodeKind::Logit { .. }))
            .unwrap()
            + rank;
        let NodeKind::Logit { token, .. } = graph.nodes[at].kind else {
            panic!("node {at} is not a logit");
        };
        (at, token)
    };
    // The likeliest token against the second likeliest.
    let ((a, token), (b, versus)) = (logit(&both, 0), logit(&both, 1));
    let contrast = graph(
        text,
        &AttributionOptions {
            contrast: Some((token, versus)),
            ..AttributionOptions::default()
        },
    );
    let (d, _) = logit(&contrast, 0);
    assert_eq!(d, contrast.len() - 1, "one logit node, the last");
    assert!(matches!(
        contrast.nodes[d].kind,
        NodeKind::Logit { token: t, versus: Some(v), .. } if (t, v) == (token, versus)
    ));
    // Every other node is the same, with the same edges between them.
    assert_eq!(contrast.nodes[..d], both.nodes[..d]);
    let largest = both.adjacency.iter().fold(0.0_f32, |m, e| m.max(e.abs()));
    for t in 0..d {
        for s in 0..d {
            assert!((contrast.edge(s, t) - both.edge(s, t)).abs() <= 1e-6 * largest);
        }
    }
    // Each edge into the difference is the difference of the edges into the two logits.
    let mut worst = 0.0_f32;
    for s in 0..d {
        let expected = both.edge(s, a) - both.edge(s, b);
        worst = worst.max((contrast.edge(s, d) - expected).abs());
    }
    assert!(worst <= 1e-5 * largest, "worst {worst:e} of {largest}");
    let expected = both.pre_activations[a] - both.pre_activations[b];
    assert!((contrast.pre_activations[d] - expected).abs() < 1e-4);
    assert!((contrast.nodes[d].activation - expected).abs() < 1e-4);
    let edges: f32 = (0..d).map(|s| contrast.edge(s, d)).sum();
    assert!((edges + contrast.constants[d] - expected).abs() < 2e-3 * expected.abs().max(1.0));
    // A difference of a token with itself, or with a token outside the vocabulary, is
    // refused.
    let pack = pack();
    let tokens = pack.tokenizer.encode_ids(text).unwrap();
    let replacement = Replacement::trace(&pack.model, &pack.transcoders, &tokens).unwrap();
    for bad in [(token, token), (token, u32::MAX)] {
        let options = AttributionOptions {
            contrast: Some(bad),
            ..AttributionOptions::default()
        };
        let error = attribute(&pack.model, &replacement, &options).unwrap_err();
        assert!(
            error.to_string().contains("two different tokens"),
            "{error}"
        );
    }
}

/// One graph circuit-tracer made (`fixtures/make_circuit_tracer_fixture.py`).
struct TracerGraph {
    text: String,
    /// Its tokens, `<|endoftext|>` first.
    tokens: Vec<u32>,
    /// Its nodes in its order: features, errors (by block, then position), token
    /// embeddings, logits.
    nodes: Vec<NodeKind>,
    /// Per feature node, its activation.
    activations: Vec<f32>,
    /// Its logit nodes' tokens and probabilities.
    logits: Vec<(u32, f32)>,
    /// The rows of its adjacency kept (targets), and their values over every node.
    rows: Vec<usize>,
    adjacency: Vec<f32>,
    /// The largest edge of the whole graph.
    largest: f32,
}

/// The graphs circuit-tracer made on the default pack.
fn circuit_tracer_graphs(n_layer: usize) -> Vec<TracerGraph> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/circuit_tracer");
    let cpu = candle_core::Device::Cpu;
    let fixture = candle_core::safetensors::load(folder.join("graphs.safetensors"), &cpu).unwrap();
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("graphs.json")).unwrap())
            .unwrap();
    let ints = |key: String| -> Vec<usize> {
        let values: Vec<i64> = fixture[&key].flatten_all().unwrap().to_vec1().unwrap();
        values
            .into_iter()
            .map(|v| usize::try_from(v).unwrap())
            .collect()
    };
    let floats =
        |key: String| -> Vec<f32> { fixture[&key].flatten_all().unwrap().to_vec1().unwrap() };
    let token = |t: usize| u32::try_from(t).unwrap();
    let prompts = meta["prompts"].as_array().unwrap();
    prompts
        .iter()
        .enumerate()
        .map(|(i, prompt)| {
            let tokens: Vec<u32> = ints(format!("{i}.tokens")).into_iter().map(token).collect();
            let mut nodes: Vec<NodeKind> = ints(format!("{i}.features"))
                .chunks(3)
                .map(|f| NodeKind::Feature {
                    layer: f[0],
                    position: f[1],
                    feature: f[2],
                })
                .collect();
            for layer in 0..n_layer {
                nodes.extend((0..tokens.len()).map(|position| NodeKind::Error { layer, position }));
            }
            nodes.extend(
                tokens
                    .iter()
                    .enumerate()
                    .map(|(position, &token)| NodeKind::Token { position, token }),
            );
            let logits: Vec<(u32, f32)> = ints(format!("{i}.logit_tokens"))
                .into_iter()
                .map(token)
                .zip(floats(format!("{i}.logit_probabilities")))
                .collect();
            nodes.extend(logits.iter().map(|&(token, probability)| NodeKind::Logit {
                token,
                probability,
                versus: None,
            }));
            assert_eq!(nodes.len(), prompt["nodes"].as_u64().unwrap() as usize);
            TracerGraph {
                text: prompt["prompt"].as_str().unwrap().to_owned(),
                tokens,
                nodes,
                activations: floats(format!("{i}.activations")),
                logits,
                rows: ints(format!("{i}.rows")),
                adjacency: floats(format!("{i}.adjacency_rows")),
                largest: prompt["largest_edge"].as_f64().unwrap() as f32,
            }
        })
        .collect()
}

/// Glassbox's graph against circuit-tracer's, on the default pack (circuit-tracer 0.5.0
/// through TransformerLens, the same transcoders, the prompt begun with `<|endoftext|>`
/// and that position's features and errors left out, as `Replacement::leaving_out_first`
/// does): the same active features with the same activations, the same logit nodes with
/// the same probabilities, and every edge circuit-tracer has into a logit and into a
/// spread of features (from features, errors and token embeddings) equal to ours.
#[test]
fn the_graph_is_circuit_tracers() {
    let pack = pack();
    let mut worst_edge = 0.0_f32;
    for theirs in circuit_tracer_graphs(pack.model.dims().n_layer) {
        let text = &theirs.text;
        assert_eq!(
            theirs.tokens[0],
            pack.tokenizer.token_id("<|endoftext|>").unwrap()
        );
        assert_eq!(
            theirs.tokens[1..],
            pack.tokenizer.encode_ids(text).unwrap()[..]
        );
        let replacement = Replacement::trace(&pack.model, &pack.transcoders, &theirs.tokens)
            .unwrap()
            .leaving_out_first()
            .unwrap();
        let ours = attribute(&pack.model, &replacement, &AttributionOptions::default()).unwrap();
        // Logits match by token; the probability is part of a logit node's kind.
        let same = |a: &NodeKind, b: &NodeKind| match (a, b) {
            (NodeKind::Logit { token: x, .. }, NodeKind::Logit { token: y, .. }) => x == y,
            _ => a == b,
        };
        let index = |kind: &NodeKind| ours.nodes.iter().position(|n| same(&n.kind, kind));
        assert_eq!(
            theirs.activations.len(),
            ours.feature_nodes(),
            "{text}: features"
        );
        for (kind, activation) in theirs.nodes.iter().zip(&theirs.activations) {
            let mine = ours.nodes[index(kind).expect("a feature of theirs is ours")].activation;
            assert!(
                (mine - activation).abs() <= 1e-4 * activation.abs().max(1.0),
                "{text}: {kind:?}: {mine} {activation}"
            );
        }
        let our_logits: Vec<(u32, f32)> = ours
            .nodes
            .iter()
            .filter_map(|n| match n.kind {
                NodeKind::Logit {
                    token, probability, ..
                } => Some((token, probability)),
                _ => None,
            })
            .collect();
        assert_eq!(our_logits.len(), theirs.logits.len(), "{text}: logits");
        for (&(token, p), &(their_token, q)) in our_logits.iter().zip(&theirs.logits) {
            assert_eq!(token, their_token, "{text}");
            assert!((p - q).abs() < 1e-4, "{text}: {token} {p} {q}");
        }
        let total = theirs.nodes.len();
        for (r, &row) in theirs.rows.iter().enumerate() {
            let target = index(&theirs.nodes[row]).unwrap();
            for (column, source) in theirs.nodes.iter().enumerate() {
                let their_edge = theirs.adjacency[r * total + column];
                let mine = index(source).map_or(0.0, |s| ours.edge(s, target));
                let difference = (mine - their_edge).abs() / theirs.largest;
                worst_edge = worst_edge.max(difference);
                assert!(
                    difference < 5e-6,
                    "{text}: {source:?} → {:?}: ours {mine}, circuit-tracer's {their_edge}",
                    theirs.nodes[row]
                );
            }
        }
        assert!(theirs.rows.len() * total > 10_000);
    }
    eprintln!(
        "largest edge difference from circuit-tracer's: {worst_edge:.2e} of the largest edge"
    );
}

/// Polls as pending once before going on (another worker's answer not yet in).
async fn not_yet() {
    let mut polled = false;
    std::future::poll_fn(|cx| {
        if polled {
            std::task::Poll::Ready(())
        } else {
            polled = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}

/// Runs `future` to its end on this thread.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

/// Workers beside this one, each tracing the prompt on its own and answering after its
/// own number of polls (so batches come back out of order); lane `failing` always fails.
struct TestLanes {
    delays: Vec<usize>,
    failing: usize,
    busy: std::cell::RefCell<Vec<bool>>,
}

impl Lanes for TestLanes {
    fn count(&self) -> usize {
        self.delays.len()
    }

    fn take_free(&self) -> FreeLane<'_> {
        Box::pin(async move {
            not_yet().await;
            let mut busy = self.busy.borrow_mut();
            let free = busy.iter().position(|b| !b)?;
            busy[free] = true;
            Some(free)
        })
    }

    fn carry(&self, lane: usize, ids: &[u32], batch: Vec<Target>) -> LaneAnswer<'_> {
        let ids = ids.to_vec();
        Box::pin(async move {
            for _ in 0..self.delays[lane] {
                not_yet().await;
            }
            if lane == self.failing {
                // A lost worker is not offered again.
                return Err(CircuitError::Request("this worker was lost".to_owned()));
            }
            self.busy.borrow_mut()[lane] = false;
            let pack = pack();
            let replacement = Replacement::trace(&pack.model, &pack.transcoders, &ids)?;
            let sources = Sources::of(&replacement)?;
            let weights = FrozenWeights::of(&pack.model)?;
            let carrier = CpuCarrier::new(&weights, &replacement, &sources)?;
            carrier.carry(&batch.iter().collect::<Vec<_>>()).await
        })
    }
}

/// A graph whose batches are carried by several workers at once, finishing out of order,
/// one of them failing, is the single worker's graph number for number.
#[test]
fn batches_spread_over_workers_give_the_single_workers_graph() {
    let pack = pack();
    let ids = pack.tokenizer.encode_ids(PROMPT).unwrap();
    let replacement = Replacement::trace(&pack.model, &pack.transcoders, &ids).unwrap();
    let weights = FrozenWeights::of(&pack.model).unwrap();
    for max_feature_nodes in [None, Some(40)] {
        let options = AttributionOptions {
            batch: 8,
            max_feature_nodes,
            update_interval: 2,
            ..AttributionOptions::default()
        };
        let setup = Setup::of(&weights, &replacement, &options).unwrap();
        let alone = attribute(&pack.model, &replacement, &options).unwrap();
        let lanes = TestLanes {
            delays: vec![3, 0, 7],
            failing: 1,
            busy: std::cell::RefCell::new(vec![false; 3]),
        };
        let local = CpuCarrier::new(&weights, &replacement, &setup.sources).unwrap();
        let spread = Spread::new(local, &lanes, &ids);
        assert_eq!(spread.lanes(), 4);
        let together = block_on(attribute_with(&setup, &replacement, &spread, &options)).unwrap();
        assert_eq!(together.nodes, alone.nodes);
        assert_eq!(together.constants, alone.constants);
        assert_eq!(together.adjacency, alone.adjacency);
        let carried = spread.carried();
        eprintln!("batches carried (this worker, then each lane): {carried:?}");
        assert_eq!(carried[2], 0, "the failing lane carried nothing");
        assert!(
            carried[0] > 0 && carried[1] > 0 && carried[3] > 0,
            "{carried:?}"
        );
    }
}
