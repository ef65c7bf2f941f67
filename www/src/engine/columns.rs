//! The engine worker's second core: a column helper, another worker running the same
//! wasm (its address ends in [`ROLE`]) with its own copy of the pack's model, that
//! computes the last columns of the CPU engine's large products while the engine worker
//! computes the first (`glassbox_model::column_split`, through a `SharedArrayBuffer`:
//! `glassbox_model::shared_columns`). The answers are the same to the bit with it or
//! without; it starts only where the page is cross-origin isolated (so that memory can
//! be shared) and the machine has a core to spare, and is let go with the pack it loaded.

use std::rc::Rc;

use glassbox_lab::Lab;
use glassbox_model::column_split::{self, WeightTable};
use glassbox_model::shared_columns::{self, SharedColumns};
use glassbox_pack::Pack;
use js_sys::{Object, Reflect, SharedArrayBuffer};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

/// The end of a worker's address that makes it a column helper.
pub const ROLE: &str = "#columns";

/// What the helper says once it listens, and once it serves.
const LISTENING: &str = "listening";
const READY: &str = "ready";

/// The most bytes the shared buffer takes: products of more rows than fit are computed by
/// the engine worker alone.
const MOST_BUFFER_BYTES: usize = 64 << 20;

/// A column helper loading, or serving, the model of one pack.
pub(super) struct ColumnWorker {
    /// The pack's address, and the load it was started for.
    pub(super) base: String,
    pub(super) generation: u64,
    worker: web_sys::Worker,
    buffer: SharedArrayBuffer,
    /// Whether it said it serves.
    ready: bool,
    /// The loaded pack whose model shares its products now (its address), if any.
    sharing_for: Option<usize>,
    _listener: Closure<dyn FnMut(web_sys::MessageEvent)>,
    /// Hears the helper's uncaught errors (a script that would not load, a panic).
    _errors: Closure<dyn FnMut(web_sys::ErrorEvent)>,
}

impl std::fmt::Debug for ColumnWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColumnWorker")
            .field("base", &self.base)
            .field("ready", &self.ready)
            .finish_non_exhaustive()
    }
}

/// Whether this worker may start a column helper: a cross-origin isolated page (shared
/// memory) on a machine with a core to spare.
pub(super) fn may_start() -> bool {
    let global = js_sys::global();
    let isolated = Reflect::get(&global, &"crossOriginIsolated".into())
        .is_ok_and(|value| value.as_bool() == Some(true));
    let cores = global
        .dyn_into::<web_sys::WorkerGlobalScope>()
        .map_or(1.0, |scope| scope.navigator().hardware_concurrency());
    isolated && cores >= 2.0
}

impl ColumnWorker {
    /// Starts a helper loading the pack at `base` (load `generation`), with a buffer for
    /// `lab`'s products; `ready` is called with `Ok` once it serves, or why it cannot.
    /// `None` where no worker can be started.
    pub(super) fn start(
        base: &str,
        generation: u64,
        lab: &Lab,
        ready: impl Fn(Result<(), String>) + 'static,
    ) -> Option<Self> {
        let scope: web_sys::WorkerGlobalScope = js_sys::global().dyn_into().ok()?;
        let address = scope.location().href().split('#').next()?.to_owned() + ROLE;
        // The linear layers' weights `[in, out]`, then the unembedding `[vocab, d_model]`.
        let sides: Vec<(usize, usize)> = (lab.model().product_weights().iter())
            .map(|weight| weight.dims2().unwrap_or((0, 0)))
            .collect();
        let (linears, unembedding) = sides.split_at(sides.len().saturating_sub(1));
        let across = |(input, output): &(usize, usize)| (*output, *input);
        let widest = linears
            .iter()
            .copied()
            .chain(unembedding.iter().map(across));
        let widest_input = widest.clone().map(|(input, _)| input).max()?;
        let widest_output = widest.map(|(_, output)| output).max()?;
        let per_row = shared_columns::buffer_bytes(1, widest_input, widest_output);
        let rows = lab.model().dims().n_positions;
        let rows = rows.min(MOST_BUFFER_BYTES / per_row.max(1)).max(1);
        let bytes = shared_columns::buffer_bytes(rows, widest_input, widest_output);
        let buffer = SharedArrayBuffer::new(u32::try_from(bytes).ok()?);
        let worker = web_sys::Worker::new(&address).ok()?;
        let ready: Rc<dyn Fn(Result<(), String>)> = Rc::new(ready);
        // Handled here, a helper's error does not rise to the page as an uncaught one.
        let failed = Rc::clone(&ready);
        let errors =
            Closure::<dyn FnMut(web_sys::ErrorEvent)>::new(move |event: web_sys::ErrorEvent| {
                event.prevent_default();
                failed(Err(format!("it failed: {}", event.message())));
            });
        worker.set_onerror(Some(errors.as_ref().unchecked_ref()));
        // The pack and the buffer go once the helper listens (a message sent before its
        // wasm has started would find no listener and be lost).
        let start = Object::new();
        let _ = Reflect::set(&start, &"base".into(), &base.into());
        let _ = Reflect::set(&start, &"buffer".into(), &buffer);
        let helper = worker.clone();
        let listener = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(
            move |event: web_sys::MessageEvent| match event.data().as_string().as_deref() {
                Some(LISTENING) => {
                    if let Err(why) = helper.post_message(&start) {
                        ready(Err(format!(
                            "the column helper could not be reached: {why:?}"
                        )));
                    }
                }
                Some(READY) => ready(Ok(())),
                Some(why) => ready(Err(why.to_owned())),
                None => ready(Err("the column helper said something unreadable".to_owned())),
            },
        );
        worker.set_onmessage(Some(listener.as_ref().unchecked_ref()));
        Some(Self {
            base: base.to_owned(),
            generation,
            worker,
            buffer,
            ready: false,
            sharing_for: None,
            _listener: listener,
            _errors: errors,
        })
    }

