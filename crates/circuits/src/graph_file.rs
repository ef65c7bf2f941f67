//! Graphs in the JSON that circuit-tracer writes and Neuronpedia reads: `metadata`
//! (prompt and its tokens), `qParams` (pinned nodes, supernodes), `nodes` and `links`.
//! Graphs computed here export to it; such files (ours, or circuit-tracer's) import back
//! for viewing, checked so that a malformed file is an error, never a broken view.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::error::{CircuitError, Result};
use crate::graph::{Graph, NodeKind};
use crate::prune::{Pruned, Scores, Thresholds};

/// A graph file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphFile {
    /// What was attributed.
    pub metadata: Metadata,
    /// The view's state: pinned nodes and supernodes.
    #[serde(rename = "qParams", default)]
    pub q_params: QParams,
    /// The nodes.
    pub nodes: Vec<FileNode>,
    /// The edges.
    pub links: Vec<Link>,
}

/// The `metadata` block.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// A short name for the graph.
    pub slug: String,
    /// The model and dictionaries it was computed on.
    pub scan: String,
    /// The dictionaries, by name.
    #[serde(default)]
    pub transcoder_list: Vec<String>,
    /// Each prompt token as text.
    pub prompt_tokens: Vec<String>,
    /// The prompt.
    pub prompt: String,
    /// The node threshold pruning used.
    #[serde(default)]
    pub node_threshold: Option<f32>,
    /// The edge threshold pruning used (ours; circuit-tracer does not write it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge_threshold: Option<f32>,
    /// Features active on the prompt (ours): more than the graph's feature nodes when
    /// only the most influential were attributed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_features: Option<usize>,
    /// Replacement and completeness scores (circuit-tracer's definitions) of the whole
    /// graph and of the pruned one this file holds (ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scores: Option<Scores>,
    /// The kinds of input node the graph has (ours): `token embeddings`, and `position
    /// embeddings` (`P_{position}`) for a model that adds them, which circuit-tracer's
    /// graphs leave out (its inputs are the token embeddings alone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input_nodes: Vec<String>,
}

/// The `qParams` block.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QParams {
    /// Pinned node ids.
    #[serde(rename = "pinnedIds", default)]
    pub pinned_ids: Vec<String>,
    /// Supernodes: a label, then the ids of the nodes grouped under it.
    #[serde(default)]
    pub supernodes: Vec<Vec<String>>,
    /// Which links the view shows.
    #[serde(rename = "linkType", default)]
    pub link_type: String,
    /// The clicked node's id.
    #[serde(rename = "clickedId", default)]
    pub clicked_id: String,
    /// The subgraph's layout.
    #[serde(default)]
    pub sg_pos: String,
}

/// One node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileNode {
    /// Its id, unique in the file: `{layer}_{feature}_{position}` for a feature,
    /// `error_{layer}_{position}` for an error (circuit-tracer's `0_{layer}_{position}`
    /// would collide with block 0's features), `E_{token}_{position}` for a token
    /// embedding, `P_{position}` for a position embedding, `{layers + 1}_{token}_{position}`
    /// for a logit.
    pub node_id: String,
    /// A feature's number (offset by its layer), a logit's token, an embedding's position.
    pub feature: i64,
    /// The layer as text (`E` for embeddings, one past the last block for logits).
    pub layer: String,
    /// The token position.
    pub ctx_idx: usize,
    /// `cross layer transcoder`, `mlp reconstruction error`, `embedding` or `logit`.
    pub feature_type: String,
    /// A logit's probability.
    #[serde(default)]
    pub token_prob: f32,
    /// Whether this is the likeliest logit.
    #[serde(default)]
    pub is_target_logit: bool,
    /// Unused here; kept for the format.
    #[serde(default)]
    pub run_idx: u32,
    /// Unused here; kept for the format.
    #[serde(default)]
    pub reverse_ctx_idx: u32,
    /// The id Neuronpedia's view uses.
    #[serde(rename = "jsNodeId", default)]
    pub js_node_id: String,
    /// Its label.
    #[serde(default)]
    pub clerp: String,
    /// The share of all influence held by nodes at least as influential.
    #[serde(default)]
    pub influence: Option<f32>,
    /// Its activation.
    #[serde(default)]
    pub activation: Option<f32>,
}

