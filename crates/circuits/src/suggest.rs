//! Suggested supernodes: transcoder features of a graph that play the same role. Two
//! features are alike when they sit on the same token, send their influence to the same
//! places (the cosine of their outgoing edge profiles, each a vector over the graph's
//! nodes of the edge weights into them) and write the same direction (the cosine of
//! their decoder vectors, which the caller gives: the graph file does not hold them).
//! Groups grow greedily from the most influential feature not yet grouped, taking every
//! feature on its token alike to it. A person accepts, renames or rejects each
//! suggestion; nothing is grouped without them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::graph_file::{FileNode, GraphFile, TRANSCODER_FEATURE};

/// How alike two features must be to be grouped: the cosines of their outgoing edge
/// profiles and of their decoder vectors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Alike {
    /// The least cosine of the edge profiles.
    pub edges: f32,
    /// The least cosine of the decoder vectors.
    pub decoders: f32,
}

/// The thresholds the page suggests with. On the default pack (six prompts, the default
/// pruning: 13 groups of 35 features) two members of a group share their best
/// part-of-speech tag 88% of the time, against 35% for two features on the same tokens;
/// grouped by edge profiles alone (0.8), 49%.
pub const SUGGEST_ALIKE: Alike = Alike {
    edges: 0.8,
    decoders: 0.5,
};

/// The most members a suggestion has.
pub const MAX_SUGGESTED_MEMBERS: usize = 16;

/// A group of features the graph suggests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suggestion {
    /// The node ids, most influential first.
    pub members: Vec<String>,
    /// A name for it: the label its members share, else the token they sit on.
    pub name: String,
    /// The least cosine of the first member's edge profile with another's.
    pub edge_similarity: f32,
    /// The least cosine of the first member's decoder vector with another's.
    pub decoder_similarity: f32,
}

/// The groups `graph` suggests, most influential first: features on one token as
/// [`Alike`] as `alike` asks with the group's first (most influential) member; at least
/// two and at most [`MAX_SUGGESTED_MEMBERS`] each. `decoder` gives a feature node's
/// decoder vector (`None`: it is never grouped).
#[must_use]
pub fn suggest_supernodes(
    graph: &GraphFile,
    alike: Alike,
    decoder: &dyn Fn(&FileNode) -> Option<Vec<f32>>,
) -> Vec<Suggestion> {
    let index: BTreeMap<&str, usize> = graph
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.node_id.as_str(), i))
        .collect();
    // Each feature's outgoing profile, sparse: target index → weight.
    let mut profiles: BTreeMap<usize, BTreeMap<usize, f32>> = BTreeMap::new();
    for link in &graph.links {
        if let (Some(&s), Some(&t)) = (
            index.get(link.source.as_str()),
            index.get(link.target.as_str()),
        ) && graph.nodes[s].feature_type == TRANSCODER_FEATURE
        {
            *profiles.entry(s).or_default().entry(t).or_insert(0.0) += link.weight;
        }
    }
    let decoders: BTreeMap<usize, Vec<f32>> = profiles
        .keys()
        .filter_map(|&i| Some((i, decoder(&graph.nodes[i])?)))
        .collect();
    let mut order: Vec<usize> = decoders.keys().copied().collect();
    order.sort_by(|&a, &b| influence(&graph.nodes[a]).total_cmp(&influence(&graph.nodes[b])));
    let mut grouped = vec![false; graph.nodes.len()];
    let mut suggestions = Vec::new();
    for &seed in &order {
        if grouped[seed] {
            continue;
        }
        let position = graph.nodes[seed].ctx_idx;
        let mut members = vec![seed];
        let (mut least_edges, mut least_decoders) = (1.0_f32, 1.0_f32);
        for &other in &order {
            if members.len() == MAX_SUGGESTED_MEMBERS {
                break;
            }
            if other == seed || grouped[other] || graph.nodes[other].ctx_idx != position {
                continue;
            }
            let edges = sparse_cosine(&profiles[&seed], &profiles[&other]);
            let decoders = cosine(&decoders[&seed], &decoders[&other]);
            if edges >= alike.edges && decoders >= alike.decoders {
                members.push(other);
                least_edges = least_edges.min(edges);
                least_decoders = least_decoders.min(decoders);
            }
        }
        if members.len() < 2 {
            continue;
        }
        for &m in &members {
            grouped[m] = true;
        }
        let nodes: Vec<&FileNode> = members.iter().map(|&m| &graph.nodes[m]).collect();
        suggestions.push(Suggestion {
            members: nodes.iter().map(|n| n.node_id.clone()).collect(),
            name: name_of(graph, &nodes),
            edge_similarity: least_edges,
            decoder_similarity: least_decoders,
        });
    }
    suggestions
}

/// A node's cumulative influence (smaller: more influential); unknown last.
fn influence(node: &FileNode) -> f32 {
    node.influence.unwrap_or(f32::INFINITY)
}

