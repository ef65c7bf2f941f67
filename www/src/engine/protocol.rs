//! The messages between the page and the engine worker.

use glassbox_lab::{
    AttentionPatterns, Contrast, EdgeHeads, EngineInfo, ExampleActivations, GraphFile, Lesson,
    LiveFeature, LogitChange, LogitLens, NodeEdit, PromptAnalysis, QkAttribution, QuizRound, Row,
    SearchHit, SearchQuery, Snippet, SteerAttention, SteerRequest, SteerResult, Suggestion, Target,
};
use glassbox_model::sampling::Sampling;
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
        /// How many helper workers carry a graph's batches while this one hands them out
        /// (`?workers=N` in the page's address; 1: none, this worker carries every
        /// batch); `None`: one per core, up to [`MAX_WORKERS`].
        workers: Option<usize>,
    },
    /// Open a model the person picked (instead of the pack): one GGUF file, or a Hugging
    /// Face folder's files (`config.json`, `model.safetensors` or its shards and index,
    /// `tokenizer.json`). Answered like `Load`, with progress, then `Ready`; on failure
    /// the pack loaded before stays.
    OpenModel {
        /// The files.
        files: Vec<PickedFile>,
        /// Which engine to start with.
        engine: EngineRequest,
    },
    /// See [`SwitchEngine`].
    SwitchEngine(SwitchEngine),
    /// The page no longer wants the answer to its request of this number (superseded):
    /// if its work has not started it is skipped. Never answered.
    Cancel(u64),
    /// See [`Analyze`].
    Analyze(Analyze),
    /// See [`Feature`].
    Feature(Feature),
    /// A feature of a dictionary without precomputed data, measured over the sample text.
    LiveFeature(LiveFeatureOf),
    /// See [`LiveExample`].
    LiveExample(LiveExample),
    /// See [`OnPrompt`].
    OnPrompt(OnPrompt),
    /// See [`Search`].
    Search(Search),
    /// Steered and unsteered generations.
    Steer(SteerRequest),
    /// See [`Circuit`].
    Circuit(Circuit),
    /// A graph file the person picked, read and checked off the page's thread.
    ImportGraph(ImportGraph),
    /// See [`Attention`].
    Attention(Attention),
    /// See [`Lens`].
    Lens(Lens),
    /// See [`Intervene`].
    Intervene(Intervene),
    /// See [`SteerNodes`].
    SteerNodes(SteerNodes),
    /// See [`SuggestGroups`].
    SuggestGroups(SuggestGroups),
    /// See [`QkAsk`].
    Qk(QkAsk),
    /// See [`EdgeAsk`].
    EdgeHeads(EdgeAsk),
    /// See [`Quiz`].
    Quiz(Quiz),
    /// See [`CarryRows`] (asked of a helper worker by the engine worker).
    CarryRows(CarryRows),
    /// See [`GraphWorkOf`].
    GraphWork(GraphWorkOf),
    /// See [`ContinuePlain`] (asked of a helper worker by the engine worker).
    ContinuePlain(ContinuePlain),
}

/// The most helper workers a graph is spread over (each holds its own copy of the model
/// and transcoders).
pub const MAX_WORKERS: usize = 4;

impl Request {
    /// Whether it needs the pack's features (its transcoders, corpus or labels): such
    /// requests wait while they load; the rest (predictions, attention, the logit lens,
    /// the engine switch) are answered by the model alone.
    #[must_use]
    pub fn needs_features(&self) -> bool {
        match self {
            Self::Feature(_)
            | Self::LiveFeature(_)
            | Self::LiveExample(_)
            | Self::OnPrompt(_)
            | Self::Search(_)
            | Self::Steer(_)
            | Self::Circuit(_)
            | Self::ImportGraph(_)
            | Self::Intervene(_)
            | Self::SteerNodes(_)
            | Self::SuggestGroups(_)
            | Self::Qk(_)
            | Self::EdgeHeads(_)
            | Self::Quiz(_)
            | Self::CarryRows(_)
            | Self::ContinuePlain(_) => true,
            Self::Load { .. }
            | Self::OpenModel { .. }
            | Self::SwitchEngine(_)
            | Self::Cancel(_)
            | Self::Analyze(_)
            | Self::Attention(_)
            | Self::Lens(_)
            | Self::GraphWork(_) => false,
        }
    }