/// One edge: the source's direct effect on the target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// The source's node id.
    pub source: String,
    /// The target's node id.
    pub target: String,
    /// The effect.
    pub weight: f32,
}

impl Link {
    /// The edge from `source` to `target` of weight `weight`.
    #[must_use]
    pub fn new(source: &str, target: &str, weight: f32) -> Self {
        Self {
            source: source.to_owned(),
            target: target.to_owned(),
            weight,
        }
    }
}

/// What an export needs to know besides the graph.
pub struct ExportContext<'a> {
    /// A short name for the graph.
    pub slug: &'a str,
    /// The model and dictionaries, e.g. the pack's name.
    pub scan: &'a str,
    /// The prompt.
    pub prompt: &'a str,
    /// Features per transcoder (for the layer offset of feature numbers).
    pub d_sae: usize,
    /// Blocks in the model.
    pub n_layer: usize,
    /// How a token reads.
    pub token_text: &'a dyn Fn(u32) -> String,
    /// A feature's label, by layer and feature.
    pub label: &'a dyn Fn(usize, usize) -> String,
}

impl GraphFile {
    /// The kept part of `graph` as a file.
    #[must_use]
    pub fn export(
        graph: &Graph,
        pruned: &Pruned,
        thresholds: Thresholds,
        context: &ExportContext<'_>,
    ) -> Self {
        // Feature numbers are offset by layer × the smallest power of ten ≥ d_sae.
        let mut offset = 1_i64;
        while offset < count(context.d_sae) {
            offset *= 10;
        }
        let last = graph.tokens.len().saturating_sub(1);
        let ids: Vec<String> = graph
            .nodes
            .iter()
            .map(|n| node_id(&n.kind, context.n_layer, last))
            .collect();
        let top_logit = graph
            .nodes
            .iter()
            .position(|n| matches!(n.kind, NodeKind::Logit { .. }));
        let nodes = graph
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| pruned.nodes[*i])
            .map(|(i, node)| {
                let (feature, layer, ctx_idx, feature_type, js, clerp) =
                    describe(&node.kind, context, offset, last);
                FileNode {
                    node_id: ids[i].clone(),
                    feature,
                    layer,
                    ctx_idx,
                    feature_type: feature_type.to_owned(),
                    token_prob: match node.kind {
                        NodeKind::Logit { probability, .. } => probability,
                        _ => 0.0,
                    },
                    is_target_logit: Some(i) == top_logit,
                    run_idx: 0,
                    reverse_ctx_idx: 0,
                    js_node_id: js,
                    clerp,
                    influence: Some(pruned.cumulative[i]),
                    activation: Some(node.activation),
                }
            })
            .collect();
        let links = pruned
            .edges
            .iter()
            .map(|&(s, t, weight)| Link {
                source: ids[s].clone(),
                target: ids[t].clone(),
                weight,
            })
            .collect();
        Self {
            metadata: Metadata {
                slug: context.slug.to_owned(),
                scan: context.scan.to_owned(),
                transcoder_list: Vec::new(),
                prompt_tokens: graph
                    .tokens
                    .iter()
                    .map(|&t| (context.token_text)(t))
                    .collect(),
                prompt: context.prompt.to_owned(),
                node_threshold: Some(thresholds.nodes),
                edge_threshold: Some(thresholds.edges),
                active_features: Some(graph.active_features),
                scores: Some(pruned.scores),
                input_nodes: input_nodes(graph),
            },
            q_params: QParams {
                link_type: "both".to_owned(),
                ..QParams::default()
            },
            nodes,
            links,
        }
    }

    /// The file as JSON.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(self)
            .map_err(|e| CircuitError::Request(format!("cannot write the graph: {e}")))
    }

    /// Reads a graph file, refusing one whose links or pins name nodes it does not have,
    /// whose node ids repeat, or whose numbers are not finite.
    pub fn parse(json: &str) -> Result<Self> {
        if json.len() > MAX_FILE_BYTES {
            return Err(CircuitError::Request(format!(
                "the file is {} bytes; graph files of at most {MAX_FILE_BYTES} are read",
                json.len()
            )));
        }
        let file: Self = serde_json::from_str(json)
            .map_err(|e| CircuitError::Request(format!("not a graph file: {e}")))?;
        for (what, count, most) in [
            ("nodes", file.nodes.len(), MAX_FILE_NODES),
            ("links", file.links.len(), MAX_FILE_LINKS),
            (
                "prompt tokens",
                file.metadata.prompt_tokens.len(),
                MAX_FILE_TOKENS,
            ),
        ] {
            if count > most {
                return Err(CircuitError::Request(format!(
                    "the file has {count} {what}; at most {most} are read"
                )));
            }
        }
        let mut ids = HashSet::with_capacity(file.nodes.len());
        for node in &file.nodes {
            if !ids.insert(node.node_id.as_str()) {
                return Err(CircuitError::Request(format!(
                    "node id {:?} appears twice",
                    node.node_id
                )));
            }
            let numbers = [node.influence, node.activation, Some(node.token_prob)];
            if numbers.iter().flatten().any(|x| !x.is_finite()) {
                return Err(CircuitError::Request(format!(
                    "node {:?} has a number that is not finite",
                    node.node_id
                )));
            }
            if node.layer.parse::<u64>().is_ok_and(|l| l > MAX_FILE_LAYERS) {
                return Err(CircuitError::Request(format!(
                    "node {:?} is in layer {}; graphs of at most {MAX_FILE_LAYERS} layers are read",
                    node.node_id, node.layer
                )));
            }
            if node.ctx_idx >= file.metadata.prompt_tokens.len().max(1) {
                return Err(CircuitError::Request(format!(
                    "node {:?} is at position {}, but the prompt has {} tokens",
                    node.node_id,
                    node.ctx_idx,
                    file.metadata.prompt_tokens.len()
                )));
            }
        }
        for link in &file.links {
            for end in [&link.source, &link.target] {
                if !ids.contains(end.as_str()) {
                    return Err(CircuitError::Request(format!(
                        "a link names node {end:?}, which the file does not have"
                    )));
                }
            }
            if !link.weight.is_finite() {
                return Err(CircuitError::Request(format!(
                    "the link {} → {} has weight {}",
                    link.source, link.target, link.weight
                )));
            }
        }
        let named = file.q_params.pinned_ids.iter().chain(
            file.q_params
                .supernodes
                .iter()
                .flat_map(|s| s.iter().skip(1)),
        );
        for id in named {
            if !ids.contains(id.as_str()) {
                return Err(CircuitError::Request(format!(
                    "a pin or supernode names node {id:?}, which the file does not have"
                )));
            }
        }
        Ok(file)
    }
}