/// The cosine of two sparse vectors; 0 when either is zero.
fn sparse_cosine(a: &BTreeMap<usize, f32>, b: &BTreeMap<usize, f32>) -> f32 {
    let dot: f32 = a.iter().filter_map(|(k, x)| b.get(k).map(|y| x * y)).sum();
    let norm = |v: &BTreeMap<usize, f32>| v.values().map(|x| x * x).sum::<f32>().sqrt();
    ratio(dot, norm(a) * norm(b))
}

/// The cosine of two vectors; 0 when either is zero.
fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    ratio(dot, norm(a) * norm(b))
}

fn ratio(dot: f32, norms: f32) -> f32 {
    if norms == 0.0 { 0.0 } else { dot / norms }
}

/// The label before its first comma (a label's measured part follows it) when every
/// member has the same, else the token the members sit on.
fn name_of(graph: &GraphFile, nodes: &[&FileNode]) -> String {
    let head = |n: &FileNode| {
        n.clerp
            .split(',')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let first = head(nodes[0]);
    if !first.is_empty() && nodes.iter().all(|n| head(n) == first) {
        return first;
    }
    let token = graph
        .metadata
        .prompt_tokens
        .get(nodes[0].ctx_idx)
        .map_or_else(String::new, |t| t.trim().to_owned());
    format!("on “{token}”")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph_file::{Link, Metadata, QParams};

    fn feature(id: &str, position: usize, influence: f32, clerp: &str) -> FileNode {
        FileNode {
            node_id: id.to_owned(),
            feature_type: TRANSCODER_FEATURE.to_owned(),
            ctx_idx: position,
            influence: Some(influence),
            clerp: clerp.to_owned(),
            ..FileNode::default()
        }
    }

    fn logit(id: &str) -> FileNode {
        FileNode {
            node_id: id.to_owned(),
            feature_type: "logit".to_owned(),
            ..FileNode::default()
        }
    }

    #[test]
    fn features_on_one_token_that_feed_the_same_targets_are_suggested_together() {
        let graph = GraphFile {
            metadata: Metadata {
                prompt_tokens: vec!["The".to_owned(), " jury".to_owned()],
                ..Metadata::default()
            },
            q_params: QParams::default(),
            nodes: vec![
                feature("0_1_1", 1, 0.1, "noun (NN), precision 0.9"),
                feature("1_2_1", 1, 0.2, "noun (NN), precision 0.7"),
                // Alike, but on another token.
                feature("0_3_0", 0, 0.3, "noun (NN), precision 0.6"),
                // On the token, but feeding the other logit.
                feature("2_4_1", 1, 0.4, "verb (VB), precision 0.8"),
                feature("3_5_1", 1, 0.5, "plural (NNS), precision 0.5"),
                logit("5_10_1"),
                logit("5_11_1"),
            ],
            links: [
                ("0_1_1", "5_10_1", 2.0),
                ("0_1_1", "5_11_1", 0.1),
                ("1_2_1", "5_10_1", 1.0),
                ("1_2_1", "5_11_1", 0.05),
                ("0_3_0", "5_10_1", 1.0),
                ("2_4_1", "5_11_1", 1.0),
                ("3_5_1", "5_11_1", 2.0),
                ("3_5_1", "5_10_1", -0.2),
            ]
            .iter()
            .map(|&(s, t, w)| Link::new(s, t, w))
            .collect(),
        };
        // Every decoder alike but 3_5_1's, which is orthogonal to the rest.
        let decoder = |n: &FileNode| {
            Some(if n.node_id == "3_5_1" {
                vec![0.0, 1.0]
            } else {
                vec![1.0, 0.0]
            })
        };
        let suggestions = suggest_supernodes(&graph, SUGGEST_ALIKE, &decoder);
        assert_eq!(suggestions.len(), 1, "{suggestions:?}");
        assert_eq!(suggestions[0].members, ["0_1_1", "1_2_1"]);
        assert_eq!(suggestions[0].name, "noun (NN)");
        assert!((suggestions[0].edge_similarity - 1.0).abs() < 1e-5);
        // With decoders not asked to agree, the last two group too, named by their token.
        let edges_alone = Alike {
            decoders: -1.0,
            ..SUGGEST_ALIKE
        };
        let suggestions = suggest_supernodes(&graph, edges_alone, &decoder);
        assert_eq!(suggestions.len(), 2, "{suggestions:?}");
        assert_eq!(suggestions[1].members, ["2_4_1", "3_5_1"]);
        assert_eq!(suggestions[1].name, "on “jury”");
        let edges = suggestions[1].edge_similarity;
        assert!(edges > 0.98 && edges < 1.0, "{edges}");
        assert!(suggestions[1].decoder_similarity.abs() < 1e-6);
        // Nothing is alike enough at a cosine of one and a bit; nor without decoders.
        let strict = Alike {
            edges: 1.01,
            ..SUGGEST_ALIKE
        };
        assert!(suggest_supernodes(&graph, strict, &decoder).is_empty());
        assert!(suggest_supernodes(&graph, SUGGEST_ALIKE, &|_| None).is_empty());
    }
}
