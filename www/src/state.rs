//! The engine as components see it: a context holding the worker client and whether the
//! pack has loaded, and a hook that sends a request and tracks its answer.

use std::rc::Rc;

use glassbox_lab::EngineInfo;
use glassbox_web::engine::client::EngineClient;
use glassbox_web::engine::protocol::{PackInfo, Request, Response};
use yew::prelude::*;

/// Where loading the pack stands.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum EngineStatus {
    /// Fetching or preparing: the stage in words, bytes so far of all.
    Loading {
        stage: String,
        loaded: u64,
        total: u64,
    },
    /// Ready to answer.
    Ready(PackInfo),
    /// The pack could not be loaded; why.
    Failed(String),
}

/// Which engine answers, as the page knows it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum EngineChoice {
    /// Known: the worker said so.
    Running(EngineInfo),
    /// A switch was asked for and not yet answered.
    Switching,
}

/// The context every page reads.
#[derive(Debug, Clone)]
pub(crate) struct Engine {
    pub(crate) client: Rc<EngineClient>,
    pub(crate) status: EngineStatus,
    /// Which engine runs (once the pack is loaded).
    pub(crate) choice: Option<EngineChoice>,
    /// Asks for the GPU (`true`) or the CPU engine.
    pub(crate) switch: Callback<bool>,
}

impl PartialEq for Engine {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.client, &other.client)
            && self.status == other.status
            && self.choice == other.choice
    }
}

impl Engine {
    /// The pack's description once loaded.
    pub(crate) fn info(&self) -> Option<&PackInfo> {
        match &self.status {
            EngineStatus::Ready(info) => Some(info),
            _ => None,
        }
    }
}

/// Where one request stands.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    /// Nothing asked yet (or the pack is still loading).
    Waiting,
    /// Asked; the engine is working.
    Working,
    /// The engine's answer.
    Done(Rc<Response>),
}

/// Sends `request` whenever it changes (and the pack is ready); returns the latest
/// answer. Answers to superseded requests are dropped.
#[hook]
pub(crate) fn use_request(request: Option<Request>) -> Answer {
    let engine = use_context::<Engine>();
    let answer = use_state(|| Answer::Waiting);
    let ready = engine.as_ref().is_some_and(|e| e.info().is_some());
    {
        let answer = answer.clone();
        use_effect_with((request, ready), move |(request, ready)| {
            let mut sent = None;
            if let (Some(engine), Some(request), true) = (engine, request.clone(), *ready) {
                answer.set(Answer::Working);
                let setter = answer.clone();
                let id = engine.client.request(
                    request,
                    Callback::from(move |response| setter.set(Answer::Done(Rc::new(response)))),
                );
                sent = Some((engine.client, id));
            } else {
                answer.set(Answer::Waiting);
            }
            move || {
                if let Some((client, id)) = sent {
                    client.forget(id);
                }
            }
        });
    }
    (*answer).clone()
}

/// A value made once and shared, compared by address: props and memos holding a large
/// value (an attribution graph) then compare one pointer instead of every element.
#[derive(Debug)]
pub(crate) struct Shared<T>(Rc<T>);

impl<T> Shared<T> {
    /// Shares `value`.
    pub(crate) fn new(value: T) -> Self {
        Self(Rc::new(value))
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Self(Rc::clone(&self.0))
    }
}

impl<T> PartialEq for Shared<T> {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl<T> std::ops::Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// How an answer shows: `done`'s view of the response asked for, the engine's error in
/// words (with `error_id` as its id, if given), `working` while the engine runs, and
/// nothing before it is asked.
pub(crate) fn answer_view(
    answer: &Answer,
    working: &str,
    error_id: Option<&'static str>,
    done: impl FnOnce(&Response) -> Option<Html>,
) -> Html {
    match answer {
        Answer::Waiting => html! {},
        Answer::Working => html! { <p class="muted">{ working.to_owned() }</p> },
        Answer::Done(response) => match response.as_ref() {
            Response::Error(error) => {
                html! { <p class="status-bad" role="alert" id={error_id}>{ error.clone() }</p> }
            }
            other => done(other).unwrap_or_default(),
        },
    }
}
