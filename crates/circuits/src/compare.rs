//! Two prompts' graphs side by side ("John gave a drink to" against "Mary gave a drink
//! to"): their transcoder features and errors matched by block, feature and token
//! position counted from the end of each prompt (where the next token is predicted, so
//! prompts of different lengths line up on their last words), each match saying whether
//! the node appears, vanishes, flips the sign of its direct effect on the output, or stays.

use std::collections::BTreeMap;

use crate::graph_file::{FileNode, GraphFile, LOGIT, TRANSCODER_ERROR, TRANSCODER_FEATURE};

/// What became of a node from the first graph to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Only in the second graph.
    Appears,
    /// Only in the first graph.
    Vanishes,
    /// In both, its direct effect on the output of opposite signs.
    FlipsSign,
    /// In both, of the same sign.
    Stays,
}

/// A node as one graph has it.
#[derive(Debug, Clone, PartialEq)]
pub struct Side {
    /// Its id in that graph.
    pub node_id: String,
    /// Its label.
    pub clerp: String,
    /// Its activation (features).
    pub activation: Option<f32>,
    /// Its direct effect on the output: the sum of its edges into logit nodes.
    pub output_effect: f32,
    /// The graph's cumulative influence at the node (smaller: more influential).
    pub influence: Option<f32>,
}

/// One matched place: a block's feature or error at a position from the end.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeMatch {
    /// The block.
    pub layer: usize,
    /// The feature; `None` for the block's transcoder error.
    pub feature: Option<usize>,
    /// The token position counted from the end (0: the last token).
    pub from_end: usize,
    /// The node in the first graph, if it has it.
    pub first: Option<Side>,
    /// The node in the second graph, if it has it.
    pub second: Option<Side>,
}

impl NodeMatch {
    /// What became of it.
    #[must_use]
    pub fn change(&self) -> Change {
        match (&self.first, &self.second) {
            (None, _) => Change::Appears,
            (_, None) => Change::Vanishes,
            (Some(a), Some(b)) if a.output_effect * b.output_effect < 0.0 => Change::FlipsSign,
            _ => Change::Stays,
        }
    }

    /// How influential it is in whichever graph makes it most so (smaller: more).
    fn rank(&self) -> f32 {
        [&self.first, &self.second]
            .into_iter()
            .flatten()
            .filter_map(|s| s.influence)
            .fold(f32::INFINITY, f32::min)
    }
}

/// `first` and `second` matched: every feature and error node of either, most
/// influential first.
#[must_use]
pub fn compare(first: &GraphFile, second: &GraphFile) -> Vec<NodeMatch> {
    let mut matches: BTreeMap<(usize, Option<usize>, usize), NodeMatch> = BTreeMap::new();
    for (graph, is_first) in [(first, true), (second, false)] {
        let last = graph.metadata.prompt_tokens.len().saturating_sub(1);
        let effects = output_effects(graph);
        for node in &graph.nodes {
            let Some((layer, feature)) = place(node) else {
                continue;
            };
            let from_end = last.saturating_sub(node.ctx_idx);
            let side = Side {
                node_id: node.node_id.clone(),
                clerp: node.clerp.clone(),
                activation: node.activation,
                output_effect: effects.get(node.node_id.as_str()).copied().unwrap_or(0.0),
                influence: node.influence,
            };
            let entry = matches
                .entry((layer, feature, from_end))
                .or_insert_with(|| NodeMatch {
                    layer,
                    feature,
                    from_end,
                    first: None,
                    second: None,
                });
            if is_first {
                entry.first = Some(side);
            } else {
                entry.second = Some(side);
            }
        }
    }
    let mut matches: Vec<NodeMatch> = matches.into_values().collect();
    matches.sort_by(|a, b| a.rank().total_cmp(&b.rank()));
    matches
}

/// A feature's block and number, or an error's block and `None`; `None` for other nodes.
fn place(node: &FileNode) -> Option<(usize, Option<usize>)> {
    match node.feature_type.as_str() {
        TRANSCODER_FEATURE => node.transcoder_feature().map(|(l, f)| (l, Some(f))),
        TRANSCODER_ERROR => node.error_layer().map(|l| (l, None)),
        _ => None,
    }
}

