//! Attribution graphs on a Llama: SmolLM2-135M (`RMSNorm`, rotary positions, key/value
//! heads shared by three query heads each; the GGUF that `cargo xtask models` fetches)
//! with a random transcoder per block. The graph is exact for its replacement model:
//! every target is its edges plus its constant, and taking one feature's write out with
//! attention and norms frozen moves every logit by minus its edge.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

mod common;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use glassbox_circuits::{AttributionOptions, Graph, NodeKind, Replacement, attribute};
use glassbox_dict::{Dictionary, Spread};
use glassbox_model::{Model, Tokenizer};

const PROMPT: &str = "When Mary and John went to the store, John gave a drink to";

struct Setup {
    model: Model,
    tokenizer: Tokenizer,
    transcoders: Vec<Arc<Dictionary>>,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let folder = std::env::var_os("GLASSBOX_MODELS").map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/models"),
            PathBuf::from,
        );
        let path = folder.join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; `cargo xtask models` fetches it", path.display()));
        let (model, tokenizer) = Model::from_gguf("SmolLM2", &bytes).unwrap();
        let dims = model.dims();
        let transcoders = (0..dims.n_layer)
            .map(|l| {
                let seed = 100 + l as u64;
                Dictionary::seeded_topk(dims.d_model, 64, 6, seed, Spread::SMALL, Some(l))
            })
            .map(|d| Arc::new(d.unwrap()))
            .collect();
        Setup {
            model,
            tokenizer,
            transcoders,
        }
    })
}

/// The prompt's tokens and graph, computed once for both tests.
fn graph() -> &'static (Vec<u32>, Graph) {
    static GRAPH: OnceLock<(Vec<u32>, Graph)> = OnceLock::new();
    GRAPH.get_or_init(|| {
        let s = setup();
        let tokens = s.tokenizer.encode_ids(PROMPT).unwrap();
        let replacement = Replacement::trace(&s.model, &s.transcoders, &tokens).unwrap();
        let graph = attribute(&s.model, &replacement, &AttributionOptions::default()).unwrap();
        (tokens, graph)
    })
}

#[test]
fn every_target_is_its_edges_plus_its_constant() {
    let (tokens, graph) = graph();
    let n = graph.len();
    let mut checked = 0;
    for t in (0..n).filter(|&t| graph.is_target(t)) {
        let edges: f32 = (0..n).map(|s| graph.edge(s, t)).sum();
        let total = edges + graph.constants[t];
        let actual = graph.pre_activations[t];
        let error = (total - actual).abs() / actual.abs().max(1.0);
        assert!(
            error < 2e-3,
            "node {t} {:?}: edges {edges} + constant {} = {total}, actual {actual}",
            graph.nodes[t].kind,
            graph.constants[t]
        );
        checked += 1;
    }
    let features = graph.feature_nodes();
    assert!(features >= 30 * tokens.len(), "{features} features");
    assert!(checked > features, "the logits are targets too");
    assert!(
        !graph
            .nodes
            .iter()
            .any(|n| matches!(n.kind, NodeKind::Position { .. })),
        "a Llama has no position embeddings to be nodes"
    );
}

#[test]
fn ablating_a_feature_with_everything_else_frozen_moves_the_logits_by_its_edges() {
    let s = setup();
    let (tokens, graph) = graph();
    common::check_frozen_ablation(&s.model, &s.transcoders, tokens, graph, 2e-3);
}
