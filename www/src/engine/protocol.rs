//! The messages between the page and the engine worker.

use glassbox_lab::{
    AttentionPatterns, EngineInfo, ExampleActivations, GraphFile, LogitChange, LogitLens, NodeEdit,
    PromptAnalysis, SearchHit, SearchQuery, Snippet, SteerRequest, SteerResult,
};
use glassbox_pack::FeatureRecord;
use serde::{Deserialize, Serialize};

/// A message with the number of the request it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// Chosen by the page, echoed by the worker.
    pub id: u64,
    /// The message.
    pub body: T,
}

/// What the page asks of the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Load the pack whose `manifest.json` is at `base` + `manifest.json`.
    Load {
        /// The pack's URL, ending in `/`.
        base: String,
        /// Which engine to start with.
        engine: EngineRequest,
    },
    /// Switch engines: to the GPU (WebGPU) if `gpu`, else to the CPU.
    Engine {
        /// Which one.
        gpu: bool,
    },
    /// Tokens, predictions and features of a prompt.
    Analyze {
        /// The prompt.
        text: String,
    },
    /// One feature's stored record, with token texts.
    Feature {
        /// The block.
        layer: usize,
        /// The feature.
        feature: usize,
    },
    /// A corpus example recomputed live.
    Example {
        /// The block.
        layer: usize,
        /// The feature.
        feature: usize,
        /// Document index.
        document: usize,
        /// Token position in the document.
        position: usize,
    },
    /// One feature's activation at each token of a prompt.
    OnPrompt {
        /// The block.
        layer: usize,
        /// The feature.
        feature: usize,
        /// The prompt.
        text: String,
    },
    /// Find features.
    Search {
        /// What to look for.
        query: SearchQuery,
    },
    /// Steered and unsteered generations.
    Steer(SteerRequest),
    /// A prompt's attribution graph, pruned.
    Circuit {
        /// The prompt.
        text: String,
        /// Share of the influence whose nodes are kept.
        nodes: f32,
        /// Share of the edge scores whose edges are kept.
        edges: f32,
    },
    /// One block's attention patterns on a prompt.
    Attention {
        /// The prompt.
        text: String,
        /// The block.
        layer: usize,
    },
    /// A prompt's logit lens.
    Lens {
        /// The prompt.
        text: String,
    },
    /// Change one node of a prompt's graph: predicted, frozen and actual logit changes.
    Intervene {
        /// The prompt.
        text: String,
        /// The change.
        edit: NodeEdit,
    },
}

/// Which engine the page asks for when it loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EngineRequest {
    /// The GPU when the browser has a hardware one, else the CPU.
    Auto,
    /// The GPU whenever WebGPU has an adapter, even a software one.
    Gpu,
    /// The CPU.
    Cpu,
}

/// What the pack holds, for the page to show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackInfo {
    /// The pack's name.
    pub name: String,
    /// One sentence on it.
    pub description: String,
    /// Blocks.
    pub n_layer: usize,
    /// Attention heads per block.
    pub n_head: usize,
    /// Features per block.
    pub d_sae: Vec<usize>,
    /// Context length.
    pub n_positions: usize,
    /// Base tags that label some feature.
    pub tags: Vec<String>,
    /// Whether the files came from the browser's cache.
    pub from_cache: bool,
    /// Which engine answers.
    pub engine: EngineInfo,
}

/// A feature's record with the texts of the tokens it names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureView {
    /// The block.
    pub layer: usize,
    /// The record.
    pub record: FeatureRecord,
    /// Texts of the tokens in the logit effects and the profile, by id.
    pub token_texts: Vec<(u32, String)>,
    /// Names of the documents the examples point into, by index.
    pub documents: Vec<(u32, String)>,
    /// The profile's tags and genres in words, by key.
    pub names: Vec<(String, String)>,
    /// The first top examples as text (for a node's hover card).
    pub snippets: Vec<Snippet>,
}

/// What the engine answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// Loading: the stage in words and bytes so far of all to fetch.
    Progress {
        /// E.g. "model weights".
        stage: String,
        /// Bytes loaded so far.
        loaded: u64,
        /// Bytes in all.
        total: u64,
    },
    /// The pack is loaded.
    Ready(PackInfo),
    /// Which engine answers now: the answer to [`Request::Engine`], and also sent
    /// unasked (with request number 0) when the GPU engine fails and the CPU takes over.
    Engine(EngineInfo),
    /// Answer to [`Request::Analyze`].
    Analysis(PromptAnalysis),
    /// Answer to [`Request::Feature`].
    Feature(Box<FeatureView>),
    /// Answer to [`Request::Example`].
    Example(ExampleActivations),
    /// Answer to [`Request::OnPrompt`]: the tokens' texts and activations.
    OnPrompt(Vec<(String, f32)>),
    /// Answer to [`Request::Search`].
    Search(Vec<SearchHit>),
    /// Answer to [`Request::Steer`].
    Steer(Box<SteerResult>),
    /// Answer to [`Request::Circuit`].
    Circuit(Box<GraphFile>),
    /// Answer to [`Request::Attention`].
    Attention(Box<AttentionPatterns>),
    /// Answer to [`Request::Lens`].
    Lens(Box<LogitLens>),
    /// Answer to [`Request::Intervene`].
    Intervention(Vec<LogitChange>),
    /// The request failed; why, in words.
    Error(String),
}
