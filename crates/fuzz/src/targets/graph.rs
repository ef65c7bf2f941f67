//! `graph-json`: an imported graph file through `GraphFile::parse`, then what the circuit
//! view does with one: checks it fits the model, reads its view (pins, supernodes), builds
//! the subgraph, reads node ids back, and exports it again.
//!
//! The repository commits no graph file (tests make them), so the seed is a small one
//! written by hand in the format `GraphFile::export` writes.

use glassbox_circuits::{GraphFile, row_of};

use super::{Target, text};
use crate::Behaviour;

/// A two-block graph of a three-token prompt: embeddings, features, an error, a logit,
/// links between them, a pin and a supernode.
const SEED: &str = r#"{
  "metadata": {"slug": "jury", "scan": "brown", "transcoder_list": ["layer_0", "layer_1"],
    "prompt_tokens": ["The", " jury", " said"], "prompt": "The jury said",
    "node_threshold": 0.8, "edge_threshold": 0.98, "active_features": 40},
  "qParams": {"pinnedIds": ["1_7_2", "3_262_2"], "supernodes": [["say", "0_12_1", "1_7_2"]],
    "linkType": "both", "clickedId": "1_7_2", "sg_pos": ""},
  "nodes": [
    {"node_id": "E_464_0", "feature": 0, "layer": "E", "ctx_idx": 0, "feature_type": "embedding",
      "jsNodeId": "E_464-0", "clerp": "token \"The\"", "influence": 0.1, "activation": null},
    {"node_id": "P_1", "feature": 1, "layer": "E", "ctx_idx": 1, "feature_type": "embedding",
      "jsNodeId": "P-1", "clerp": "position 1"},
    {"node_id": "0_12_1", "feature": 12, "layer": "0", "ctx_idx": 1,
      "feature_type": "cross layer transcoder", "jsNodeId": "0_12-0", "clerp": "jury",
      "influence": 0.4, "activation": 2.5},
    {"node_id": "error_0_2", "feature": -1, "layer": "0", "ctx_idx": 2,
      "feature_type": "mlp reconstruction error", "jsNodeId": "0_2-0", "clerp": "error"},
    {"node_id": "1_7_2", "feature": 2055, "layer": "1", "ctx_idx": 2,
      "feature_type": "cross layer transcoder", "jsNodeId": "1_7-0", "clerp": "say",
      "influence": 0.6, "activation": 1.25},
    {"node_id": "3_262_2", "feature": 262, "layer": "3", "ctx_idx": 2, "feature_type": "logit",
      "token_prob": 0.45, "is_target_logit": true, "jsNodeId": "L_262-2", "clerp": "Output \" that\""}
  ],
  "links": [
    {"source": "E_464_0", "target": "0_12_1", "weight": 0.5},
    {"source": "P_1", "target": "0_12_1", "weight": -0.25},
    {"source": "0_12_1", "target": "1_7_2", "weight": 1.5},
    {"source": "error_0_2", "target": "1_7_2", "weight": 0.125},
    {"source": "1_7_2", "target": "3_262_2", "weight": 2.0}
  ]
}"#;

pub(super) fn target() -> Target {
    Target {
        name: "graph-json",
        text: true,
        seeds: vec![SEED.as_bytes().to_vec()],
        run: Box::new(run),
    }
}

fn run(input: &[u8]) -> Behaviour {
    let mut b = Behaviour::default();
    let Some(file) = b.stage("parse", GraphFile::parse(&text(input))) else {
        return b;
    };
    b.stage("fits", file.check_fits(4, 128));
    let supernodes = file.supernodes();
    let pinned = &file.q_params.pinned_ids;
    let subgraph = file.subgraph(pinned, &supernodes);
    b.note(if subgraph.nodes.is_empty() {
        "empty subgraph"
    } else {
        "subgraph"
    });
    let blocks = file.blocks();
    for node in &file.nodes {
        let _ = (
            node.transcoder_feature(),
            node.error_layer(),
            row_of(node, blocks),
        );
    }
    let clicked = file.q_params.clicked_id.clone();
    b.stage(
        "export",
        file.with_view(pinned, &supernodes, &clicked).to_json(),
    );
    b
}
