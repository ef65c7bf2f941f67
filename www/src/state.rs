//! The engine as components see it: a context holding the worker client and whether the
//! pack has loaded; a hook that sends a typed request and tracks its answer, one view of
//! every answer's states; and a hook that reads a view's link field by field.

use std::rc::Rc;

use glassbox_lab::EngineInfo;
use glassbox_web::engine::client::EngineClient;
use glassbox_web::engine::protocol::{Ask, PackInfo, PickedFile, Request, Response};
use glassbox_web::lessons::lesson_in_query;
use glassbox_web::preview::Preview;
use glassbox_web::query::{FieldError, LinkQuery, parse_link};
use yew::prelude::*;
use yew_router::prelude::use_location;

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
    Ready(Rc<PackInfo>),
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
    /// Opens the model files the person picked (a GGUF, or a Hugging Face folder's), in
    /// place of the pack.
    pub(crate) open_model: Callback<Vec<web_sys::File>>,
    /// Opens files again from the copy kept in this browser.
    pub(crate) reopen: Callback<Vec<PickedFile>>,
    /// Why the last model file could not be opened (the pack before it stays).
    pub(crate) open_error: Option<String>,
    /// While the pack's features load after its model: the stage, bytes so far of all.
    pub(crate) features_progress: Option<(String, u64, u64)>,
    /// The pack whose built-in lessons' feature views have been fetched (and so work
    /// offline from now on), with how many of them could not be.
    pub(crate) lessons_kept: Option<(String, usize)>,
    /// Asks for the lessons to be kept for offline use once the features are in: the
    /// home page and an open lesson ask; a visitor who only follows a link to a view does
    /// not fetch what the lessons show (their examples' corpus, their shards).
    pub(crate) keep_lessons: Callback<()>,
    /// Whether a built-in lesson's preview may stand in for the engine's answers: while
    /// the default pack loads for the first time, until its features are in.
    pub(crate) previewing: bool,
}

impl PartialEq for Engine {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.client, &other.client)
            && self.status == other.status
            && self.choice == other.choice
            && self.open_error == other.open_error
            && self.features_progress == other.features_progress
            && self.lessons_kept == other.lessons_kept
            && self.previewing == other.previewing
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
#[derive(Debug)]
pub(crate) enum Answer<T> {
    /// Nothing asked yet (or the pack is still loading).
    Waiting,
    /// Asked; the engine is working.
    Working,
    /// The engine's answer.
    Done(Rc<T>),
    /// The engine could not answer; why, in words.
    Failed(String),
}

impl<T> Clone for Answer<T> {
    fn clone(&self) -> Self {
        match self {
            Self::Waiting => Self::Waiting,
            Self::Working => Self::Working,
            Self::Done(answer) => Self::Done(Rc::clone(answer)),
            Self::Failed(error) => Self::Failed(error.clone()),
        }
    }
}

impl<T> PartialEq for Answer<T> {
    /// Answers compare by address: the same answer, not an equal one.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Waiting, Self::Waiting) | (Self::Working, Self::Working) => true,
            (Self::Done(a), Self::Done(b)) => Rc::ptr_eq(a, b),
            (Self::Failed(a), Self::Failed(b)) => a == b,
            _ => false,
        }
    }
}

impl<T> Answer<T> {
    /// Whether the engine could not answer.
    pub(crate) fn failed(&self) -> bool {
        matches!(self, Self::Failed(_))
    }
}

/// The built-in lesson preview ([`glassbox_web::preview`]) of the lesson the link is on
/// (`lesson=NAME`), while it may stand in for the engine ([`Engine::previewing`]).
#[hook]
pub(crate) fn use_preview() -> Option<Rc<Preview>> {
    let engine = use_context::<Engine>();
    let location = use_location();
    let engine = engine.filter(|e| e.previewing)?;
    let (name, _) = lesson_in_query(location?.query_str())?;
    let preview = glassbox_web::preview::built_in(&name)?;
    // Once the pack says its name, a preview of another pack's answers never shows.
    match engine.info() {
        Some(info) if info.name != preview.pack => None,
        _ => Some(preview),
    }
}

/// What views are drawn in (the blocks, heads, dictionaries and whether features are
/// in): the loaded pack's description, or while a lesson preview stands in, the one it
/// carries.
#[hook]
pub(crate) fn use_layout() -> Option<Rc<PackInfo>> {
    let engine = use_context::<Engine>();
    let preview = use_preview();
    match preview {
        Some(preview) => Some(Rc::clone(&preview.info)),
        None => match engine?.status {
            EngineStatus::Ready(info) => Some(info),
            _ => None,
        },
    }
}

