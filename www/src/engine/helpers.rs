//! Helper workers for attribution graphs: more engine workers, each loading the same pack
//! on the CPU engine, that carry batches of a graph's targets ([`Lanes`]) while the engine
//! worker carries others. A helper that fails, or does not answer in time, is let go and
//! its batch carried by the engine worker: the graph is the same either way.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use futures_channel::oneshot;
use glassbox_lab::{CircuitError, FreeLane, LaneAnswer, Lanes, Target};
use gloo_worker::{Spawnable, WorkerBridge};
use wasm_bindgen::JsCast;

use super::protocol::{CarryRows, EngineRequest, Envelope, FeatureData, Request, Response};
use super::worker::{EngineWorker, yield_to_messages};

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

/// Answers awaited, by request number.
type Awaited = Rc<RefCell<HashMap<u64, oneshot::Sender<Response>>>>;

/// The helper workers of one loaded pack.
pub(super) struct Helpers {
    bridges: Vec<WorkerBridge<EngineWorker>>,
    states: Rc<RefCell<Vec<HelperState>>>,
    awaited: Awaited,
    next_id: Cell<u64>,
}

impl std::fmt::Debug for Helpers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Helpers")
            .field("states", &self.states.borrow())
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
        let states = Rc::new(RefCell::new(vec![HelperState::Loading; count]));
        let awaited: Awaited = Rc::default();
        let bridges = (0..count)
            .map(|lane| {
                let (states, awaited) = (Rc::clone(&states), Rc::clone(&awaited));
                let bridge = EngineWorker::spawner()
                    .callback(move |envelope: Envelope<Response>| {
                        heard(&states, &awaited, lane, envelope);
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
            states,
            awaited,
            next_id: Cell::new(LOAD + 1),
        })
    }
}

/// The number of each helper's load request.
const LOAD: u64 = 1;

/// What helper `lane` said: its pack loaded (with its features) or failed, or a batch's
/// rows, which free it.
fn heard(
    states: &RefCell<Vec<HelperState>>,
    awaited: &Awaited,
    lane: usize,
    envelope: Envelope<Response>,
) {
    let mut states = states.borrow_mut();
    let Some(state) = states.get_mut(lane) else {
        return;
    };
    match (envelope.id, &envelope.body) {
        // The load's answer (features may still be coming), then the features, unasked.
        (0 | LOAD, Response::Ready(info)) => match &info.features {
            FeatureData::Ready if *state == HelperState::Loading => *state = HelperState::Free,
            FeatureData::Failed(_) => *state = HelperState::Lost,
            _ => {}
        },
        (LOAD, Response::Error(_)) => *state = HelperState::Lost,
        (_, Response::Progress { .. }) | (0, _) => {}
        (id, body) => {
            if let Some(answer) = awaited.borrow_mut().remove(&id) {
                *state = match body {
                    Response::Rows(_) if *state == HelperState::Busy => HelperState::Free,
                    _ => HelperState::Lost,
                };
                let _ = answer.send(envelope.body);
            }
        }
    }
}

impl Lanes for Helpers {
    fn count(&self) -> usize {
        self.states
            .borrow()
            .iter()
            .filter(|s| **s != HelperState::Lost)
            .count()
    }

    fn take_free(&self) -> FreeLane<'_> {
        Box::pin(async move {
            yield_to_messages().await;
            let mut states = self.states.borrow_mut();
            let lane = states.iter().position(|s| *s == HelperState::Free)?;
            states[lane] = HelperState::Busy;
            Some(lane)
        })
    }

    fn carry(&self, lane: usize, ids: &[u32], targets: Vec<Target>) -> LaneAnswer<'_> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let (send, answer) = oneshot::channel();
        self.awaited.borrow_mut().insert(id, send);
        if let Some(bridge) = self.bridges.get(lane) {
            bridge.send(Envelope {
                id,
                body: Request::CarryRows(CarryRows {
                    ids: ids.to_vec(),
                    targets,
                }),
            });
        }
        let (awaited, states) = (Rc::clone(&self.awaited), Rc::clone(&self.states));
        gloo_timers::callback::Timeout::new(ANSWER_TIMEOUT_MS, move || {
            if let Some(late) = awaited.borrow_mut().remove(&id) {
                if let Some(state) = states.borrow_mut().get_mut(lane) {
                    *state = HelperState::Lost;
                }
                let _ = late.send(Response::Error("the helper did not answer".to_owned()));
            }
        })
        .forget();
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

/// No helpers: the engine worker carries every batch.
#[derive(Debug)]
pub(super) struct NoHelpers;

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
