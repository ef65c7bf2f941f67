//! The page's side of the engine: spawns the worker and routes each answer to the
//! component that asked.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use gloo_worker::{Spawnable, WorkerBridge};
use yew::Callback;

use super::protocol::{Envelope, Request, Response};
use super::worker::EngineWorker;

/// The engine worker's loader when the page does not name it (the build names this
/// build's, content-hashed, in `<meta name="glassbox-worker">`).
const WORKER_LOADER: &str = "./glassbox-worker_loader.js";

/// The loader of this build's engine worker, as the page's HTML names it.
fn worker_loader() -> String {
    web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| {
            d.query_selector("meta[name=glassbox-worker]")
                .ok()
                .flatten()
        })
        .and_then(|meta| meta.get_attribute("content"))
        .unwrap_or_else(|| WORKER_LOADER.to_owned())
}

/// After this long without an answer, a request is reported as failed.
const ANSWER_TIMEOUT_MS: u32 = 180_000;

type Waiters = Rc<RefCell<HashMap<u64, Callback<Response>>>>;
type Listener = Rc<RefCell<Option<Callback<Response>>>>;

/// A running engine worker.
pub struct EngineClient {
    bridge: WorkerBridge<EngineWorker>,
    next_id: Cell<u64>,
    waiters: Waiters,
    unasked: Listener,
}

impl std::fmt::Debug for EngineClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineClient")
            .field("pending", &self.waiters.borrow().len())
            .finish_non_exhaustive()
    }
}

/// Whether this build's engine worker script is on the server: where a newer version of
/// the page was deployed over this one, it is gone, and the worker would never start.
/// An error names the problem; `Ok` also when the check itself cannot run (offline, the
/// service worker answers from its copy).
pub async fn check_worker() -> Result<(), String> {
    let loader = worker_loader();
    let Some(window) = web_sys::window() else {
        return Ok(());
    };
    let init = web_sys::RequestInit::new();
    init.set_method("HEAD");
    let Ok(answer) =
        wasm_bindgen_futures::JsFuture::from(window.fetch_with_str_and_init(&loader, &init)).await
    else {
        return Ok(());
    };
    match wasm_bindgen::JsCast::dyn_into::<web_sys::Response>(answer) {
        Ok(response) if response.status() == 404 || response.status() == 410 => Err(format!(
            "this version of the page's engine ({loader}) is no longer on the server: a newer \
             version was probably published since the page was opened. Reload the page."
        )),
        _ => Ok(()),
    }
}

impl EngineClient {
    /// Starts the worker.
    #[must_use]
    pub fn spawn() -> Rc<Self> {
        let waiters: Waiters = Rc::new(RefCell::new(HashMap::new()));
        let unasked: Listener = Rc::new(RefCell::new(None));
        let routed = Rc::clone(&waiters);
        let told = Rc::clone(&unasked);
        let bridge = EngineWorker::spawner()
            .callback(move |envelope: Envelope<Response>| {
                if envelope.id == 0 {
                    let listener = told.borrow().clone();
                    if let Some(callback) = listener {
                        callback.emit(envelope.body);
                    }
                    return;
                }
                let last = !matches!(envelope.body, Response::Progress { .. });
                let waiter = if last {
                    routed.borrow_mut().remove(&envelope.id)
                } else {
                    routed.borrow().get(&envelope.id).cloned()
                };
                // The borrow is released before the callback, which may send a request.
                if let Some(callback) = waiter {
                    callback.emit(envelope.body);
                }
            })
            .spawn_with_loader(&worker_loader());
        Rc::new(Self {
            bridge,
            next_id: Cell::new(1),
            waiters,
            unasked,
        })
    }

    /// `listener` gets what the worker says unasked (the engine changed).
    pub fn on_unasked(&self, listener: Callback<Response>) {
        *self.unasked.borrow_mut() = Some(listener);
    }

    /// Sends `body`; `answer` gets the reply (and, for a load, each progress report).
    /// Returns the request's number, for [`Self::forget`].
    pub fn request(&self, body: Request, answer: Callback<Response>) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        self.waiters.borrow_mut().insert(id, answer);
        self.bridge.send(Envelope { id, body });
        let waiters = Rc::clone(&self.waiters);
        gloo_timers::callback::Timeout::new(ANSWER_TIMEOUT_MS, move || {
            let waiter = waiters.borrow_mut().remove(&id);
            if let Some(callback) = waiter {
                callback.emit(Response::Error(
                    "the engine did not answer within three minutes; reloading the page \
                     restarts it"
                        .to_owned(),
                ));
            }
        })
        .forget();
        id
    }

    /// Drops the answer to request `id` when it comes (the asker moved on), and tells the
    /// worker, which skips its work if it has not started.
    pub fn forget(&self, id: u64) {
        if self.waiters.borrow_mut().remove(&id).is_some() {
            let number = self.next_id.get();
            self.next_id.set(number + 1);
            self.bridge.send(Envelope {
                id: number,
                body: Request::Cancel(id),
            });
        }
    }
}
