//! Finding nodes inside a graph file, as a person searches a graph they are reading: by a
//! label's words, by the prompt token a node sits on, by a transcoder feature's number,
//! or by a node's id.

use crate::graph_file::{GraphFile, TRANSCODER_ERROR, TRANSCODER_FEATURE};

/// What a search box asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeQuery {
    /// Nodes whose label has every one of these words (lower-cased).
    Label(Vec<String>),
    /// Features, errors and embeddings at the positions of this prompt token (compared
    /// trimmed and lower-cased): `"jury"` or `token:jury`.
    Token(String),
    /// Transcoder feature `layer/feature`, at every position it is active.
    Feature(usize, usize),
}

impl NodeQuery {
    /// Reads a search box; `None` when it is empty.
    #[must_use]
    pub fn parse(query: &str) -> Option<Self> {
        let query = query.trim();
        if query.is_empty() {
            return None;
        }
        let unquote = |s: &str| {
            let s = s.trim();
            s.strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .unwrap_or(s)
                .trim()
                .to_lowercase()
        };
        if let Some(token) = query.strip_prefix("token:") {
            return Some(Self::Token(unquote(token)));
        }
        if query.len() > 1 && query.starts_with('"') && query.ends_with('"') {
            return Some(Self::Token(unquote(query)));
        }
        if let Some((layer, feature)) = query.split_once('/')
            && let (Ok(layer), Ok(feature)) = (layer.trim().parse(), feature.trim().parse())
        {
            return Some(Self::Feature(layer, feature));
        }
        Some(Self::Label(
            query.split_whitespace().map(str::to_lowercase).collect(),
        ))
    }
}

impl GraphFile {
    /// The ids of the nodes `query` finds, in the file's order: the node of that id if
    /// there is one, else those [`NodeQuery::parse`] reads it as asking for.
    #[must_use]
    pub fn find(&self, query: &str) -> Vec<String> {
        let query = query.trim();
        if let Some(node) = self.nodes.iter().find(|n| n.node_id == query) {
            return vec![node.node_id.clone()];
        }
        let Some(query) = NodeQuery::parse(query) else {
            return Vec::new();
        };
        let token_at = |position: usize| {
            self.metadata
                .prompt_tokens
                .get(position)
                .map(|t| t.trim().to_lowercase())
        };
        self.nodes
            .iter()
            .filter(|node| match &query {
                NodeQuery::Label(words) => {
                    let label = node.clerp.to_lowercase();
                    words.iter().all(|w| label.contains(w.as_str()))
                }
                NodeQuery::Token(token) => {
                    matches!(
                        node.feature_type.as_str(),
                        TRANSCODER_FEATURE | TRANSCODER_ERROR | "embedding"
                    ) && token_at(node.ctx_idx).as_deref() == Some(token.as_str())
                }
                NodeQuery::Feature(layer, feature) => {
                    node.transcoder_feature() == Some((*layer, *feature))
                }
            })
            .map(|node| node.node_id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph_file::{FileNode, Metadata, QParams};

    fn node(id: &str, ctx_idx: usize, kind: &str, clerp: &str) -> FileNode {
        FileNode {
            node_id: id.to_owned(),
            ctx_idx,
            feature_type: kind.to_owned(),
            clerp: clerp.to_owned(),
            ..FileNode::default()
        }
    }

    fn file() -> GraphFile {
        GraphFile {
            metadata: Metadata {
                prompt_tokens: vec!["The".into(), " jury".into(), " said".into()],
                prompt: "The jury said".into(),
                ..Metadata::default()
            },
            q_params: QParams::default(),
            nodes: vec![
                node("E_12_1", 1, "embedding", "Emb: \" jury\""),
                node("0_460_1", 1, TRANSCODER_FEATURE, "plural noun after the"),
                node("0_460_2", 2, TRANSCODER_FEATURE, "plural noun after the"),
                node("2_17_1", 1, TRANSCODER_FEATURE, "Modal verb"),
                node("error_1_1", 1, TRANSCODER_ERROR, "Err: mlp \" jury\""),
                node("3_9_2", 2, "logit", "Output \" that\" (p=0.3)"),
            ],
            links: Vec::new(),
        }
    }

    #[test]
    fn a_search_finds_by_label_token_feature_or_id() {
        let graph = file();
        assert_eq!(graph.find("plural NOUN"), ["0_460_1", "0_460_2"]);
        assert_eq!(graph.find("noun modal"), Vec::<String>::new());
        // A token: every node at its positions but the logits.
        assert_eq!(
            graph.find("\"Jury\""),
            ["E_12_1", "0_460_1", "2_17_1", "error_1_1"]
        );
        assert_eq!(graph.find("token: jury"), graph.find("\"jury\""));
        assert_eq!(graph.find("0/460"), ["0_460_1", "0_460_2"]);
        assert_eq!(graph.find("2 / 17"), ["2_17_1"]);
        assert_eq!(graph.find("error_1_1"), ["error_1_1"]);
        assert_eq!(graph.find("output"), ["3_9_2"]);
        assert!(graph.find("   ").is_empty());
    }
}