    /// Whether it needs the pack's corpus (a feature's examples): the corpus is fetched
    /// when such a request first comes, and they wait while it loads.
    #[must_use]
    pub fn needs_corpus(&self) -> bool {
        matches!(self, Self::Feature(_) | Self::LiveExample(_))
    }

    /// The prompt (and logit difference) whose attribution graph it needs, if any: the
    /// worker computes that graph first, spread over its helpers.
    #[must_use]
    pub fn graph_needed(&self) -> Option<(&str, Option<&Contrast>)> {
        match self {
            Self::Circuit(Circuit { text, contrast, .. })
            | Self::SuggestGroups(SuggestGroups {
                graph: Circuit { text, contrast, .. },
            })
            | Self::Intervene(Intervene { text, contrast, .. })
            | Self::EdgeHeads(EdgeAsk { text, contrast, .. }) => Some((text, contrast.as_ref())),
            _ => None,
        }
    }

    /// Whether its answer is fuller once the features have loaded: a prompt's analysis
    /// (predictions at once, each token's features then), or anything that waited.
    #[must_use]
    pub fn grows_with_features(&self) -> bool {
        self.needs_features() || matches!(self, Self::Analyze(_))
    }
}

/// A request a view makes, and the answer it expects: `use_request::<Q>` sends a `Q`
/// and gives back a `Q::Answer`.
pub trait Ask: Clone + PartialEq + 'static {
    /// What the engine answers.
    type Answer: 'static;

    /// The request as it crosses to the worker.
    fn into_request(self) -> Request;

    /// The answer in the worker's response; `None` for any other kind of response.
    fn answer(response: Response) -> Option<Self::Answer>;
}

/// Declares that request `$request` (the [`Request`] variant of the same name, or
/// `$variant`) is answered by [`Response`]`::$response`, holding a `$answer`.
macro_rules! ask {
    ($request:ident => $response:ident($answer:ty)) => {
        ask!($request as $request => $response($answer));
    };
    ($request:ident as $variant:ident => $response:ident($answer:ty)) => {
        impl Ask for $request {
            type Answer = $answer;

            fn into_request(self) -> Request {
                Request::$variant(self)
            }

            fn answer(response: Response) -> Option<$answer> {
                match response {
                    Response::$response(answer) => Some(answer),
                    _ => None,
                }
            }
        }
    };
}

/// Switch engines: to the GPU (WebGPU) if `gpu`, else to the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchEngine {
    /// Which one.
    pub gpu: bool,
}
ask!(SwitchEngine => Engine(EngineInfo));

/// Tokens, predictions and features of a prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Analyze {
    /// The prompt.
    pub text: String,
}
ask!(Analyze => Analysis(PromptAnalysis));

/// One feature's stored record, with token texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feature {
    /// The block.
    pub layer: usize,
    /// The feature.
    pub feature: usize,
}
ask!(Feature => Feature(Box<FeatureView>));

/// A feature of an added dictionary, measured live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveFeatureOf {
    /// The dictionary.
    pub layer: usize,
    /// The feature.
    pub feature: usize,
}
ask!(LiveFeatureOf as LiveFeature => LiveFeature(Box<LiveFeature>));

/// A corpus example recomputed live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveExample {
    /// The block.
    pub layer: usize,
    /// The feature.
    pub feature: usize,
    /// Document index.
    pub document: usize,
    /// Token position in the document.
    pub position: usize,
}
ask!(LiveExample => LiveExample(ExampleActivations));

/// One feature's activation at each token of a prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnPrompt {
    /// The block.
    pub layer: usize,
    /// The feature.
    pub feature: usize,
    /// The prompt.
    pub text: String,
}
ask!(OnPrompt => OnPrompt(Vec<(String, f32)>));