impl GraphFile {
    /// Checks that the graph fits a model of `blocks` blocks and a context of `context`
    /// tokens (the pack loaded), naming what does not.
    pub fn check_fits(&self, blocks: usize, context: usize) -> Result<()> {
        let tokens = self.metadata.prompt_tokens.len();
        if tokens > context {
            return Err(CircuitError::Request(format!(
                "its prompt has {tokens} tokens; this model reads at most {context}"
            )));
        }
        for node in &self.nodes {
            let layer = node.layer.parse::<usize>().ok();
            let fits = match node.feature_type.as_str() {
                "logit" => layer.is_none_or(|l| l <= blocks + 1),
                _ => layer.is_none_or(|l| l < blocks),
            };
            if !fits {
                return Err(CircuitError::Request(format!(
                    "node {:?} is in layer {}, but this model has {blocks} blocks",
                    node.node_id, node.layer
                )));
            }
        }
        Ok(())
    }
}

/// The largest graph file read, in bytes.
pub const MAX_FILE_BYTES: usize = 64 << 20;
/// The most nodes a graph file may have.
pub const MAX_FILE_NODES: usize = 100_000;
/// The most links a graph file may have.
pub const MAX_FILE_LINKS: usize = 2_000_000;
/// The most prompt tokens a graph file may have.
pub const MAX_FILE_TOKENS: usize = 8192;
/// The highest layer number a graph file's node may have.
pub const MAX_FILE_LAYERS: u64 = 1024;

/// `feature_type` of a transcoder feature (circuit-tracer's name for it).
pub const TRANSCODER_FEATURE: &str = "cross layer transcoder";
/// `feature_type` of a transcoder's error node.
pub const TRANSCODER_ERROR: &str = "mlp reconstruction error";
/// `feature_type` of a logit node.
pub const LOGIT: &str = "logit";

