//! What the playground computes on a loaded pack, independent of where it runs (a web
//! worker, a test, the command line): the analysis of a prompt (tokens, predictions, each
//! token's strongest features), a corpus example's per-token activations, feature search,
//! and steering with transcoder features.

mod analyze;
mod circuit;
mod engine;
mod error;
mod examples;
mod lab;
mod search;
mod steer;

pub use analyze::{ActiveFeature, Prediction, PromptAnalysis, TokenView};
pub use circuit::{LogitChange, MAX_CIRCUIT_FEATURES, MAX_CIRCUIT_TOKENS};
pub use engine::EngineInfo;
pub use error::{LabError, Result};
pub use examples::ExampleActivations;
pub use glassbox_circuits::{FileNode, GraphFile, Link, Thresholds};
pub use glassbox_gpu::AdapterPreference;
pub use lab::Lab;
pub use search::{SearchHit, SearchQuery};
pub use steer::{FeatureSteer, MAX_STEER_TOKENS, SteerMode, SteerRequest, SteerResult};
