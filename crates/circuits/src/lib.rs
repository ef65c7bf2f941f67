//! Attribution graphs over transcoder features ("Circuit Tracing", Ameisen et al., 2025),
//! and the checks that make them trustworthy.
//!
//! - [`Replacement`]: a prompt's local replacement model: every MLP replaced by its
//!   transcoder's active features plus an error term, attention patterns and LayerNorm
//!   scales frozen at their values on the prompt, so that everything from the embeddings
//!   to each feature's pre-activation and each logit is linear.
//! - [`attribute`]: the graph's nodes (features, errors, token and position embeddings,
//!   logits) and its edges, the direct effect of each source on each target through the
//!   frozen model, computed by batched transposed passes written out by hand
//!   ([`CpuCarrier`] on the CPU; any engine through [`AttributionEngine`] and
//!   [`attribute_on`], or a [`Carrier`] and [`attribute_with`]).
//! - [`Influence`]: each node's influence on the logits, and pruning to thresholds.
//! - [`GraphFile`]: the circuit-tracer / Neuronpedia graph JSON, out and back in;
//!   [`Subgraph`]: its pinned nodes and [`Supernode`]s with their edges summed;
//!   [`GraphFile::find`]: its nodes found by label, token, feature or id.
//! - [`head_routes`]: which attention heads carry an edge between two positions.

mod attribute;
mod carry;
mod compare;
mod engine;
mod error;
mod find;
mod frozen;
mod graph;
mod graph_file;
mod prune;
mod replacement;
mod routes;
mod setup;
mod spread;
mod subgraph;
mod suggest;
mod transpose;

pub use attribute::{AttributionOptions, attribute, attribute_with};
pub use carry::{BatchShape, Carrier, CpuCarrier, Row};
pub use compare::{Change, NodeMatch, Side, compare};
pub use engine::{ActiveCarrier, AttributionEngine, attribute_on};
pub use error::{CircuitError, Result};
pub use find::NodeQuery;
pub use frozen::{AttentionWeights, FrozenNorm, FrozenWeights};
pub use graph::{Graph, Node, NodeKind};
pub use graph_file::{
    ExportContext, FileNode, GraphFile, LOGIT, Link, MAX_FILE_BYTES, MAX_FILE_LAYERS,
    MAX_FILE_LINKS, MAX_FILE_NODES, MAX_FILE_TOKENS, Metadata, QParams, TRANSCODER_ERROR,
    TRANSCODER_FEATURE, node_id,
};
pub use prune::{GraphScores, Influence, Pruned, Scores, Thresholds, threshold};
pub use replacement::Replacement;
pub use routes::{HeadRoute, head_routes};
pub use setup::{ActiveAt, Setup, Sources, Target};
pub use spread::{FreeLane, LaneAnswer, Lanes, Spread};
pub use subgraph::{Subgraph, SubgraphNode, Supernode, group_node, row_of, ungroup_node};
pub use suggest::{Alike, MAX_SUGGESTED_MEMBERS, SUGGEST_ALIKE, Suggestion, suggest_supernodes};
pub use transpose::{attention_constant, value_weight};