    /// The helper said it serves (or could not).
    pub(super) fn heard(&mut self, result: Result<(), String>) {
        match result {
            Ok(()) => self.ready = true,
            Err(why) => {
                web_sys::console::warn_1(&format!("Glassbox: no column helper: {why}").into());
                self.let_go();
            }
        }
    }

    /// Stops sharing with the helper and ends it. Its listeners are taken off first: what
    /// it sent or raised as it ended (a script whose loading was cut short raises an
    /// error) is quietly dropped, neither heard by a listener that is gone nor risen to
    /// the page.
    fn let_go(&mut self) {
        if self.sharing_for.take().is_some() {
            column_split::stop_sharing();
        }
        self.ready = false;
        let _ = shared_columns::stop(&self.buffer);
        self.worker.set_onmessage(None);
        QUIET_ERRORS.with(|quiet| {
            self.worker
                .set_onerror(Some(quiet.as_ref().unchecked_ref()));
        });
        self.worker.terminate();
    }

    /// Shares the products of the model `lab` runs (`loaded`, by address) with the helper,
    /// once it serves; whether they are shared. A helper that failed or stopped answering
    /// (sharing stopped on its own) is let go.
    pub(super) fn share(&mut self, loaded: usize, lab: &Lab) -> bool {
        if self.sharing_for.is_some() && !column_split::sharing() {
            let why = column_split::why_sharing_stopped().unwrap_or_default();
            self.heard(Err(format!("it stopped: {why}")));
        }
        if !self.ready {
            return false;
        }
        if self.sharing_for != Some(loaded) {
            let columns = WeightTable::new(lab.model().product_weights())
                .map_err(|e| e.to_string())
                .and_then(|table| SharedColumns::new(&self.buffer, table));
            match columns {
                Ok(columns) => column_split::share_with(Rc::new(columns)),
                Err(why) => {
                    self.heard(Err(why));
                    return false;
                }
            }
            self.sharing_for = Some(loaded);
        }
        true
    }
}

impl Drop for ColumnWorker {
    fn drop(&mut self) {
        self.let_go();
    }
}

thread_local! {
    /// The error listener of helpers let go: marks their errors handled. One for all of
    /// them, living as long as the engine worker.
    static QUIET_ERRORS: Closure<dyn FnMut(web_sys::Event)> =
        Closure::new(|event: web_sys::Event| event.prevent_default());
}

/// A column helper's life, run instead of the engine worker where the worker's address
/// ends in [`ROLE`]: says it listens, waits for the pack's address and the buffer, loads
/// the model as the engine worker does, says it is ready, then serves until let go.
pub fn run_helper() {
    let on_start =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(|event: web_sys::MessageEvent| {
            let data = event.data();
            let base = Reflect::get(&data, &"base".into())
                .ok()
                .and_then(|b| b.as_string());
            let buffer = Reflect::get(&data, &"buffer".into())
                .ok()
                .and_then(|b| b.dyn_into::<SharedArrayBuffer>().ok());
            wasm_bindgen_futures::spawn_local(async move {
                let served = match (base, buffer) {
                    (Some(base), Some(buffer)) => serve_pack(&base, &buffer).await,
                    _ => Err("the column helper was not given a pack and a buffer".to_owned()),
                };
                if let Err(why) = served {
                    say(&why);
                }
            });
        });
    let scope: Option<web_sys::DedicatedWorkerGlobalScope> = js_sys::global().dyn_into().ok();
    if let Some(scope) = scope {
        scope.set_onmessage(Some(on_start.as_ref().unchecked_ref()));
    }
    // The helper's one listener lives as long as the worker.
    on_start.forget();
    say(LISTENING);
}

/// Loads the model of the pack at `base` as the engine worker does and serves `buffer`
/// with it (blocking this worker until it is let go).
async fn serve_pack(base: &str, buffer: &SharedArrayBuffer) -> Result<(), String> {
    let cache = super::fetch::open_cache().await;
    let manifest = super::fetch::manifest(cache.as_ref(), base).await?;
    let pack = Pack::parse_manifest(&manifest).map_err(|e| e.to_string())?;
    let paths = pack.model_paths();
    let quiet = |_: &str, _: u64, _: u64| {};
    let (files, _) =
        super::worker::fetch_files(cache.as_ref(), base, &pack, &paths, &quiet).await?;
    let (model, tokenizer) = pack.load_model(&files).map_err(|e| e.to_string())?;
    let lab = Lab::from_model(pack.manifest().name.clone(), model, tokenizer)
        .map_err(|e| e.to_string())?;
    let table = WeightTable::new(lab.model().product_weights()).map_err(|e| e.to_string())?;
    say(READY);
    shared_columns::serve(buffer, &table)
}

/// Posts `message` to the engine worker.
fn say(message: &str) {
    let scope: Option<web_sys::DedicatedWorkerGlobalScope> = js_sys::global().dyn_into().ok();
    if let Some(scope) = scope {
        let _ = scope.post_message(&message.into());
    }
}