/// Find features.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Search {
    /// What to look for.
    pub query: SearchQuery,
}
ask!(Search => Search(Vec<SearchHit>));

ask!(SteerRequest as Steer => Steer(Box<SteerResult>));

/// A prompt's attribution graph, pruned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Circuit {
    /// The prompt.
    pub text: String,
    /// The logit difference to attribute in place of the likeliest tokens, if any.
    pub contrast: Option<Contrast>,
    /// Share of the influence whose nodes are kept.
    pub nodes: f32,
    /// Share of the edge scores whose edges are kept.
    pub edges: f32,
}
ask!(Circuit => Circuit(Box<GraphFile>));

/// The rows of a batch of a graph's targets over a prompt (token ids, as the graph
/// traces them), carried by a helper worker for the engine worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CarryRows {
    /// The prompt.
    pub ids: Vec<u32>,
    /// The batch: targets that read one block, or logits.
    pub targets: Vec<Target>,
}

/// A prompt (token ids) continued with nothing steered, by a helper worker while the
/// engine worker continues it steered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContinuePlain {
    /// The prompt.
    pub ids: Vec<u32>,
    /// How each next token is chosen.
    pub sampling: Sampling,
}

/// How the last graph of a prompt (for a logit difference, if any) was computed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphWorkOf {
    /// The prompt.
    pub text: String,
    /// The logit difference, if any.
    pub contrast: Option<Contrast>,
}
ask!(GraphWorkOf as GraphWork => GraphWork(Option<GraphWork>));

/// How a graph was computed: its time and, on the CPU engine, the batches of targets each
/// worker carried (the engine worker first, then its helpers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphWork {
    /// Milliseconds from the request to the graph.
    pub ms: f64,
    /// Batches per worker; empty on the GPU engine.
    pub carried: Vec<usize>,
}

/// A picked graph file (circuit-tracer / Neuronpedia JSON) to read and check against the
/// model loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportGraph {
    /// The file's name, for errors.
    pub name: String,
    /// A `blob:` URL of it.
    pub url: String,
}
ask!(ImportGraph => Circuit(Box<GraphFile>));

/// One block's attention patterns on a prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attention {
    /// The prompt.
    pub text: String,
    /// The block.
    pub layer: usize,
}
ask!(Attention => Attention(Box<AttentionPatterns>));

/// A prompt's logit lens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lens {
    /// The prompt.
    pub text: String,
}
ask!(Lens => Lens(Box<LogitLens>));

/// A round of "guess the feature": the feature and the labels offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quiz {
    /// The quiz's seed (one link, the same questions for everyone).
    pub seed: u64,
    /// The round.
    pub round: u64,
}
ask!(Quiz => Quiz(QuizRound));

/// Change one node of a prompt's graph: predicted, frozen and actual logit changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intervene {
    /// The prompt.
    pub text: String,
    /// The logit difference its graph attributes, if any.
    pub contrast: Option<Contrast>,
    /// The change.
    pub edit: NodeEdit,
}
ask!(Intervene => Intervention(Vec<LogitChange>));

/// Graph steering: the prompt continued greedily with nodes of its graph set, next to
/// the same continuation unsteered (`Lab::steer_nodes`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SteerNodes {
    /// The prompt.
    pub text: String,
    /// The nodes set.
    pub edits: Vec<NodeEdit>,
    /// Tokens to generate.
    pub max_tokens: usize,
    /// Attention free, or frozen over the prompt.
    pub attention: SteerAttention,
}
ask!(SteerNodes => Steer(Box<SteerResult>));

/// The supernodes a prompt's graph suggests (`Lab::suggest_supernodes` with
/// `SUGGEST_ALIKE`), the graph as a [`Circuit`] request asks for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuggestGroups {
    /// The graph.
    pub graph: Circuit,
}
ask!(SuggestGroups => Suggestions(Vec<Suggestion>));