/// Sends `request` whenever it changes (and the pack is ready); returns the latest
/// answer, typed. Answers to superseded requests are dropped. While a lesson preview
/// holds the answer ([`use_preview`]), that answer shows until the engine's replaces it;
/// a request whose answer grows with the features then waits for them, since the
/// preview's answer already has them. A request sent again because more features came
/// keeps its answer showing until the fuller one arrives.
#[hook]
pub(crate) fn use_request<Q: Ask>(request: Option<Q>) -> Answer<Q::Answer> {
    let engine = use_context::<Engine>();
    let answer = use_state(|| Answer::<Q::Answer>::Waiting);
    // The request whose answer from a preview shows now.
    let previewed = use_mut_ref(|| None::<Q>);
    // The request whose answer from the engine shows now: sent again (its features grew),
    // that answer stays until the fuller one replaces it, instead of blinking out.
    let answered = use_mut_ref(|| None::<Q>);
    let preview = use_preview();
    let asked = request.clone().map(Ask::into_request);
    let in_preview = preview
        .as_ref()
        .zip(asked.as_ref())
        .is_some_and(|(p, asked)| p.answer(asked).is_some());
    let grows = asked.as_ref().is_some_and(Request::grows_with_features);
    let info = engine.as_ref().and_then(Engine::info);
    let features_loading = info.is_some_and(|i| i.features.is_loading());
    let ready = info.is_some() && !(in_preview && grows && features_loading);
    // A request whose answer grows with the pack's features is sent again once they load.
    let features = info.filter(|_| grows).map(|i| i.features.clone());
    {
        let answer = answer.clone();
        use_effect_with(
            (request, ready, features, in_preview),
            move |(request, ready, _, _)| {
                let mut sent = None;
                let showing_preview = previewed.borrow().as_ref() == request.as_ref();
                let showing_answer = request.is_some() && *answered.borrow() == *request;
                if let (Some(engine), Some(request), true) = (engine, request.clone(), *ready) {
                    // An answer from the preview, or the engine's to this same request
                    // with fewer features, stays until the engine's new one replaces it.
                    if !showing_preview && !showing_answer {
                        answered.borrow_mut().take();
                        answer.set(Answer::Working);
                    }
                    let (setter, asked) = (answer.clone(), request.clone());
                    let id = engine.client.request(
                        request.into_request(),
                        Callback::from(move |response| {
                            previewed.borrow_mut().take();
                            let done = match response {
                                Response::Error(error) => Answer::Failed(error),
                                other => match Q::answer(other) {
                                    Some(typed) => Answer::Done(Rc::new(typed)),
                                    None => Answer::Failed(
                                        "the engine answered another question".to_owned(),
                                    ),
                                },
                            };
                            *answered.borrow_mut() =
                                matches!(done, Answer::Done(_)).then(|| asked.clone());
                            setter.set(done);
                        }),
                    );
                    sent = Some((engine.client, id));
                } else if let Some(typed) = request.as_ref().and_then(|request| {
                    let response = preview?.answer(&request.clone().into_request())?.clone();
                    Q::answer(response)
                }) {
                    answered.borrow_mut().take();
                    if !showing_preview {
                        previewed.borrow_mut().clone_from(request);
                        answer.set(Answer::Done(Rc::new(typed)));
                    }
                } else {
                    // Nothing to ask (or the pack is reloading): no earlier answer stays.
                    answered.borrow_mut().take();
                    previewed.borrow_mut().take();
                    answer.set(Answer::Waiting);
                }
                move || {
                    if let Some((client, id)) = sent {
                        client.forget(id);
                    }
                }
            },
        );
    }
    (*answer).clone()
}

/// A view's state from its link (see [`parse_link`]), and the fields that were ignored.
#[hook]
pub(crate) fn use_query<Q: LinkQuery + Clone + 'static>() -> (Q, Rc<Vec<FieldError>>) {
    let location = use_location();
    let query = location
        .as_ref()
        .map(|l| l.query_str().to_owned())
        .unwrap_or_default();
    let parsed = use_memo(query, |query| {
        let (value, errors) = parse_link::<Q>(query);
        (value, Rc::new(errors))
    });
    (parsed.0.clone(), Rc::clone(&parsed.1))
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

/// How an answer shows: while the engine works, what it is doing; the error in words
/// when it failed; the view of the answer when done; nothing before it is asked. One
/// place for every view, so every error looks and reads alike.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AnswerView {
    working: &'static str,
    error_id: Option<&'static str>,
    inline: bool,
}

impl AnswerView {
    /// Shows `working` while the engine works.
    pub(crate) fn new(working: &'static str) -> Self {
        Self {
            working,
            error_id: None,
            inline: false,
        }
    }

    /// Gives the error its element id (for links to it and for tests).
    pub(crate) fn error_id(self, id: &'static str) -> Self {
        Self {
            error_id: Some(id),
            ..self
        }
    }

    /// Shows the working and error lines inside a line of text, not as paragraphs.
    pub(crate) fn inline(self) -> Self {
        Self {
            inline: true,
            ..self
        }
    }

    /// `answer` as this view shows it, with `done` viewing the answer.
    pub(crate) fn show<T>(&self, answer: &Answer<T>, done: impl FnOnce(&T) -> Html) -> Html {
        let line = |class: &'static str, text: String, id: Option<&'static str>, alert: bool| {
            let role = alert.then_some("alert");
            if self.inline {
                html! { <span {class} {id} {role}>{ text }</span> }
            } else {
                html! { <p {class} {id} {role} aria-live="polite">{ text }</p> }
            }
        };
        match answer {
            Answer::Waiting => html! {},
            Answer::Working => line("muted", self.working.to_owned(), None, false),
            Answer::Failed(error) => line("status-bad", error.clone(), self.error_id, true),
            Answer::Done(value) => done(value),
        }
    }
}

/// The fields of a view's link that were ignored, each with why.
#[derive(Properties, PartialEq)]
pub(crate) struct LinkErrorsProps {
    /// From [`use_query`].
    pub(crate) errors: Rc<Vec<FieldError>>,
}

/// Says which fields of the link were ignored (nothing when none were).
#[component]
pub(crate) fn LinkErrors(props: &LinkErrorsProps) -> Html {
    html! {
        { for props.errors.iter().map(|e| html! {
            <p class="status-bad link-error" role="alert" data-field={e.field.clone()}>{ e.to_string() }</p>
        }) }
    }
}