impl FileNode {
    /// A transcoder feature's block and index, from its id `{layer}_{feature}_{position}`.
    #[must_use]
    pub fn transcoder_feature(&self) -> Option<(usize, usize)> {
        if self.feature_type != TRANSCODER_FEATURE {
            return None;
        }
        let mut parts = self.node_id.split('_');
        let layer = parts.next()?.parse().ok()?;
        let feature = parts.next()?.parse().ok()?;
        Some((layer, feature))
    }

    /// A transcoder error node's block, from its id `error_{layer}_{position}`.
    #[must_use]
    pub fn error_layer(&self) -> Option<usize> {
        if self.feature_type != TRANSCODER_ERROR {
            return None;
        }
        self.node_id
            .strip_prefix("error_")?
            .split('_')
            .next()?
            .parse()
            .ok()
    }
}

/// A node's `feature`, `layer`, `ctx_idx`, `feature_type`, `jsNodeId` and `clerp`.
fn describe(
    kind: &NodeKind,
    context: &ExportContext<'_>,
    offset: i64,
    last: usize,
) -> (i64, String, usize, &'static str, String, String) {
    match *kind {
        NodeKind::Feature {
            layer,
            position,
            feature,
        } => (
            count(feature) + offset * count(layer),
            layer.to_string(),
            position,
            TRANSCODER_FEATURE,
            format!("{layer}_{feature}-0"),
            (context.label)(layer, feature),
        ),
        NodeKind::Error { layer, position } => (
            -1,
            layer.to_string(),
            position,
            TRANSCODER_ERROR,
            format!("{layer}_{position}-0"),
            format!("error of block {layer}'s transcoder"),
        ),
        NodeKind::Token { position, token } => (
            count(position),
            "E".to_owned(),
            position,
            "embedding",
            format!("E_{token}-{position}"),
            format!("token {:?}", (context.token_text)(token)),
        ),
        NodeKind::Position { position } => (
            count(position),
            "E".to_owned(),
            position,
            "embedding",
            format!("P-{position}"),
            format!("position {position}"),
        ),
        NodeKind::Logit {
            token,
            probability,
            versus,
        } => (
            i64::from(token),
            (context.n_layer + 1).to_string(),
            last,
            "logit",
            format!("L_{token}-{last}"),
            match versus {
                None => format!(
                    "Output {:?} (p={probability:.3})",
                    (context.token_text)(token)
                ),
                Some(versus) => format!(
                    "Output {:?} rather than {:?} (logit difference; p={probability:.3})",
                    (context.token_text)(token),
                    (context.token_text)(versus)
                ),
            },
        ),
    }
}

fn count(x: usize) -> i64 {
    i64::try_from(x).unwrap_or(i64::MAX)
}

/// The kinds of input node `graph` has, as [`Metadata::input_nodes`] names them.
fn input_nodes(graph: &Graph) -> Vec<String> {
    let has = |wanted: fn(&NodeKind) -> bool| graph.nodes.iter().any(|n| wanted(&n.kind));
    [
        (
            has(|k| matches!(k, NodeKind::Token { .. })),
            "token embeddings",
        ),
        (
            has(|k| matches!(k, NodeKind::Position { .. })),
            "position embeddings",
        ),
    ]
    .into_iter()
    .filter(|(present, _)| *present)
    .map(|(_, name)| name.to_owned())
    .collect()
}

/// A node's id in the file format of a graph over `n_layer` blocks whose last position is
/// `last` ([`FileNode::transcoder_feature`] and [`FileNode::error_layer`] read it back).
#[must_use]
pub fn node_id(kind: &NodeKind, n_layer: usize, last: usize) -> String {
    match *kind {
        NodeKind::Feature {
            layer,
            position,
            feature,
        } => format!("{layer}_{feature}_{position}"),
        NodeKind::Error { layer, position } => format!("error_{layer}_{position}"),
        NodeKind::Token { position, token } => format!("E_{token}_{position}"),
        NodeKind::Position { position } => format!("P_{position}"),
        NodeKind::Logit { token, .. } => format!("{}_{token}_{last}", n_layer + 1),
    }
}
