//! What the playground computes on a loaded pack, independent of where it runs (a web
//! worker, a test, the command line): the analysis of a prompt (tokens, predictions, each
//! token's strongest features), a corpus example's per-token activations, feature search,
//! steering with transcoder features, attribution graphs and interventions on them, and
//! the attention and logit-lens views.

mod analyze;
mod beside;
mod circuit;
mod claim;
mod edge_heads;
mod engine;
mod error;
mod examples;
mod graph_steer;
mod head_scores;
mod lab;
mod lens;
mod lesson;
mod live;
mod qk;
mod quiz;
mod rows;
mod search;
mod steer;
mod suggest;

pub use analyze::{ActiveFeature, MAX_PROMPT_BYTES, Prediction, PromptAnalysis, TokenView};
pub use beside::{Alone, Beside, ContinuationElsewhere};
pub use circuit::{
    Contrast, DOCUMENT_START, LogitChange, MAX_CIRCUIT_FEATURES, MAX_CIRCUIT_TOKENS, NodeEdit,
};
pub use claim::{Claim, ClaimCheck};
pub use edge_heads::{EDGE_HEADS, EdgeHeads};
pub use engine::EngineInfo;
pub use error::{LabError, Result};
pub use examples::{ExampleActivations, Snippet};
pub use glassbox_circuits::{
    Alike, Change, CircuitError, FileNode, FreeLane, GraphFile, HeadRoute, LOGIT, LaneAnswer,
    Lanes, Link, MAX_FILE_BYTES as MAX_GRAPH_FILE_BYTES, NodeMatch, NodeQuery, Row, SUGGEST_ALIKE,
    Side, Subgraph, SubgraphNode, Suggestion, Supernode, TRANSCODER_ERROR, TRANSCODER_FEATURE,
    Target, Thresholds, compare as compare_graphs, group_node, row_of, ungroup_node,
};
pub use glassbox_engine::{PassOutput, PassRequest};
pub use glassbox_gpu::AdapterPreference;
pub use graph_steer::{MAX_GRAPH_STEER_TOKENS, MAX_NODE_EDITS, SteerAttention};
pub use head_scores::{HeadScoreKind, HeadScores};
pub use lab::{Lab, site_name};
pub use lens::{AttentionPatterns, LensCell, LogitLens};
pub use lesson::{
    Lesson, MAX_CLAIMS, MAX_LESSON_BYTES, MAX_STEP_TEXT, MAX_STEPS, Question, Step, is_step_view,
};
pub use live::{LiveExample, LiveFeature, SAMPLE_WINDOW};
pub use qk::{QK_TERMS, QkAttribution, QkPart, QkTerm};
pub use quiz::{QUIZ_OPTIONS, QuizRound};
pub use search::{SearchHit, SearchQuery};
pub use steer::{
    FeatureSteer, MAX_STEER_TOKENS, MAX_STEERED_FEATURES, SteerMode, SteerRequest, SteerResult,
};