/// A head's attention score from one position to another split into query-side ×
/// key-side terms (`Lab::qk_attribution`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QkAsk {
    /// The prompt.
    pub text: String,
    /// The block.
    pub layer: usize,
    /// The head.
    pub head: usize,
    /// The query position.
    pub query: usize,
    /// The key position.
    pub key: usize,
}
ask!(QkAsk as Qk => Qk(Box<QkAttribution>));

/// An edge of a prompt's graph that crosses positions, split by the heads that carry it
/// (`Lab::edge_heads`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeAsk {
    /// The prompt.
    pub text: String,
    /// The logit difference its graph attributes, if any.
    pub contrast: Option<Contrast>,
    /// The source node's id.
    pub source: String,
    /// The target node's id.
    pub target: String,
}
ask!(EdgeAsk as EdgeHeads => EdgeHeads(Box<EdgeHeads>));

/// A file the person picked, which the worker reads itself (its bytes never pass
/// through the page).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PickedFile {
    /// The file's name, for the page and for errors.
    pub name: String,
    /// Its path within the folder picked (`layer_8/cfg.json`), or its name when picked
    /// on its own.
    pub path: String,
    /// A `blob:` URL of the file.
    pub url: String,
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

/// One attached dictionary, for the page to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DictionaryInfo {
    /// Where it reads and writes (`blocks.3.hook_resid_post`).
    pub site: String,
    /// Its features.
    pub d_sae: usize,
    /// Whether the pack has its feature data; if not, its features are measured live.
    pub feature_data: bool,
}

impl PackInfo {
    /// How the page names dictionary `layer`: `block 3` for a pack's transcoder, its
    /// hook for a dictionary opened from disk.
    #[must_use]
    pub fn dictionary_name(&self, layer: usize) -> String {
        match self.dictionaries.get(layer) {
            Some(d) if !d.feature_data => d.site.clone(),
            _ => format!("block {layer}"),
        }
    }
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
    /// The dictionaries, numbered as requests name them.
    pub dictionaries: Vec<DictionaryInfo>,
    /// Context length.
    pub n_positions: usize,
    /// Base tags that label some feature.
    pub tags: Vec<String>,
    /// Whether the files came from the browser's cache.
    pub from_cache: bool,
    /// Whether this is a model file the person opened from their computer (no pack:
    /// no feature data).
    pub from_disk: bool,
    /// For a model from disk: whether it is kept in this browser for the next visit (or
    /// was opened from that copy), or why not, as a sentence.
    pub kept: Option<String>,
    /// Which engine answers.
    pub engine: EngineInfo,
    /// Where the pack's features stand: the model answers first, they load after it.
    pub features: FeatureData,
    /// The lessons the pack carries, fetched with its model.
    pub lessons: Vec<PackLesson>,
}

/// A lesson a pack carries: its name (the file's stem) and the file's JSON, or why it
/// could not be read. The JSON travels as text (a lesson's tagged claims do not pass
/// through the worker's binary messages) and is read by [`PackLesson::lesson`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackLesson {
    /// The name a link gives it: `lesson=pack:NAME`.
    pub name: String,
    /// The lesson file's JSON (checked to read as a lesson), or why it could not be read.
    pub json: Result<String, String>,
}

impl PackLesson {
    /// The lesson, or why it could not be read.
    pub fn lesson(&self) -> Result<Lesson, String> {
        let json = self.json.as_ref().map_err(Clone::clone)?;
        Lesson::parse(json.as_bytes()).map_err(|e| e.to_string())
    }
}

/// Where a pack's features (its transcoders, corpus and labels) stand. The page answers
/// with the model as soon as it has loaded; what needs features waits for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeatureData {
    /// Being fetched; requests that need them wait.
    Loading,
    /// Loaded, or there are none to load (a model opened on its own).
    Ready,
    /// They could not be loaded; why. The model still answers.
    Failed(String),
    /// The labels and the first `blocks` blocks' transcoders are in, the rest are being
    /// fetched: a prompt's analysis shows those blocks' features; every other request
    /// that needs features waits for all of them. (Last, so that the lesson previews
    /// written before it, which hold a `FeatureData`, read as they did.)
    Partial {
        /// The blocks whose features are in (the first ones).
        blocks: usize,
    },
    /// As `Partial`, while the model itself (split over files) has only its first blocks
    /// in: those blocks compute what the whole model computes there, so a prompt's
    /// analysis shows their features, but not the predictions (they need every block);
    /// every other request waits for the rest of the model. (Last, as `Partial`.)
    FirstBlocks {
        /// The blocks whose features are in (the first ones).
        blocks: usize,
    },
}

