//! Helper workers: more engine workers, each loading the same pack on the CPU engine,
//! that carry batches of a graph's targets ([`Lanes`]) the engine worker hands out, and
//! continue a prompt unsteered while it continues it steered ([`Beside`]). A helper that
//! fails, or does not answer in time, is let go and its work done by the engine worker:
//! the answer is the same either way.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::task::{Poll, Waker};

use futures_channel::oneshot;
use glassbox_lab::{
    Beside, CircuitError, ContinuationElsewhere, Contrast, FreeLane, Lab, LabError, LaneAnswer,
    Lanes, Target,
};
use glassbox_model::sampling::Sampling;
use gloo_worker::{Spawnable, WorkerBridge};
use wasm_bindgen::JsCast;

use super::protocol::{
    CarryRows, ContinuePlain, EngineRequest, Envelope, FeatureData, GraphWork, GraphWorkOf,
    MAX_WORKERS, Request, Response,
};
use super::worker::EngineWorker;

/// A helper that has not answered a batch after this long is let go.
const ANSWER_TIMEOUT_MS: u32 = 120_000;

/// Where a helper stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HelperState {
    /// Loading the pack.
    Loading,
    /// Ready for a batch.
    Free,
    /// Carrying a batch.
    Busy,
    /// Failed or too slow: never asked again.
    Lost,
}

/// What the helpers' answers change: where each stands, the answers awaited (by request
/// number), and who waits for a helper to be free.
#[derive(Default)]
struct Board {
    states: Vec<HelperState>,
    awaited: HashMap<u64, oneshot::Sender<Response>>,
    waiting: Vec<Waker>,
}

impl Board {
    /// Helper `lane` is now `state`; whoever waits for a free helper looks again.
    fn set(&mut self, lane: usize, state: HelperState) {
        if let Some(s) = self.states.get_mut(lane) {
            *s = state;
        }
        for waker in self.waiting.drain(..) {
            waker.wake();
        }
    }
}

/// The helper workers of one loaded pack.
pub(super) struct Helpers {
    bridges: Vec<WorkerBridge<EngineWorker>>,
    board: Rc<RefCell<Board>>,
    next_id: Cell<u64>,
}

impl std::fmt::Debug for Helpers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Helpers")
            .field("states", &self.board.borrow().states)
            .finish_non_exhaustive()
    }
}

impl Helpers {
    /// Starts `count` helpers, each loading the pack at `base` on the CPU engine; `None`
    /// when this browser cannot start a worker from a worker.
    pub(super) fn start(base: &str, count: usize) -> Option<Self> {
        let scope: web_sys::WorkerGlobalScope = js_sys::global().dyn_into().ok()?;
        // gloo-worker panics where the constructor is missing: look first.
        let has_worker = js_sys::Reflect::has(&scope, &"Worker".into()).unwrap_or(false);
        let loader = scope.location().href();
        if !has_worker || count == 0 {
            return None;
        }
        let board = Rc::new(RefCell::new(Board {
            states: vec![HelperState::Loading; count],
            ..Board::default()
        }));
        let bridges = (0..count)
            .map(|lane| {
                let board = Rc::clone(&board);
                let bridge = EngineWorker::spawner()
                    .callback(move |envelope: Envelope<Response>| {
                        heard(&mut board.borrow_mut(), lane, envelope);
                    })
                    .spawn_with_loader(&loader);
                bridge.send(Envelope {
                    id: LOAD,
                    body: Request::Load {
                        base: base.to_owned(),
                        engine: EngineRequest::Cpu,
                        workers: Some(1),
                    },
                });
                bridge
            })
            .collect();
        Some(Self {
            bridges,
            board,
            next_id: Cell::new(LOAD + 1),
        })
    }

    /// Sends helper `lane` `body`; the request's number and where its answer will come
    /// (a helper silent for [`ANSWER_TIMEOUT_MS`] is let go, its answer an error).
    fn ask(&self, lane: usize, body: Request) -> oneshot::Receiver<Response> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let (send, answer) = oneshot::channel();
        self.board.borrow_mut().awaited.insert(id, send);
        if let Some(bridge) = self.bridges.get(lane) {
            bridge.send(Envelope { id, body });
        }
        let board = Rc::clone(&self.board);
        gloo_timers::callback::Timeout::new(ANSWER_TIMEOUT_MS, move || {
            let mut board = board.borrow_mut();
            if let Some(late) = board.awaited.remove(&id) {
                board.set(lane, HelperState::Lost);
                let _ = late.send(Response::Error("the helper did not answer".to_owned()));
            }
        })
        .forget();
        answer
    }

    /// Takes a free helper at once, if one is.
    fn take_free_now(&self) -> Option<usize> {
        let mut board = self.board.borrow_mut();
        let lane = board.states.iter().position(|s| *s == HelperState::Free)?;
        board.states[lane] = HelperState::Busy;
        Some(lane)
    }
}

/// The number of each helper's load request.
const LOAD: u64 = 1;

/// What helper `lane` said: its pack loaded (with its features) or failed, or a batch's
/// rows, which free it.
fn heard(board: &mut Board, lane: usize, envelope: Envelope<Response>) {
    let Some(&state) = board.states.get(lane) else {
        return;
    };
    match (envelope.id, &envelope.body) {
        // The load's answer (features may still be coming), then the features, unasked.
        (0 | LOAD, Response::Ready(info)) => match &info.features {
            FeatureData::Ready if state == HelperState::Loading => {
                board.set(lane, HelperState::Free);
            }
            FeatureData::Failed(_) => board.set(lane, HelperState::Lost),
            _ => {}
        },
        (LOAD, Response::Error(_)) => board.set(lane, HelperState::Lost),
        (_, Response::Progress { .. }) | (0, _) => {}
        (id, body) => {
            if let Some(answer) = board.awaited.remove(&id) {
                let now = match body {
                    Response::Rows(_) | Response::Continuation(_) if state == HelperState::Busy => {
                        HelperState::Free
                    }
                    _ => HelperState::Lost,
                };
                board.set(lane, now);
                let _ = answer.send(envelope.body);
            }
        }
    }
}

