//! Attribution graphs on the committed default pack: each target's incoming edges plus
//! its constant add up to its pre-activation in the real model (completeness).
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use glassbox_circuits::{AttributionOptions, Graph, NodeKind, Replacement, attribute};
use glassbox_dict::Dictionary;
use glassbox_model::{Gpt2, Tokenizer};
use glassbox_pack::dir;

struct Pack {
    model: Gpt2,
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