impl FeatureData {
    /// Whether more of them are coming (none yet, or some blocks').
    #[must_use]
    pub fn is_loading(&self) -> bool {
        matches!(
            self,
            Self::Loading | Self::Partial { .. } | Self::FirstBlocks { .. }
        )
    }
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
    /// Which engine answers now: the answer to [`SwitchEngine`], and also sent unasked
    /// (with request number 0) when the GPU engine fails and the CPU takes over.
    Engine(EngineInfo),
    /// Answer to [`Analyze`].
    Analysis(PromptAnalysis),
    /// Answer to [`Feature`].
    Feature(Box<FeatureView>),
    /// A feature measured live.
    LiveFeature(Box<LiveFeature>),
    /// Answer to [`LiveExample`].
    LiveExample(ExampleActivations),
    /// Answer to [`OnPrompt`]: the tokens' texts and activations.
    OnPrompt(Vec<(String, f32)>),
    /// Answer to [`Search`].
    Search(Vec<SearchHit>),
    /// Answer to [`SteerRequest`].
    Steer(Box<SteerResult>),
    /// Answer to [`Circuit`].
    Circuit(Box<GraphFile>),
    /// Answer to [`Attention`].
    Attention(Box<AttentionPatterns>),
    /// Answer to [`Lens`].
    Lens(Box<LogitLens>),
    /// Answer to [`Intervene`].
    Intervention(Vec<LogitChange>),
    /// Answer to [`Quiz`].
    Quiz(QuizRound),
    /// Answer to [`SuggestGroups`].
    Suggestions(Vec<Suggestion>),
    /// Answer to [`QkAsk`].
    Qk(Box<QkAttribution>),
    /// Answer to [`EdgeAsk`].
    EdgeHeads(Box<EdgeHeads>),
    /// The request failed; why, in words.
    Error(String),
    /// Answer to [`CarryRows`].
    Rows(Vec<Row>),
    /// Answer to [`GraphWorkOf`].
    GraphWork(Option<GraphWork>),
    /// Answer to [`ContinuePlain`]: the tokens generated.
    Continuation(Vec<u32>),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page and the worker exchange messages in bincode (gloo-worker's codec), which
    /// cannot read what needs a self-describing format (internally tagged enums, skipped
    /// fields): what does not round-trip here would panic in the page.
    fn round_trips(response: &Response) {
        let bytes = bincode::serialize(response).unwrap();
        let back: Response = bincode::deserialize(&bytes).unwrap();
        assert_eq!(&back, response);
    }

    #[test]
    fn a_packs_information_with_its_lessons_passes_the_workers_codec() {
        let lesson = crate::lessons::BUILT_IN[0].1;
        let info = PackInfo {
            name: "brown".to_owned(),
            description: String::new(),
            n_layer: 4,
            n_head: 4,
            dictionaries: Vec::new(),
            n_positions: 128,
            tags: vec!["NN".to_owned()],
            from_cache: false,
            from_disk: false,
            kept: None,
            engine: EngineInfo {
                gpu: None,
                note: Some("why not".to_owned()),
                helper_worker: true,
            },
            features: FeatureData::Failed("a reason".to_owned()),
            lessons: vec![
                PackLesson {
                    name: "ok".to_owned(),
                    json: Ok(lesson.to_owned()),
                },
                PackLesson {
                    name: "bad".to_owned(),
                    json: Err("not a lesson".to_owned()),
                },
            ],
        };
        round_trips(&Response::Ready(info.clone()));
        assert!(info.lessons[0].lesson().is_ok());
        assert_eq!(info.lessons[1].lesson().unwrap_err(), "not a lesson");
    }
}
