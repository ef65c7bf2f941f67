//! The part of a graph a person has picked out: pinned nodes and supernodes (nodes
//! grouped under a label), with the edges between them summed, as Neuronpedia's subgraph
//! shows them. Edges inside one supernode drop out.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::graph_file::{FileNode, GraphFile, Link};

/// Nodes grouped under a label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Supernode {
    /// What the group stands for.
    pub label: String,
    /// The node ids in it.
    pub members: Vec<String>,
}

/// Puts node `id` into the supernode labelled `label` (a new one if there is none) and out
/// of any other; supernodes left empty go.
pub fn group_node(supernodes: &mut Vec<Supernode>, id: &str, label: &str) {
    ungroup_node(supernodes, id);
    match supernodes.iter_mut().find(|s| s.label == label) {
        Some(s) => s.members.push(id.to_owned()),
        None => supernodes.push(Supernode {
            label: label.to_owned(),
            members: vec![id.to_owned()],
        }),
    }
}

/// Takes node `id` out of every supernode; supernodes left empty go.
pub fn ungroup_node(supernodes: &mut Vec<Supernode>, id: &str) {
    for s in supernodes.iter_mut() {
        s.members.retain(|m| m != id);
    }
    supernodes.retain(|s| !s.members.is_empty());
}

/// One node of a subgraph: a pinned node or a supernode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubgraphNode {
    /// The node's id, or `supernode:{label}`.
    pub id: String,
    /// Its label.
    pub label: String,
    /// The graph's nodes it stands for.
    pub members: Vec<String>,
    /// Its row, averaged over its members: 0 the embeddings, then the blocks, then the
    /// logits.
    pub row: f32,
    /// Its token position, averaged over its members.
    pub position: f32,
}

/// Pinned nodes and supernodes with the summed edges between them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subgraph {
    /// Supernodes first, then pinned nodes not in any.
    pub nodes: Vec<SubgraphNode>,
    /// Edges between them, weights summed over their members'.
    pub links: Vec<Link>,
}

/// A file node's row: embeddings 0, block `l` at `l + 1`, logits above the last block.
#[must_use]
pub fn row_of(node: &FileNode, blocks: usize) -> usize {
    match (node.feature_type.as_str(), node.layer.parse::<usize>()) {
        ("logit", _) => blocks + 1,
        (_, Ok(l)) => l + 1,
        (_, Err(_)) => 0,
    }
}

