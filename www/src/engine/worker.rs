//! The engine worker: loads the pack (from the browser's cache when it can), or a model
//! file the person opened, moves the model to the GPU (WebGPU) when the browser has one,
//! and answers the page's requests off the page's thread, so the page stays responsive
//! while the model runs. Without WebGPU, or when the GPU fails, the CPU engine answers.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::rc::Rc;
use std::sync::Arc;

use glassbox_dict::Dictionary;
use glassbox_lab::{AdapterPreference, Alone, Beside, EngineInfo, Lab, Lesson, site_name};
use glassbox_model::Model;
use glassbox_pack::{Corpus, FeatureShard, LabelIndex, Pack, PackFiles};
use gloo_worker::{HandlerId, Worker, WorkerScope};
use wasm_bindgen::JsCast;
use web_sys::Cache;

use super::columns::{self, ColumnWorker};
use super::helpers::{Helpers, helper_count, spread_graph};
use super::protocol::{
    Analyze, Attention, CarryRows, Circuit, ContinuePlain, DictionaryInfo, EdgeAsk, EngineRequest,
    Envelope, Feature, FeatureData, FeatureView, GraphWork, GraphWorkOf, ImportGraph, Intervene,
    Lens, LiveExample, LiveFeatureOf, OnPrompt, PackInfo, PackLesson, PickedFile, QkAsk, Quiz,
    Request, Response, Search, SteerNodes, SuggestGroups, SwitchEngine,
};
use super::turn::Turns;
use super::{fetch, kept};

/// Tokens each side of an example's token that the feature view shows.
const EXAMPLE_CONTEXT: usize = 12;

/// Texts of the sample that added dictionaries' features are measured on, taken from the
/// default pack's corpus, and the corpus tokens in each.
const SAMPLE_TEXTS: (usize, usize) = (32, 48);

/// A loaded pack (or a model opened alone), ready to answer.
pub struct Loaded {
    lab: Lab,
    /// The pack and its URL; `None` for a model opened from a file.
    pack: Option<(Pack, String)>,
    info: PackInfo,
    /// The sample text added dictionaries are measured on (from the first pack's corpus,
    /// kept when a model is opened from disk; empty until dictionaries are first added).
    sample_texts: Rc<Vec<String>>,
    /// For a pack whose model is split over files, while `lab` runs its first file's
    /// blocks alone: what loading the rest needs. Meanwhile a prompt's analysis is
    /// answered without predictions, and every other request waits.
    rest_of_model: Option<Rc<RestOfModel>>,
}

/// What loading the rest of a split model needs: its first file, read again with the
/// others, and the engine the page asked for, which the whole model starts on.
pub struct RestOfModel {
    first_files: PackFiles,
    engine: EngineRequest,
}

impl Loaded {
    /// The engine that answers; while a split model's first blocks run alone on the CPU,
    /// with a note that the GPU is tried for the whole model (unless the CPU was asked for).
    fn engine_info(&self) -> EngineInfo {
        engine_info(&self.lab, self.rest_of_model.as_deref())
    }
}

/// `lab`'s engine, with the note [`Loaded::engine_info`] adds while `rest_of_model` is
/// coming.
fn engine_info(lab: &Lab, rest_of_model: Option<&RestOfModel>) -> EngineInfo {
    let mut info = lab.engine_info();
    if rest_of_model.is_some_and(|rest| rest.engine != EngineRequest::Cpu) {
        info.note = Some(
            "the model's first blocks run on the CPU while the rest of it arrives; the GPU \
             is tried once the whole model is in"
                .to_owned(),
        );
    }
    info
}

/// Where the pack's corpus is: fetched when a request first needs it
/// ([`Request::needs_corpus`]), not with the features (most views never show an example).
#[derive(Debug, Clone, PartialEq, Eq)]
enum CorpusFetch {
    NotAsked,
    Fetching,
    Failed(String),
}

enum State {
    Idle,
    Loading,
    Ready(Rc<Loaded>),
    Failed(String),
}

/// What the worker tells itself when asynchronous work ends.
pub enum Message {
    /// The pack (its model) finished loading, or failed to.
    Loaded(Result<Box<Loaded>, String>),
    /// The pack's features were added to the model loaded by load number `generation`,
    /// or failed to load.
    FeaturesLoaded {
        /// The load they belong to (a later load makes them stale).
        generation: u64,
        /// The pack with its features.
        result: Result<Box<Loaded>, String>,
    },
    /// A request computed in the background was answered.
    Answered {
        /// Who asked.
        who: HandlerId,
        /// Their request's number.
        id: u64,
        /// The answer.
        body: Response,
    },
    /// The pack's corpus arrived (or failed to) for load number `generation`.
    Corpus {
        /// The load it belongs to (a later load makes it stale).
        generation: u64,
        /// The corpus.
        corpus: Result<Corpus, String>,
    },
    /// The column helper started for load number `generation` serves (or cannot).
    ColumnsReady {
        /// The load it was started for.
        generation: u64,
        /// `Ok` once it serves, or why it cannot.
        result: Result<(), String>,
    },
    /// A feature shard arrived (or failed to) for a waiting request.
    Shard {
        /// Who asked.
        who: HandlerId,
        /// What they asked.
        request: Envelope<Request>,
        /// The shard's path.
        path: String,
        /// The shard.
        shard: Result<FeatureShard, String>,
    },
}

/// The worker's state: the pack, fetched shards, requests waiting for the pack, and
/// whom to tell when the engine changes.
pub struct EngineWorker {
    state: State,
    loaders: Vec<(HandlerId, u64)>,
    waiting: Vec<(HandlerId, Envelope<Request>)>,
    /// Requests that need the pack's features, waiting for them.
    waiting_features: Vec<(HandlerId, Envelope<Request>)>,
    /// Why the pack's features did not load, once they failed to.
    features_error: Option<String>,
    /// Requests that need the pack's corpus, waiting for it.
    waiting_corpus: Vec<(HandlerId, Envelope<Request>)>,
    /// Whether the pack's corpus is being fetched, or why it failed to load.
    corpus: CorpusFetch,
    /// Loads started so far: the features of an older one are dropped.
    generation: u64,
    shards: HashMap<String, Rc<FeatureShard>>,
    /// The page that loaded the pack, and the engine it was last told of.
    listener: Option<(HandlerId, EngineInfo)>,
    /// While a model file opens: what was loaded before, kept if the file fails.
    before_opening: Option<Rc<Loaded>>,
    /// Requests the page gave up on (superseded) before their work started.
    cancelled: Rc<RefCell<HashSet<(HandlerId, u64)>>>,
    /// How many helper workers may carry a graph's batches (`None`: one per core).
    workers: Option<usize>,
    /// The helper workers graphs of the loaded pack are spread over, once started.
    helpers: Option<Rc<Helpers>>,
    /// The worker that computes part of the CPU engine's products, where one can run.
    columns: Option<ColumnWorker>,
    /// How the last graph was computed, and of which prompt.
    graph_work: Rc<RefCell<Option<(GraphWorkOf, GraphWork)>>>,
    /// Requests that compute a graph take turns.
    graph_turns: Rc<Turns>,
}

/// Cancellations kept at most; older ones are of requests long answered.
const MAX_CANCELLED: usize = 4096;