/// Each node's summed edge weight into the graph's logit nodes.
fn output_effects(graph: &GraphFile) -> BTreeMap<&str, f32> {
    let logits: Vec<&str> = graph
        .nodes
        .iter()
        .filter(|n| n.feature_type == LOGIT)
        .map(|n| n.node_id.as_str())
        .collect();
    let mut effects = BTreeMap::new();
    for link in &graph.links {
        if logits.contains(&link.target.as_str()) {
            *effects.entry(link.source.as_str()).or_insert(0.0) += link.weight;
        }
    }
    effects
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph_file::{Link, Metadata, QParams};

    fn node(id: &str, kind: &str, position: usize, influence: f32) -> FileNode {
        FileNode {
            node_id: id.to_owned(),
            feature_type: kind.to_owned(),
            ctx_idx: position,
            influence: Some(influence),
            activation: Some(1.0),
            ..FileNode::default()
        }
    }

    fn graph(tokens: usize, nodes: Vec<FileNode>, links: &[(&str, &str, f32)]) -> GraphFile {
        GraphFile {
            metadata: Metadata {
                prompt_tokens: vec!["t".to_owned(); tokens],
                ..Metadata::default()
            },
            nodes,
            links: links.iter().map(|&(s, t, w)| Link::new(s, t, w)).collect(),
            q_params: QParams::default(),
        }
    }

    #[test]
    fn nodes_match_by_block_feature_and_position_from_the_end() {
        // The first prompt has 3 tokens, the second 4: position 2 of the first and 3 of
        // the second are both the last token.
        let first = graph(
            3,
            vec![
                node("0_5_2", TRANSCODER_FEATURE, 2, 0.1),
                node("1_7_1", TRANSCODER_FEATURE, 1, 0.3),
                node("error_1_2", TRANSCODER_ERROR, 2, 0.5),
                node("0_9_2", TRANSCODER_FEATURE, 2, 0.6),
                node("E_3_2", "embedding", 2, 0.9),
                node("5_12_2", LOGIT, 2, 0.0),
            ],
            &[
                ("0_5_2", "5_12_2", 0.5),
                ("0_9_2", "5_12_2", 0.25),
                ("error_1_2", "5_12_2", -0.1),
                ("1_7_1", "0_5_2", 2.0),
            ],
        );
        let second = graph(
            4,
            vec![
                node("0_5_3", TRANSCODER_FEATURE, 3, 0.2),
                node("2_4_0", TRANSCODER_FEATURE, 0, 0.05),
                node("error_1_3", TRANSCODER_ERROR, 3, 0.4),
                node("0_9_3", TRANSCODER_FEATURE, 3, 0.7),
                node("5_30_3", LOGIT, 3, 0.0),
            ],
            &[
                ("0_5_3", "5_30_3", 0.75),
                ("0_9_3", "5_30_3", -0.5),
                ("error_1_3", "5_30_3", -0.2),
            ],
        );
        let matches = compare(&first, &second);
        let summary: Vec<(usize, Option<usize>, usize, Change)> = matches
            .iter()
            .map(|m| (m.layer, m.feature, m.from_end, m.change()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (2, Some(4), 3, Change::Appears),
                (0, Some(5), 0, Change::Stays),
                (1, Some(7), 1, Change::Vanishes),
                (1, None, 0, Change::Stays),
                (0, Some(9), 0, Change::FlipsSign),
            ]
        );
        let kept = &matches[1];
        assert_eq!(kept.first.as_ref().unwrap().node_id, "0_5_2");
        assert_eq!(kept.second.as_ref().unwrap().node_id, "0_5_3");
        assert!((kept.first.as_ref().unwrap().output_effect - 0.5).abs() < 1e-6);
        // An edge into another feature is not an effect on the output.
        assert!(matches[2].first.as_ref().unwrap().output_effect.abs() < f32::EPSILON);
        // A graph against itself: everything stays.
        assert!(
            compare(&first, &first)
                .iter()
                .all(|m| m.change() == Change::Stays)
        );
    }
}