impl GraphFile {
    /// Blocks the graph's feature and error nodes come from.
    #[must_use]
    pub fn blocks(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| n.feature_type != "logit")
            .filter_map(|n| n.layer.parse::<usize>().ok())
            .max()
            .map_or(0, |l| l + 1)
    }

    /// The subgraph of `pinned` nodes and `supernodes`; ids the graph does not have are
    /// left out, and a node in a supernode is not also shown on its own.
    #[must_use]
    pub fn subgraph(&self, pinned: &[String], supernodes: &[Supernode]) -> Subgraph {
        let by_id: HashMap<&str, &FileNode> =
            self.nodes.iter().map(|n| (n.node_id.as_str(), n)).collect();
        let blocks = self.blocks();
        let mut nodes: Vec<SubgraphNode> = Vec::new();
        // Node id → the subgraph node standing for it.
        let mut owner: HashMap<String, usize> = HashMap::new();
        let mut add = |id: String, label: String, members: Vec<&FileNode>| {
            if members.is_empty() {
                return;
            }
            let count = members.len() as f32;
            let row = members
                .iter()
                .map(|n| row_of(n, blocks) as f32)
                .sum::<f32>()
                / count;
            let position = members.iter().map(|n| n.ctx_idx as f32).sum::<f32>() / count;
            for m in &members {
                owner.entry(m.node_id.clone()).or_insert(nodes.len());
            }
            nodes.push(SubgraphNode {
                id,
                label,
                members: members.iter().map(|n| n.node_id.clone()).collect(),
                row,
                position,
            });
        };
        for supernode in supernodes {
            let members = supernode
                .members
                .iter()
                .filter_map(|m| by_id.get(m.as_str()).copied())
                .collect();
            add(
                format!("supernode:{}", supernode.label),
                supernode.label.clone(),
                members,
            );
        }
        let grouped: std::collections::HashSet<&str> = supernodes
            .iter()
            .flat_map(|s| s.members.iter().map(String::as_str))
            .collect();
        for id in pinned {
            if grouped.contains(&id.as_str()) {
                continue;
            }
            if let Some(node) = by_id.get(id.as_str()) {
                let label = if node.clerp.is_empty() {
                    node.node_id.clone()
                } else {
                    node.clerp.clone()
                };
                add(node.node_id.clone(), label, vec![node]);
            }
        }
        let mut summed: BTreeMap<(usize, usize), f32> = BTreeMap::new();
        for link in &self.links {
            let (Some(&s), Some(&t)) = (
                owner.get(link.source.as_str()),
                owner.get(link.target.as_str()),
            ) else {
                continue;
            };
            if s != t {
                *summed.entry((s, t)).or_default() += link.weight;
            }
        }
        let links = summed
            .into_iter()
            .map(|((s, t), weight)| Link {
                source: nodes[s].id.clone(),
                target: nodes[t].id.clone(),
                weight,
            })
            .collect();
        Subgraph { nodes, links }
    }

    /// The file with a view's state in its `qParams`: pins, supernodes (written
    /// `[label, member, …]`) and the clicked node.
    #[must_use]
    pub fn with_view(&self, pinned: &[String], supernodes: &[Supernode], clicked: &str) -> Self {
        let mut file = self.clone();
        file.q_params.pinned_ids = pinned.to_vec();
        file.q_params.supernodes = supernodes
            .iter()
            .map(|s| {
                std::iter::once(s.label.clone())
                    .chain(s.members.iter().cloned())
                    .collect()
            })
            .collect();
        clicked.clone_into(&mut file.q_params.clicked_id);
        file
    }

    /// The supernodes of the file's `qParams`.
    #[must_use]
    pub fn supernodes(&self) -> Vec<Supernode> {
        self.q_params
            .supernodes
            .iter()
            .filter_map(|group| {
                let (label, members) = group.split_first()?;
                Some(Supernode {
                    label: label.clone(),
                    members: members.to_vec(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph_file::{Metadata, QParams};

    fn node(id: &str, layer: &str, position: usize, kind: &str) -> FileNode {
        FileNode {
            node_id: id.to_owned(),
            layer: layer.to_owned(),
            ctx_idx: position,
            feature_type: kind.to_owned(),
            clerp: format!("label of {id}"),
            ..FileNode::default()
        }
    }

    fn link(source: &str, target: &str, weight: f32) -> Link {
        Link {
            source: source.to_owned(),
            target: target.to_owned(),
            weight,
        }
    }

    fn file() -> GraphFile {
        GraphFile {
            metadata: Metadata {
                prompt_tokens: vec!["a".to_owned(), "b".to_owned()],
                prompt: "ab".to_owned(),
                ..Metadata::default()
            },
            q_params: QParams::default(),
            nodes: vec![
                node("E_1_0", "E", 0, "embedding"),
                node("0_5_0", "0", 0, "cross layer transcoder"),
                node("0_6_1", "0", 1, "cross layer transcoder"),
                node("1_7_1", "1", 1, "cross layer transcoder"),
                node("3_9_1", "3", 1, "logit"),
            ],
            links: vec![
                link("E_1_0", "0_5_0", 1.0),
                link("0_5_0", "0_6_1", 5.0),
                link("0_5_0", "1_7_1", 2.0),
                link("0_6_1", "1_7_1", -0.5),
                link("1_7_1", "3_9_1", 3.0),
            ],
        }
    }

    #[test]
    fn supernodes_sum_their_members_edges_and_drop_inner_ones() {
        let graph = file();
        let group = Supernode {
            label: "early".to_owned(),
            members: vec!["0_5_0".to_owned(), "0_6_1".to_owned(), "nowhere".to_owned()],
        };
        let pins = ["1_7_1".to_owned(), "0_5_0".to_owned(), "3_9_1".to_owned()];
        let sub = graph.subgraph(&pins, &[group]);
        let ids: Vec<&str> = sub.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["supernode:early", "1_7_1", "3_9_1"]);
        assert_eq!(sub.nodes[0].members, ["0_5_0", "0_6_1"]);
        assert!(
            (sub.nodes[0].row - 1.0).abs() < 1e-6 && (sub.nodes[0].position - 0.5).abs() < 1e-6
        );
        assert!((sub.nodes[2].row - 3.0).abs() < 1e-6);
        // 2.0 + (−0.5) from the group into 1_7_1; the 5.0 inside the group is gone.
        assert_eq!(
            sub.links,
            vec![
                link("supernode:early", "1_7_1", 1.5),
                link("1_7_1", "3_9_1", 3.0)
            ]
        );
    }

    #[test]
    fn a_node_is_in_one_supernode_at_most_and_empty_ones_go() {
        let mut groups = Vec::new();
        group_node(&mut groups, "a", "first");
        group_node(&mut groups, "b", "first");
        group_node(&mut groups, "c", "second");
        group_node(&mut groups, "c", "first");
        assert_eq!(groups.len(), 1, "{groups:?}");
        assert_eq!(groups[0].members, ["a", "b", "c"]);
        ungroup_node(&mut groups, "b");
        assert_eq!(groups[0].members, ["a", "c"]);
        ungroup_node(&mut groups, "a");
        ungroup_node(&mut groups, "c");
        assert!(groups.is_empty());
    }

    #[test]
    fn the_view_goes_into_q_params_and_back() {
        let group = Supernode {
            label: "early".to_owned(),
            members: vec!["0_5_0".to_owned()],
        };
        let file = file().with_view(&["1_7_1".to_owned()], std::slice::from_ref(&group), "0_5_0");
        assert_eq!(file.q_params.supernodes, vec![vec!["early", "0_5_0"]]);
        assert_eq!(file.q_params.pinned_ids, ["1_7_1"]);
        assert_eq!(file.q_params.clicked_id, "0_5_0");
        let back = GraphFile::parse(&file.to_json().unwrap_or_default()).map(|f| f.supernodes());
        assert_eq!(back.ok(), Some(vec![group]));
    }
}