impl Lanes for Helpers {
    fn count(&self) -> usize {
        let board = self.board.borrow();
        board
            .states
            .iter()
            .filter(|s| **s != HelperState::Lost)
            .count()
    }

    /// Each free helper traces the prompt (an empty batch), busy until it has.
    fn prepare(&self, ids: &[u32]) {
        while let Some(lane) = self.take_free_now() {
            // Only its freeing the helper matters: the answer is not awaited.
            let body = Request::CarryRows(CarryRows {
                ids: ids.to_vec(),
                targets: Vec::new(),
            });
            drop(self.ask(lane, body));
        }
    }

    /// A free helper; while every loaded helper is busy, the first to finish; `None` when
    /// none has loaded (or all were let go).
    fn take_free(&self) -> FreeLane<'_> {
        Box::pin(std::future::poll_fn(|cx| {
            if let Some(lane) = self.take_free_now() {
                return Poll::Ready(Some(lane));
            }
            let mut board = self.board.borrow_mut();
            if board.states.contains(&HelperState::Busy) {
                board.waiting.push(cx.waker().clone());
                return Poll::Pending;
            }
            Poll::Ready(None)
        }))
    }

    fn carry(&self, lane: usize, ids: &[u32], targets: Vec<Target>) -> LaneAnswer<'_> {
        let answer = self.ask(
            lane,
            Request::CarryRows(CarryRows {
                ids: ids.to_vec(),
                targets,
            }),
        );
        Box::pin(async move {
            match answer.await {
                Ok(Response::Rows(rows)) => Ok(rows),
                Ok(Response::Error(error)) => Err(CircuitError::Request(error)),
                _ => Err(CircuitError::Request(
                    "the helper answered something else".to_owned(),
                )),
            }
        })
    }
}

impl Beside for Helpers {
    fn continuation(&self, ids: &[u32], sampling: &Sampling) -> Option<ContinuationElsewhere<'_>> {
        let lane = self.take_free_now()?;
        let answer = self.ask(
            lane,
            Request::ContinuePlain(ContinuePlain {
                ids: ids.to_vec(),
                sampling: sampling.clone(),
            }),
        );
        Some(Box::pin(async move {
            match answer.await {
                Ok(Response::Continuation(tokens)) => Ok(tokens),
                Ok(Response::Error(error)) => Err(LabError::Request(error)),
                _ => Err(LabError::Request(
                    "the helper answered something else".to_owned(),
                )),
            }
        }))
    }
}

/// No helpers: the engine worker carries every batch.
#[derive(Debug)]
struct NoHelpers;

impl Lanes for NoHelpers {
    fn count(&self) -> usize {
        0
    }

    fn take_free(&self) -> FreeLane<'_> {
        Box::pin(std::future::ready(None))
    }

    fn carry(&self, _lane: usize, _ids: &[u32], _targets: Vec<Target>) -> LaneAnswer<'_> {
        Box::pin(std::future::ready(Err(CircuitError::Request(
            "there are no helpers".to_owned(),
        ))))
    }
}

/// Bytes of memory the helpers may take together when the browser does not say how much
/// it has; with `navigator.deviceMemory` (in GB), a quarter of it.
const HELPER_MEMORY: f64 = 1e9;

/// How many helpers to start: `workers` (else one per core), at most [`MAX_WORKERS`] and
/// no more than fit in the memory allowed when each holds `in_memory` bytes; none when
/// that is fewer than two (this worker hands the batches out, and carries one that comes
/// alone: one helper would only take its place).
pub(super) fn helper_count(workers: Option<usize>, in_memory: u64) -> usize {
    let navigator = js_sys::global()
        .dyn_into::<web_sys::WorkerGlobalScope>()
        .ok()
        .map(|scope| scope.navigator());
    let cores = navigator
        .as_ref()
        .map_or(1.0, web_sys::WorkerNavigator::hardware_concurrency);
    let budget = navigator
        .and_then(|n| js_sys::Reflect::get(&n, &"deviceMemory".into()).ok())
        .and_then(|gb| gb.as_f64())
        .map_or(HELPER_MEMORY, |gb| gb * 1e9 / 4.0);
    let fit = (budget / in_memory.max(1) as f64) as usize;
    let count = workers.unwrap_or(cores as usize).min(MAX_WORKERS).min(fit);
    if count < 2 { 0 } else { count }
}

/// Computes (and keeps) the graph of `text` (for `contrast`) on `lab`, over `helpers` if
/// any; how it went, unless it was kept from before or failed (the request that follows
/// says why).
pub(super) async fn spread_graph(
    lab: &Lab,
    text: &str,
    contrast: Option<&Contrast>,
    helpers: Option<&Helpers>,
) -> Option<(GraphWorkOf, GraphWork)> {
    let started = js_sys::Date::now();
    let lanes: &dyn Lanes = helpers.map_or(&NoHelpers, |h| h);
    let carried = lab
        .attribute_spread(text, contrast, lanes)
        .await
        .ok()
        .flatten()?;
    let of = GraphWorkOf {
        text: text.to_owned(),
        contrast: contrast.cloned(),
    };
    let ms = js_sys::Date::now() - started;
    Some((of, GraphWork { ms, carried }))
}