/// Lets the worker's event loop run once, so that messages already sent (a cancellation)
/// are read before work starts.
async fn yield_to_messages() {
    let wait = js_sys::Promise::new(&mut |resolve, _| {
        let scope: Option<web_sys::WorkerGlobalScope> = js_sys::global().dyn_into().ok();
        let queued = scope.map(|s| s.set_timeout_with_callback(&resolve));
        if !matches!(queued, Some(Ok(_))) {
            let _ = resolve.call0(&wasm_bindgen::JsValue::NULL);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(wait).await;
}

impl Worker for EngineWorker {
    type Message = Message;
    type Input = Envelope<Request>;
    type Output = Envelope<Response>;

    fn create(_scope: &WorkerScope<Self>) -> Self {
        Self {
            state: State::Idle,
            loaders: Vec::new(),
            waiting: Vec::new(),
            waiting_features: Vec::new(),
            features_error: None,
            waiting_corpus: Vec::new(),
            corpus: CorpusFetch::NotAsked,
            generation: 0,
            shards: HashMap::new(),
            listener: None,
            before_opening: None,
            cancelled: Rc::default(),
            workers: None,
            helpers: None,
            columns: None,
            graph_work: Rc::default(),
            graph_turns: Rc::default(),
        }
    }

    fn update(&mut self, scope: &WorkerScope<Self>, message: Self::Message) {
        self.handle(scope, message);
        self.keep_columns(scope);
    }

    fn received(&mut self, scope: &WorkerScope<Self>, request: Self::Input, who: HandlerId) {
        self.receive(scope, request, who);
        self.keep_columns(scope);
    }
}

impl EngineWorker {
    /// What the worker does with a message it sent itself.
    fn handle(&mut self, scope: &WorkerScope<Self>, message: Message) {
        match message {
            Message::Loaded(result) => {
                let reply = match &result {
                    Ok(loaded) => Response::Ready(loaded.info.clone()),
                    Err(error) => Response::Error(error.clone()),
                };
                for (who, id) in self.loaders.drain(..) {
                    scope.respond(
                        who,
                        Envelope {
                            id,
                            body: reply.clone(),
                        },
                    );
                }
                if let (Ok(loaded), Some((_, told))) = (&result, &mut self.listener) {
                    told.clone_from(&loaded.info.engine);
                }
                let before = self.before_opening.take();
                self.state = match (result, before) {
                    (Ok(loaded), _) => {
                        let loaded: Rc<Loaded> = Rc::from(loaded);
                        if loaded.info.features == FeatureData::Loading {
                            self.load_features(scope, Rc::clone(&loaded));
                        }
                        State::Ready(loaded)
                    }
                    // A model file that failed to open loses nothing: the pack stays.
                    (Err(_), Some(before)) => State::Ready(before),
                    (Err(error), None) => State::Failed(error),
                };
                for (who, request) in std::mem::take(&mut self.waiting) {
                    self.received(scope, request, who);
                }
            }
            Message::FeaturesLoaded { generation, result } => {
                if generation == self.generation {
                    self.features_loaded(scope, result);
                }
            }
            Message::Corpus { generation, corpus } => {
                if generation == self.generation {
                    self.corpus_loaded(scope, corpus);
                }
            }
            Message::ColumnsReady { generation, result } => {
                if let Some(columns) = self.columns.as_mut().filter(|c| c.generation == generation)
                {
                    columns.heard(result);
                }
            }
            Message::Shard {
                who,
                request,
                path,
                shard,
            } => match shard {
                Ok(shard) => {
                    self.shards.insert(path, Rc::new(shard));
                    self.received(scope, request, who);
                }
                Err(error) => scope.respond(
                    who,
                    Envelope {
                        id: request.id,
                        body: Response::Error(error),
                    },
                ),
            },
            Message::Answered { who, id, body } => {
                if let Response::Engine(info) = &body
                    && let Some((_, told)) = &mut self.listener
                {
                    told.clone_from(info);
                }
                scope.respond(who, Envelope { id, body });
                self.tell_engine_changes(scope);
            }
        }
    }

    /// Answers (or queues) a request of the page's.
    fn receive(&mut self, scope: &WorkerScope<Self>, request: Envelope<Request>, who: HandlerId) {
        if let Request::Cancel(id) = request.body {
            // Waiting for the pack: dropped at once; else skipped when its turn comes.
            self.waiting.retain(|(w, r)| (*w, r.id) != (who, id));
            self.waiting_features
                .retain(|(w, r)| (*w, r.id) != (who, id));
            self.waiting_corpus.retain(|(w, r)| (*w, r.id) != (who, id));
            let mut cancelled = self.cancelled.borrow_mut();
            if cancelled.len() >= MAX_CANCELLED {
                cancelled.clear();
            }
            cancelled.insert((who, id));
            return;
        }
        if let Request::Load {
            base,
            engine,
            workers,
        } = &request.body
        {
            self.workers = *workers;
            self.load(scope, base.clone(), *engine, who, request.id);
            return;
        }
        if let Request::OpenModel { files, engine } = &request.body {
            self.open_model(scope, files.clone(), *engine, who, request.id);
            return;
        }
        let body = match &self.state {
            State::Idle | State::Loading => {
                self.waiting.push((who, request));
                return;
            }
            State::Failed(error) => Response::Error(format!("the pack did not load: {error}")),
            // Only a prompt's analysis is answered by the model's first blocks.
            State::Ready(loaded)
                if loaded.rest_of_model.is_some()
                    && !matches!(request.body, Request::Analyze(_)) =>
            {
                let Some(error) = &self.features_error else {
                    self.waiting_features.push((who, request));
                    return;
                };
                Response::Error(format!("the pack did not load: {error}"))
            }
            // An engine switch waits too while they come: the features are attached to the
            // engine in use when they arrive, which a switch meanwhile would leave behind.
            State::Ready(loaded)
                if loaded.info.features.is_loading()
                    && (request.body.needs_features()
                        || (matches!(request.body, Request::SwitchEngine(_))
                            && self.features_error.is_none())) =>
            {
                let Some(error) = &self.features_error else {
                    self.waiting_features.push((who, request));
                    return;
                };
                Response::Error(format!("the pack's features did not load: {error}"))
            }
            State::Ready(loaded)
                if request.body.needs_corpus()
                    && loaded.pack.is_some()
                    && loaded.lab.corpus().is_none() =>
            {
                match &self.corpus {
                    CorpusFetch::Failed(error) => {
                        Response::Error(format!("the pack's corpus did not load: {error}"))
                    }
                    CorpusFetch::Fetching => {
                        self.waiting_corpus.push((who, request));
                        return;
                    }
                    CorpusFetch::NotAsked => {
                        let loaded = Rc::clone(loaded);
                        self.waiting_corpus.push((who, request));
                        self.fetch_corpus(scope, &loaded);
                        return;
                    }
                }
            }
            State::Ready(loaded) => {
                let loaded = Rc::clone(loaded);
                match self.answer(scope, loaded, &request, who) {
                    Some(body) => body,
                    None => return,
                }
            }
        };
        scope.respond(
            who,
            Envelope {
                id: request.id,
                body,
            },
        );
    }

    /// Starts, keeps or lets go of the column helper, as the loaded pack and the engine
    /// call for: one while a pack's whole model runs on the CPU engine, where this page
    /// may start one and the machine has the cores and memory for a second copy of the
    /// model (the rule of a graph's helpers: none with `?workers=1`, so none inside those
    /// helpers), sharing that model's products once it serves; the page is told when that
    /// changes. Whether one may start is looked at only when none runs.
    fn keep_columns(&mut self, scope: &WorkerScope<Self>) {
        let wanted = match &self.state {
            State::Ready(loaded)
                if loaded.rest_of_model.is_none() && loaded.lab.engine_info().gpu.is_none() =>
            {
                loaded
                    .pack
                    .as_ref()
                    .map(|(pack, base)| (pack, base, loaded))
            }
            _ => None,
        };
        let generation = self.generation;
        let current = |c: &ColumnWorker| {
            wanted
                .as_ref()
                .is_some_and(|(_, base, _)| c.generation == generation && c.base == **base)
        };
        if !self.columns.as_ref().is_some_and(current) {
            self.columns = None;
        }
        if let Some((pack, base, loaded)) = wanted {
            if self.columns.is_none() && columns::may_start() {
                let in_memory = 4 * bytes_of(pack, &pack.model_paths());
                if helper_count(self.workers, in_memory) >= 2 {
                    let scope = scope.clone();
                    self.columns =
                        ColumnWorker::start(base, generation, &loaded.lab, move |result| {
                            scope.send_message(Message::ColumnsReady { generation, result });
                        });
                }
            }
            if let Some(columns) = self.columns.as_mut() {
                columns.share(Rc::as_ptr(loaded).addr(), &loaded.lab);
            }
        }
        self.tell_engine_changes(scope);
    }

    /// Tells the page when the engine changed without being asked (the GPU failed, the
    /// column helper came or went).
    fn tell_engine_changes(&mut self, scope: &WorkerScope<Self>) {
        let (State::Ready(loaded), Some((page, told))) = (&self.state, &mut self.listener) else {
            return;
        };
        let mut now = loaded.engine_info();
        // Whether the column helper shares the CPU engine's products now.
        now.helper_worker = glassbox_model::column_split::sharing();
        if now != *told {
            told.clone_from(&now);
            scope.respond(
                *page,
                Envelope {
                    id: 0,
                    body: Response::Engine(now),
                },
            );
        }
    }

    /// Opens a model the person picked in place of the pack; while it loads, requests
    /// wait.
    fn open_model(
        &mut self,
        scope: &WorkerScope<Self>,
        files: Vec<PickedFile>,
        engine: EngineRequest,
        who: HandlerId,
        id: u64,
    ) {
        match &self.state {
            State::Loading => {
                let body = Response::Error(
                    "something is still loading; open the model once it has".to_owned(),
                );
                scope.respond(who, Envelope { id, body });
                return;
            }
            // Opened once the pack's features are in: added dictionaries number after the
            // pack's, and are measured on its corpus.
            State::Ready(loaded)
                if loaded.info.features.is_loading() && self.features_error.is_none() =>
            {
                let body = Response::Progress {
                    stage: "waiting for the pack's features to finish loading".to_owned(),
                    loaded: 0,
                    total: 0,
                };
                scope.respond(who, Envelope { id, body });
                let body = Request::OpenModel { files, engine };
                self.waiting_features.push((who, Envelope { id, body }));
                return;
            }
            State::Ready(loaded) => self.before_opening = Some(Rc::clone(loaded)),
            State::Idle | State::Failed(_) => {}
        }
        self.new_generation();
        let told = match &self.state {
            State::Ready(loaded) => loaded.engine_info(),
            _ => EngineInfo {
                gpu: None,
                note: None,
                helper_worker: false,
            },
        };
        self.listener = Some((who, told));
        self.state = State::Loading;
        self.shards.clear();
        self.loaders.push((who, id));
        let progress_scope = scope.clone();
        let before = self.before_opening.clone();
        scope.send_future(async move {
            let progress = move |stage: &str, loaded: u64, total: u64| {
                let body = Response::Progress {
                    stage: stage.to_owned(),
                    loaded,
                    total,
                };
                progress_scope.respond(who, Envelope { id, body });
            };
            let mut opened = open_model_files(&files, engine, before.as_deref(), &progress).await;
            if let Ok(loaded) = &mut opened {
                progress("keeping the files in this browser for the next visit", 0, 0);
                if let Some(note) = keep_for_next_visit(&files, &loaded.info.name).await {
                    loaded.info.kept = Some(note);
                }
            }
            Message::Loaded(opened.map(Box::new))
        });
    }

    /// Starts a new load: features or a corpus still coming for an older one are
    /// dropped, and requests waiting for them are answered.
    fn new_generation(&mut self) {
        self.generation += 1;
        self.helpers = None;
        self.features_error = None;
        self.corpus = CorpusFetch::NotAsked;
        let waited = std::mem::take(&mut self.waiting_features)
            .into_iter()
            .chain(std::mem::take(&mut self.waiting_corpus));
        self.waiting.extend(waited);
    }

    /// Fetches the corpus of the pack `loaded` runs in the background.
    fn fetch_corpus(&mut self, scope: &WorkerScope<Self>, loaded: &Loaded) {
        let Some((pack, base)) = loaded.pack.clone() else {
            return;
        };
        self.corpus = CorpusFetch::Fetching;
        let generation = self.generation;
        scope.send_future(async move {
            let corpus = load_pack_corpus(&pack, &base).await;
            Message::Corpus { generation, corpus }
        });
    }

    /// The pack's corpus arrived (or failed to): the requests that waited for it are
    /// answered.
    fn corpus_loaded(&mut self, scope: &WorkerScope<Self>, corpus: Result<Corpus, String>) {
        match corpus {
            Ok(corpus) => {
                self.corpus = CorpusFetch::NotAsked;
                if let State::Ready(loaded) = &self.state {
                    // Already there when opening a model fetched it first: the same corpus.
                    let _ = loaded.lab.add_corpus(corpus);
                }
            }
            Err(error) => self.corpus = CorpusFetch::Failed(error),
        }
        for (who, request) in std::mem::take(&mut self.waiting_corpus) {
            self.received(scope, request, who);
        }
    }

    /// Fetches `model_only`'s pack features in the background, telling the page that
    /// loaded it how far along they are: the first block's as soon as they are in, then
    /// all of them.
    fn load_features(&self, scope: &WorkerScope<Self>, model_only: Rc<Loaded>) {
        let generation = self.generation;
        let page = self.listener.as_ref().map(|(who, _)| *who);
        let (progress_scope, partial_scope) = (scope.clone(), scope.clone());
        scope.send_future(async move {
            let progress = move |stage: &str, loaded: u64, total: u64| {
                if let Some(page) = page {
                    let body = Response::Progress {
                        stage: stage.to_owned(),
                        loaded,
                        total,
                    };
                    progress_scope.respond(page, Envelope { id: 0, body });
                }
            };
            let partial = move |first: Loaded| {
                partial_scope.send_message(Message::FeaturesLoaded {
                    generation,
                    result: Ok(Box::new(first)),
                });
            };
            let result = load_pack_features(&model_only, &progress, &partial).await;
            Message::FeaturesLoaded {
                generation,
                result: result.map(Box::new),
            }
        });
    }

    /// The pack's features arrived (the first block's, or all), or failed to: the page is
    /// told, and the requests that waited for them are answered (or wait on, for all).
    fn features_loaded(&mut self, scope: &WorkerScope<Self>, result: Result<Box<Loaded>, String>) {
        let info = match result {
            Ok(loaded) => {
                let info = loaded.info.clone();
                self.state = State::Ready(Rc::from(loaded));
                info
            }
            Err(error) => {
                self.features_error = Some(error.clone());
                let State::Ready(loaded) = &self.state else {
                    return;
                };
                PackInfo {
                    features: FeatureData::Failed(error),
                    ..loaded.info.clone()
                }
            }
        };
        if let Some((page, told)) = &mut self.listener {
            told.clone_from(&info.engine);
            let body = Response::Ready(info);
            scope.respond(*page, Envelope { id: 0, body });
        }
        for (who, request) in std::mem::take(&mut self.waiting_features) {
            self.received(scope, request, who);
        }
    }

    fn load(
        &mut self,
        scope: &WorkerScope<Self>,
        base: String,
        engine: EngineRequest,
        who: HandlerId,
        id: u64,
    ) {
        let told = match &self.state {
            State::Ready(loaded) => loaded.engine_info(),
            _ => EngineInfo {
                gpu: None,
                note: None,
                helper_worker: false,
            },
        };
        self.listener = Some((who, told));
        match &self.state {
            State::Ready(loaded) => {
                let body = Response::Ready(loaded.info.clone());
                scope.respond(who, Envelope { id, body });
            }
            State::Loading => self.loaders.push((who, id)),
            State::Idle | State::Failed(_) => {
                self.new_generation();
                self.state = State::Loading;
                self.loaders.push((who, id));
                let progress_scope = scope.clone();
                scope.send_future(async move {
                    let progress = move |stage: &str, loaded: u64, total: u64| {
                        let body = Response::Progress {
                            stage: stage.to_owned(),
                            loaded,
                            total,
                        };
                        progress_scope.respond(who, Envelope { id, body });
                    };
                    Message::Loaded(load_pack(base, engine, &progress).await.map(Box::new))
                });
            }
        }
    }

    /// The answer to `request`, or `None` when it comes later (computed in the background,
    /// or waiting for a shard being fetched).
    fn answer(
        &mut self,
        scope: &WorkerScope<Self>,
        loaded: Rc<Loaded>,
        request: &Envelope<Request>,
        who: HandlerId,
    ) -> Option<Response> {
        match &request.body {
            Request::Load { .. } | Request::OpenModel { .. } => {
                return Some(Response::Ready(loaded.info.clone()));
            }
            Request::Feature(Feature { layer, feature }) => {
                return self.feature(scope, &loaded, request, who, *layer, *feature);
            }
            Request::LiveFeature(LiveFeatureOf { layer, feature }) => {
                return Some(match loaded.lab.live_feature(*layer, *feature) {
                    Ok(live) => Response::LiveFeature(Box::new(live)),
                    Err(error) => Response::Error(error.to_string()),
                });
            }
            Request::GraphWork(of) => {
                let work = self.graph_work.borrow();
                let known = work.as_ref().filter(|(asked, _)| asked == of);
                return Some(Response::GraphWork(known.map(|(_, work)| work.clone())));
            }
            _ => {}
        }
        let helpers = if request.body.graph_needed().is_some()
            || matches!(request.body, Request::Steer(_) | Request::SteerNodes(_))
        {
            self.helpers_for(&loaded)
        } else {
            None
        };
        let (id, body) = (request.id, request.body.clone());
        let (cancelled, graph_work) = (Rc::clone(&self.cancelled), Rc::clone(&self.graph_work));
        let graph_turns = Rc::clone(&self.graph_turns);
        scope.send_future(async move {
            yield_to_messages().await;
            if cancelled.borrow_mut().remove(&(who, id)) {
                let body = Response::Error("superseded by a later request".to_owned());
                return Message::Answered { who, id, body };
            }
            if let Some((text, contrast)) = body.graph_needed() {
                let _turn = graph_turns.take().await;
                let work = spread_graph(&loaded.lab, text, contrast, helpers.as_deref()).await;
                if let Some(work) = work {
                    *graph_work.borrow_mut() = Some(work);
                }
            }
            let beside: &dyn Beside = helpers.as_deref().map_or(&Alone, |h| h);
            let mut body = compute(&loaded.lab, body, beside)
                .await
                .unwrap_or_else(|e| Response::Error(e.to_string()));
            if let (Some(_), Response::Analysis(analysis)) = (&loaded.rest_of_model, &mut body) {
                // The first blocks' logits are not the model's.
                analysis.predictions.clear();
            }
            Message::Answered { who, id, body }
        });
        None
    }

    /// The helper workers `loaded`'s graphs are spread over, started when first asked:
    /// for a pack's own transcoders on the CPU engine, as many as [`Self::workers`] and
    /// the memory allow; `None` when there are none.
    fn helpers_for(&mut self, loaded: &Loaded) -> Option<Rc<Helpers>> {
        let (pack, base) = loaded.pack.as_ref()?;
        let blocks = pack.manifest().dictionaries.len();
        let own_transcoders = loaded.lab.dictionaries.len() == blocks;
        if !own_transcoders
            || loaded.info.features != FeatureData::Ready
            || loaded.lab.engine_info().gpu.is_some()
        {
            return None;
        }
        if self.helpers.is_none() {
            let in_memory = 4
                * (bytes_of(pack, &pack.model_paths())
                    + bytes_of(pack, &pack.dictionary_paths(0..blocks)));
            let count = helper_count(self.workers, in_memory);
            self.helpers = Helpers::start(base, count).map(Rc::new);
        }
        self.helpers.clone()
    }

    fn feature(
        &self,
        scope: &WorkerScope<Self>,
        loaded: &Loaded,
        request: &Envelope<Request>,
        who: HandlerId,
        layer: usize,
        feature: usize,
    ) -> Option<Response> {
        if let Err(error) = loaded.lab.check_feature(layer, feature) {
            return Some(Response::Error(error.to_string()));
        }
        let Some((pack, base)) = loaded
            .pack
            .as_ref()
            .filter(|_| loaded.lab.has_feature_data(layer))
        else {
            return Some(Response::Error(format!(
                "dictionary {layer} has no precomputed feature data; its features are measured \
                 live"
            )));
        };
        let path = match pack.shard_path(layer, feature) {
            Ok(path) => path,
            Err(error) => return Some(Response::Error(error.to_string())),
        };
        let Some(shard) = self.shards.get(&path) else {
            let (base, pack, request) = (base.clone(), pack.clone(), request.clone());
            scope.send_future(async move {
                let cache = fetch::open_cache().await;
                let shard = fetch::pack_file(cache.as_ref(), &base, &pack, &path, &|_| {})
                    .await
                    .and_then(|(file, _)| {
                        pack.load_shard(layer, feature, &file)
                            .map_err(|e| e.to_string())
                    });
                Message::Shard {
                    who,
                    request,
                    path,
                    shard,
                }
            });
            return None;
        };
        // A shard that lacks the feature is an answer too (an error), never silence.
        let Some(record) = feature
            .checked_sub(shard.first)
            .and_then(|i| shard.features.get(i))
            .cloned()
        else {
            return Some(Response::Error(format!(
                "{path} does not hold feature {feature} of block {layer}"
            )));
        };
        Some(Response::Feature(Box::new(feature_view(
            &loaded.lab,
            layer,
            record,
        ))))
    }
}

/// Tokens the logit lens lists in each cell.
const LENS_TOP: usize = 5;

/// Top examples sent as text with a feature's record.
const SNIPPETS: usize = 3;

/// A record with the texts of the tokens and documents it names.
pub(crate) fn feature_view(
    lab: &Lab,
    layer: usize,
    record: glassbox_pack::FeatureRecord,
) -> FeatureView {
    let mut ids: Vec<u32> = record
        .logits
        .top
        .iter()
        .chain(&record.logits.bottom)
        .map(|e| e.0)
        .chain(record.profile.tokens.iter().map(|t| t.0))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut documents: Vec<u32> = record.examples().map(|e| e.0).collect();
    documents.sort_unstable();
    documents.dedup();
    let keys: Vec<&str> = record
        .profile
        .tag
        .iter()
        .chain(&record.profile.genre)
        .map(|c| c.key.as_str())
        .collect();
    let index = lab.corpus().map(|c| &c.index);
    let names = lab
        .labels
        .tag_names
        .iter()
        .chain(index.iter().flat_map(|i| &i.genres))
        .filter(|(key, _)| keys.contains(&key.as_str()))
        .cloned()
        .collect();
    let snippets = record
        .top
        .iter()
        .take(SNIPPETS)
        .filter_map(|e| lab.snippet(e.document(), e.position(), (8, 3), e.activation()))
        .collect();
    FeatureView {
        layer,
        names,
        snippets,
        token_texts: ids.into_iter().map(|id| (id, lab.token_text(id))).collect(),
        documents: documents
            .into_iter()
            .filter_map(|d| {
                let entry = index?.documents.get(d as usize)?;
                Some((d, entry.id.clone()))
            })
            .collect(),
        record,
    }
}

/// The graph a [`Circuit`] request asks for.
async fn graph_of(lab: &Lab, circuit: Circuit) -> glassbox_lab::Result<glassbox_lab::GraphFile> {
    let Circuit {
        text,
        contrast,
        nodes,
        edges,
    } = circuit;
    let thresholds = glassbox_lab::Thresholds { nodes, edges };
    lab.circuit(&text, contrast.as_ref(), thresholds).await
}

/// Answers a request that runs the model; a steered text's unsteered twin is continued
/// `beside` (a helper worker) when one is free.
pub(crate) async fn compute(
    lab: &Lab,
    request: Request,
    beside: &dyn Beside,
) -> glassbox_lab::Result<Response> {
    Ok(match request {
        Request::Analyze(Analyze { text }) => Response::Analysis(lab.analyze(&text, 10, 8).await?),
        Request::LiveExample(LiveExample {
            layer,
            feature,
            document,
            position,
        }) => Response::LiveExample(
            lab.example(layer, feature, document, position, EXAMPLE_CONTEXT)
                .await?,
        ),
        Request::OnPrompt(OnPrompt {
            layer,
            feature,
            text,
        }) => {
            let ids = lab.prompt_ids(&text)?;
            let acts = lab.feature_activations(&ids, layer, feature).await?;
            Response::OnPrompt(ids.iter().map(|&id| lab.token_text(id)).zip(acts).collect())
        }
        Request::Search(Search { query }) => Response::Search(lab.search(&query, 60).await?),
        Request::Steer(steer) => Response::Steer(Box::new(lab.steer_with(&steer, beside).await?)),
        Request::Attention(Attention { text, layer }) => {
            Response::Attention(Box::new(lab.attention(&text, layer).await?))
        }
        Request::Lens(Lens { text }) => {
            Response::Lens(Box::new(lab.logit_lens(&text, LENS_TOP).await?))
        }
        Request::Quiz(Quiz { seed, round }) => Response::Quiz(lab.quiz_round(seed, round)?),
        request @ (Request::Intervene(_)
        | Request::SteerNodes(_)
        | Request::Circuit(_)
        | Request::Qk(_)
        | Request::EdgeHeads(_)
        | Request::SuggestGroups(_)
        | Request::ImportGraph(_)) => circuits(lab, request, beside).await?,
        Request::SwitchEngine(SwitchEngine { gpu: true }) => {
            // A failure is not an error of the request: the answer says which engine runs
            // and why the GPU does not.
            let _ = lab
                .start_gpu(AdapterPreference::HighPerformance, true)
                .await;
            Response::Engine(lab.engine_info())
        }
        Request::SwitchEngine(SwitchEngine { gpu: false }) => {
            lab.stop_gpu();
            Response::Engine(lab.engine_info())
        }
        Request::CarryRows(CarryRows { ids, targets }) => {
            Response::Rows(lab.carry_rows(&ids, &targets).await?)
        }
        Request::ContinuePlain(ContinuePlain { ids, sampling }) => {
            Response::Continuation(lab.continue_plain(&ids, &sampling).await?)
        }
        Request::Load { .. }
        | Request::OpenModel { .. }
        | Request::Cancel(_)
        | Request::Feature(_)
        | Request::LiveFeature(_)
        | Request::GraphWork(_) => {
            return Err(glassbox_lab::LabError::Request(
                "this request is answered elsewhere".to_owned(),
            ));
        }
    })
}

/// Answers a request about a prompt's graph: the graph, an intervention on it, graph
/// steering, an edge split by heads, a head's QK attribution, suggested groups, or a graph
/// file read.
async fn circuits(
    lab: &Lab,
    request: Request,
    beside: &dyn Beside,
) -> glassbox_lab::Result<Response> {
    Ok(match request {
        Request::Intervene(Intervene {
            text,
            contrast,
            edit,
        }) => Response::Intervention(lab.intervene_node(&text, contrast.as_ref(), edit).await?),
        Request::SteerNodes(SteerNodes {
            text,
            edits,
            max_tokens,
            attention,
        }) => Response::Steer(Box::new(
            lab.steer_nodes_with(&text, &edits, max_tokens, attention, beside)
                .await?,
        )),
        Request::Circuit(circuit) => Response::Circuit(Box::new(graph_of(lab, circuit).await?)),
        Request::Qk(QkAsk {
            text,
            layer,
            head,
            query,
            key,
        }) => Response::Qk(Box::new(
            lab.qk_attribution(&text, layer, head, query, key).await?,
        )),
        Request::EdgeHeads(EdgeAsk {
            text,
            contrast,
            source,
            target,
        }) => Response::EdgeHeads(Box::new(
            lab.edge_heads(&text, contrast.as_ref(), &source, &target)
                .await?,
        )),
        Request::SuggestGroups(SuggestGroups { graph }) => Response::Suggestions(
            lab.suggest_supernodes(&graph_of(lab, graph).await?, glassbox_lab::SUGGEST_ALIKE),
        ),
        Request::ImportGraph(ImportGraph { name, url }) => {
            let read = |e: String| glassbox_lab::LabError::Request(format!("{name}: {e}"));
            let bytes =
                fetch::fetch_capped(&url, glassbox_lab::MAX_GRAPH_FILE_BYTES as u64, &|_| {})
                    .await
                    .map_err(|_| {
                        read(format!(
                            "could not be read (graph files of at most {} MB are read)",
                            glassbox_lab::MAX_GRAPH_FILE_BYTES / 1_000_000
                        ))
                    })?;
            let text = String::from_utf8(bytes).map_err(|_| read("not UTF-8 text".to_owned()))?;
            let dims = lab.model().dims();
            let graph = glassbox_lab::GraphFile::parse(&text)
                .and_then(|g| g.check_fits(dims.n_layer, dims.n_positions).map(|()| g))
                .map_err(|e| read(e.to_string()))?;
            Response::Circuit(Box::new(graph))
        }
        _ => {
            return Err(glassbox_lab::LabError::Request(
                "this request is answered elsewhere".to_owned(),
            ));
        }
    })
}

/// What a file is, for the progress bar.
fn stage_of(path: &str) -> &'static str {
    match path.split('/').next() {
        Some("model") => "model weights",
        Some("transcoders") => "transcoders",
        Some("corpus") => "corpus",
        _ => "feature labels",
    }
}

/// Fetches `paths` of `pack` (through the cache), telling `progress` the bytes so far of
/// all; returns the files and whether every one came from the cache.
pub(super) async fn fetch_files(
    cache: Option<&web_sys::Cache>,
    base: &str,
    pack: &Pack,
    paths: &[String],
    progress: &dyn Fn(&str, u64, u64),
) -> Result<(PackFiles, bool), String> {
    let mut files = PackFiles::default();
    let counted = Counted {
        before: 0,
        total: bytes_of(pack, paths),
    };
    let from_cache = fetch_into(cache, base, pack, paths, &mut files, counted, progress).await?;
    Ok((files, from_cache))
}

/// Where a fetch stands among the bytes `progress` is told of: `before` came earlier, of
/// `total` in all.
#[derive(Clone, Copy)]
struct Counted {
    before: u64,
    total: u64,
}

/// The bytes the manifest gives `paths` of `pack`, together.
fn bytes_of(pack: &Pack, paths: &[String]) -> u64 {
    paths
        .iter()
        .filter_map(|p| pack.entry(p).ok())
        .map(|e| e.bytes)
        .sum()
}

/// Fetches `paths` of `pack` (through the cache) into `files`, telling `progress` the
/// bytes so far as `counted` places them; returns whether every one came from the cache.
async fn fetch_into(
    cache: Option<&web_sys::Cache>,
    base: &str,
    pack: &Pack,
    paths: &[String],
    files: &mut PackFiles,
    counted: Counted,
    progress: &dyn Fn(&str, u64, u64),
) -> Result<bool, String> {
    let Counted { before, total } = counted;
    let (mut loaded, mut from_cache) = (before, true);
    for path in paths {
        let stage = stage_of(path);
        progress(stage, loaded, total);
        let so_far = loaded;
        let (file, cached) = fetch::pack_file(cache, base, pack, path, &|n| {
            progress(stage, so_far + n, total);
        })
        .await?;
        loaded += file.bytes().len() as u64;
        from_cache &= cached;
        files.insert(file);
    }
    progress("preparing", loaded, total);
    Ok(from_cache)
}

/// Loads the pack's model alone ([`Pack::model_paths`]): the first prediction waits for
/// nothing else. Its features follow ([`load_pack_features`]). Of a model split over
/// files, only the first file ([`Pack::first_model_paths`]): its blocks show their
/// features while the rest of the model arrives with the features.
async fn load_pack(
    base: String,
    engine: EngineRequest,
    progress: &dyn Fn(&str, u64, u64),
) -> Result<Loaded, String> {
    progress("manifest", 0, 0);
    let cache = fetch::open_cache().await;
    let manifest = fetch::manifest(cache.as_ref(), &base).await?;
    let pack = Pack::parse_manifest(&manifest).map_err(|e| e.to_string())?;
    let split = pack.model_is_split();
    let paths = if split {
        pack.first_model_paths()
    } else {
        pack.model_paths()
    };
    let (files, from_cache) = fetch_files(cache.as_ref(), &base, &pack, &paths, progress).await?;
    let lessons = pack_lessons(cache.as_ref(), &base, &pack).await;
    progress("preparing the model", 0, 0);
    let (model, tokenizer) = if split {
        pack.load_first_blocks(&files)
    } else {
        pack.load_model(&files)
    }
    .map_err(|e| e.to_string())?;
    let m = pack.manifest();
    let lab = Lab::from_model(m.name.clone(), model, tokenizer).map_err(|e| e.to_string())?;
    // The first blocks run on the CPU engine: the whole model moves to the GPU.
    if !split {
        start_engine(&lab, engine, progress).await;
    }
    let rest_of_model = split.then(|| {
        Rc::new(RestOfModel {
            first_files: files,
            engine,
        })
    });
    let info = PackInfo {
        name: m.name.clone(),
        description: m.description.clone(),
        n_layer: m.model.n_layer,
        n_head: lab.model().dims().n_head,
        // The pack's transcoders, as they will be once loaded.
        dictionaries: m
            .dictionaries
            .iter()
            .map(|d| DictionaryInfo {
                site: site_name(
                    &d.hook_name,
                    d.hook_name_out.as_deref().unwrap_or(&d.hook_name),
                ),
                d_sae: d.d_sae,
                feature_data: true,
            })
            .collect(),
        n_positions: m.model.n_positions,
        tags: Vec::new(),
        from_cache,
        from_disk: false,
        kept: None,
        engine: engine_info(&lab, rest_of_model.as_deref()),
        features: FeatureData::Loading,
        lessons,
    };
    Ok(Loaded {
        lab,
        pack: Some((pack, base)),
        info,
        sample_texts: Rc::default(),
        rest_of_model,
    })
}

/// Moves `lab`'s model to the GPU unless `engine` asks for the CPU; without a (hardware)
/// GPU the CPU engine answers, and the lab's engine info says why.
async fn start_engine(lab: &Lab, engine: EngineRequest, progress: &dyn Fn(&str, u64, u64)) {
    if engine != EngineRequest::Cpu {
        progress("weights to the GPU", 0, 0);
        let accept_software = engine == EngineRequest::Gpu;
        let _ = lab
            .start_gpu(AdapterPreference::HighPerformance, accept_software)
            .await;
    }
}

/// The lessons `pack` carries, each read or with the reason it could not be: a lesson
/// that fails leaves the pack and the other lessons working.
async fn pack_lessons(cache: Option<&Cache>, base: &str, pack: &Pack) -> Vec<PackLesson> {
    let mut lessons = Vec::new();
    for path in pack.lesson_paths() {
        let name = path
            .rsplit('/')
            .next()
            .unwrap_or(&path)
            .trim_end_matches(".json")
            .to_owned();
        let json = match fetch::pack_file(cache, base, pack, &path, &|_| {}).await {
            Ok((file, _)) => Lesson::parse(file.bytes())
                .map_err(|e| format!("{path}: {e}"))
                .and_then(|_| {
                    String::from_utf8(file.bytes().to_vec()).map_err(|e| format!("{path}: {e}"))
                }),
            Err(error) => Err(error),
        };
        lessons.push(PackLesson { name, json });
    }
    lessons
}

/// Fetches the features of the pack `model_only` runs ([`Pack::feature_paths`]) and adds
/// them to its lab, on the engine it runs: the labels and block 0's transcoder first,
/// handed to `partial` as a lab of their own when more blocks follow (a prompt shows that
/// block's features while the others arrive), then every block's. When `model_only` runs
/// a split model's first blocks alone, the rest of the model comes after block 0's
/// features (handed to `partial` on those blocks first, then on the whole model, which
/// starts on the engine asked for), before the other blocks'; if block 0's features fail,
/// the whole model is still handed to `partial`, without features, before the error.
async fn load_pack_features(
    model_only: &Loaded,
    progress: &dyn Fn(&str, u64, u64),
    partial: &dyn Fn(Loaded),
) -> Result<Loaded, String> {
    let Some((pack, base)) = &model_only.pack else {
        return Err("no pack to load features from".to_owned());
    };
    let cache = fetch::open_cache().await;
    let blocks = pack.manifest().dictionaries.len();
    let first_block = 0..blocks.min(1);
    let first = [
        vec![pack.labels_path().to_owned()],
        pack.dictionary_paths(first_block.clone()),
    ]
    .concat();
    let model_rest = model_only
        .rest_of_model
        .as_ref()
        .map_or(0, |_| bytes_of(pack, &pack.later_model_paths()));
    let rest = pack.dictionary_paths(first_block.end..blocks);
    let mut counted = Counted {
        before: 0,
        total: bytes_of(pack, &first) + model_rest + bytes_of(pack, &rest),
    };
    let mut files = PackFiles::default();
    let first_features =
        fetch_first_features(model_only, &first, first_block.clone(), counted, progress).await;
    counted.before = bytes_of(pack, &first);
    let whole_model;
    let model_only = match &model_only.rest_of_model {
        None => model_only,
        Some(rest_of_model) => {
            whole_model = load_rest_of_model(
                model_only,
                rest_of_model,
                &first_features,
                counted,
                progress,
                partial,
            )
            .await?;
            counted.before += model_rest;
            if let Err(error) = first_features {
                // The model answers without features, as an unsplit one does.
                partial(whole_model);
                return Err(error);
            }
            &whole_model
        }
    };
    let (labels, mut dictionaries, mut from_cache) = first_features?;
    if !rest.is_empty() {
        let lab = model_only
            .lab
            .with_pack_features(dictionaries.clone(), labels.clone())
            .await
            .map_err(|e| e.to_string())?;
        let so_far = FeatureData::Partial {
            blocks: first_block.len(),
        };
        partial(with_features(model_only, lab, from_cache, so_far));
        from_cache &= fetch_into(
            cache.as_ref(),
            base,
            pack,
            &rest,
            &mut files,
            counted,
            progress,
        )
        .await?;
        dictionaries.extend(load_dictionaries(
            pack,
            &files,
            model_only.lab.model(),
            first_block.end..blocks,
        )?);
    }
    let lab = model_only
        .lab
        .with_pack_features(dictionaries, labels)
        .await
        .map_err(|e| e.to_string())?;
    Ok(with_features(
        model_only,
        lab,
        from_cache,
        FeatureData::Ready,
    ))
}

/// The labels, block 0's transcoder, and whether they came from the browser's cache.
type FirstFeatures = (LabelIndex, Vec<Arc<Dictionary>>, bool);

/// Fetches `paths` (the labels and the transcoders of `blocks`, counted from `counted`)
/// of the pack `loaded` runs, and reads them.
async fn fetch_first_features(
    loaded: &Loaded,
    paths: &[String],
    blocks: Range<usize>,
    counted: Counted,
    progress: &dyn Fn(&str, u64, u64),
) -> Result<FirstFeatures, String> {
    let Some((pack, base)) = &loaded.pack else {
        return Err("no pack to load features from".to_owned());
    };
    let cache = fetch::open_cache().await;
    let mut files = PackFiles::default();
    let from_cache = fetch_into(
        cache.as_ref(),
        base,
        pack,
        paths,
        &mut files,
        counted,
        progress,
    )
    .await?;
    let labels = pack.load_labels(&files).map_err(|e| e.to_string())?;
    let dictionaries = load_dictionaries(pack, &files, loaded.lab.model(), blocks)?;
    Ok((labels, dictionaries, from_cache))
}

/// The rest of the split model whose first blocks `first_blocks` runs: first hands
/// `partial` those blocks with block 0's features (`first_features`, unless they failed),
/// then fetches the model's other files (counted from `counted`) and returns the whole
/// model alone, on the engine asked for.
async fn load_rest_of_model(
    first_blocks: &Loaded,
    rest_of_model: &RestOfModel,
    first_features: &Result<FirstFeatures, String>,
    counted: Counted,
    progress: &dyn Fn(&str, u64, u64),
    partial: &dyn Fn(Loaded),
) -> Result<Loaded, String> {
    let Some((pack, base)) = &first_blocks.pack else {
        return Err("no pack to load the model from".to_owned());
    };
    if let Ok((labels, dictionaries, from_cache)) = first_features {
        let lab = first_blocks
            .lab
            .with_pack_features(dictionaries.clone(), labels.clone())
            .await
            .map_err(|e| e.to_string())?;
        let so_far = FeatureData::FirstBlocks {
            blocks: dictionaries.len(),
        };
        partial(with_features(first_blocks, lab, *from_cache, so_far));
    }
    let cache = fetch::open_cache().await;
    let mut files = rest_of_model.first_files.clone();
    let cached = fetch_into(
        cache.as_ref(),
        base,
        pack,
        &pack.later_model_paths(),
        &mut files,
        counted,
        progress,
    )
    .await?;
    let mut whole =
        load_whole_model(first_blocks, pack, &files, rest_of_model.engine, progress).await?;
    whole.info.from_cache &= cached;
    Ok(whole)
}

/// The whole of the split model whose first blocks `first_blocks` runs, from `files`
/// (all its files), on the engine asked for: the model alone, as [`load_pack`] gives an
/// unsplit one.
async fn load_whole_model(
    first_blocks: &Loaded,
    pack: &Pack,
    files: &PackFiles,
    engine: EngineRequest,
    progress: &dyn Fn(&str, u64, u64),
) -> Result<Loaded, String> {
    progress("preparing the model", 0, 0);
    let (model, tokenizer) = pack.load_model(files).map_err(|e| e.to_string())?;
    let lab = Lab::from_model(pack.manifest().name.clone(), model, tokenizer)
        .map_err(|e| e.to_string())?;
    start_engine(&lab, engine, progress).await;
    Ok(Loaded {
        info: PackInfo {
            engine: lab.engine_info(),
            ..first_blocks.info.clone()
        },
        lab,
        pack: first_blocks.pack.clone(),
        sample_texts: Rc::clone(&first_blocks.sample_texts),
        rest_of_model: None,
    })
}

/// `pack`'s dictionaries of `blocks` from `files`, each shared.
fn load_dictionaries(
    pack: &Pack,
    files: &PackFiles,
    model: &Model,
    blocks: Range<usize>,
) -> Result<Vec<Arc<Dictionary>>, String> {
    Ok(pack
        .load_dictionaries(files, model, blocks)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(Arc::new)
        .collect())
}

/// `model_only` with `lab` (its model with the pack's features, as `features` says);
/// `from_cache` says whether the features came from the browser's cache. Until all are in,
/// the page is told of the pack's dictionaries as they will be.
fn with_features(model_only: &Loaded, lab: Lab, from_cache: bool, features: FeatureData) -> Loaded {
    let dictionaries = if features.is_loading() {
        model_only.info.dictionaries.clone()
    } else {
        dictionary_infos(&lab)
    };
    let info = PackInfo {
        dictionaries,
        tags: lab.tags(),
        from_cache: model_only.info.from_cache && from_cache,
        engine: engine_info(&lab, model_only.rest_of_model.as_deref()),
        features,
        ..model_only.info.clone()
    };
    Loaded {
        lab,
        pack: model_only.pack.clone(),
        info,
        sample_texts: Rc::clone(&model_only.sample_texts),
        rest_of_model: model_only.rest_of_model.clone(),
    }
}

/// Fetches (through the cache) and reads `pack`'s corpus ([`Pack::corpus_paths`]).
async fn load_pack_corpus(pack: &Pack, base: &str) -> Result<Corpus, String> {
    let cache = fetch::open_cache().await;
    let (files, _) = fetch_files(
        cache.as_ref(),
        base,
        pack,
        &pack.corpus_paths(),
        &|_, _, _| {},
    )
    .await?;
    pack.load_corpus(&files).map_err(|e| e.to_string())
}

/// The sample text dictionaries added to `before` are measured on: the one it kept, or
/// windows of its pack's corpus (fetched if no view has needed it yet). Kept for
/// dictionaries added later; `needed` (dictionaries are added now) makes a corpus that
/// fails to load an error, else there is no sample text.
async fn sample_texts_of(
    before: Option<&Loaded>,
    needed: bool,
    progress: &dyn Fn(&str, u64, u64),
) -> Result<Rc<Vec<String>>, String> {
    let Some(before) = before else {
        return Ok(Rc::default());
    };
    let Some((pack, base)) = before
        .pack
        .as_ref()
        .filter(|_| before.sample_texts.is_empty())
    else {
        return Ok(Rc::clone(&before.sample_texts));
    };
    if before.lab.corpus().is_none() {
        progress("corpus", 0, 0);
        match load_pack_corpus(pack, base).await {
            // Set meanwhile by a view's request: the same corpus.
            Ok(corpus) => drop(before.lab.add_corpus(corpus)),
            Err(error) if needed => {
                return Err(format!(
                    "the sample text to measure the dictionaries on did not load: {error}"
                ));
            }
            Err(_) => return Ok(Rc::default()),
        }
    }
    Ok(Rc::new(
        before.lab.corpus_texts(SAMPLE_TEXTS.0, SAMPLE_TEXTS.1),
    ))
}

/// What the page shows of each of `lab`'s dictionaries.
/// What the page is told of `lab` with its model and features all in, called `name` and
/// described by `description`: fetched now, kept nowhere, no lessons of its own. A model
/// opened from disk adds where it came from; a lesson preview carries this as the layout
/// its views are drawn in while the pack loads.
pub(crate) fn ready_info(lab: &Lab, name: String, description: String) -> PackInfo {
    let dims = lab.model().dims();
    PackInfo {
        name,
        description,
        n_layer: dims.n_layer,
        n_head: dims.n_head,
        tags: lab.tags(),
        dictionaries: dictionary_infos(lab),
        n_positions: dims.n_positions,
        from_cache: false,
        from_disk: false,
        kept: None,
        engine: lab.engine_info(),
        features: FeatureData::Ready,
        lessons: Vec::new(),
    }
}

fn dictionary_infos(lab: &Lab) -> Vec<DictionaryInfo> {
    lab.dictionary_names()
        .into_iter()
        .zip(&lab.dictionaries)
        .enumerate()
        .map(|(layer, (site, dictionary))| DictionaryInfo {
            site,
            d_sae: dictionary.config.d_sae,
            feature_data: lab.has_feature_data(layer),
        })
        .collect()
}

/// Opens the files the person picked (see [`super::open`]): a model, which replaces what
/// was loaded, with any SAELens dictionaries beside it; or dictionaries alone, added to
/// the model loaded `before`. Added dictionaries' features are then measured over the
/// sample text.
async fn open_model_files(
    files: &[PickedFile],
    engine: EngineRequest,
    before: Option<&Loaded>,
    progress: &dyn Fn(&str, u64, u64),
) -> Result<Loaded, String> {
    let picked = super::open::sort(files)?;
    // The dictionaries first: they are small, and a bad one is reported at once.
    let added = super::open::open_dictionaries(&picked.dictionaries, progress).await?;
    let sample_texts = sample_texts_of(before, !added.is_empty(), progress).await?;
    let (lab, pack, name, from_disk) = if picked.model.is_empty() {
        let Some(before) = before.filter(|_| !added.is_empty()) else {
            return Err(
                "pick a model (a GGUF file or a Hugging Face folder), SAELens dictionaries to \
                 add to the model loaded, or both"
                    .to_owned(),
            );
        };
        let lab = before
            .lab
            .with_dictionaries(added)
            .map_err(|e| e.to_string())?;
        let info = &before.info;
        (lab, before.pack.clone(), info.name.clone(), info.from_disk)
    } else {
        let (name, model, tokenizer) = super::open::open_model(&picked.model, progress).await?;
        let mut lab = Lab::from_model(name.clone(), model, tokenizer).map_err(|e| e.to_string())?;
        if !added.is_empty() {
            lab = lab.with_dictionaries(added).map_err(|e| e.to_string())?;
        }
        (lab, None, name, true)
    };
    if engine != EngineRequest::Cpu {
        progress("weights to the GPU", 0, 0);
        let _ = lab
            .start_gpu(
                AdapterPreference::HighPerformance,
                engine == EngineRequest::Gpu,
            )
            .await;
    }
    if !sample_texts.is_empty() {
        let stage = "measuring the dictionaries' features on the sample text";
        let count = sample_texts.len() as u64;
        lab.measure_sample(&sample_texts, &|done, _| {
            progress(stage, done as u64, count);
        })
        .await
        .map_err(|e| e.to_string())?;
    }
    let dims = lab.model().dims();
    let family = lab.model().family();
    let dictionaries = dictionary_infos(&lab);
    let added = dictionaries.iter().filter(|d| !d.feature_data).count();
    let description = match (&pack, from_disk) {
        (Some((pack, _)), _) => pack.manifest().description.clone(),
        (None, _) => format!(
            "{family} model from this computer ({} blocks, width {}, {} heads, vocabulary {}); {}.",
            dims.n_layer,
            dims.d_model,
            dims.n_head,
            dims.vocab_size,
            match added {
                0 => "no feature dictionaries".to_owned(),
                1 => "1 SAELens dictionary from this computer".to_owned(),
                n => format!("{n} SAELens dictionaries from this computer"),
            }
        ),
    };
    let info = PackInfo {
        from_cache: before.is_some_and(|b| b.info.from_cache) && pack.is_some(),
        from_disk,
        // Dictionaries added alone leave the kept copy as it was.
        kept: before
            .filter(|_| picked.model.is_empty())
            .and_then(|b| b.info.kept.clone()),
        ..ready_info(&lab, name, description)
    };
    Ok(Loaded {
        lab,
        pack,
        info,
        sample_texts,
        rest_of_model: None,
    })
}

/// Keeps a model opened from disk (with its dictionaries) in this browser for the next
/// visit, and says so for the page; `None` for dictionaries added alone (what was kept
/// stays as it was).
async fn keep_for_next_visit(files: &[PickedFile], name: &str) -> Option<String> {
    let from_kept = files.iter().all(|f| f.url.starts_with(kept::KEPT_URL));
    if from_kept {
        return Some("Opened from the copy kept in this browser.".to_owned());
    }
    if super::open::sort(files).ok()?.model.is_empty() {
        return None;
    }
    Some(match kept::keep(name, files).await {
        Ok(()) => "Kept in this browser for your next visit (“Reopen” at the top).".to_owned(),
        Err(reason) => format!("Not kept for your next visit: {reason}."),
    })
}
