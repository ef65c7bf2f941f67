//! A lesson step beside the view it discusses: the step's text, the claims it makes about
//! the model (each checked against the pack by the project's tests), something to try,
//! and links to the steps before and after. The step lives in the link
//! (`lesson=NAME&step=N`), so a step can be shared and reloaded; when the student changes
//! the view (tries something), the step stays open with a way back to its own view.

use glassbox_lab::{Lesson, MAX_LESSON_BYTES};
use glassbox_web::engine::protocol::PackLesson;
use glassbox_web::lesson_link::{decode, is_inline};
use glassbox_web::lessons::{
    PACK_PREFIX, Run, built_in, is_lesson_address, lesson_in_query, paragraphs, step_link,
};
use yew::prelude::*;
use yew_router::prelude::*;

use crate::state::Engine;

/// Runs as elements: text is only ever text.
fn view_runs(runs: &[Run]) -> Html {
    html! {
        { for runs.iter().map(|run| match run {
            Run::Plain(text) => html! { { text.clone() } },
            Run::Bold(text) => html! { <strong>{ text.clone() }</strong> },
            Run::Emphasis(text) => html! { <em>{ text.clone() }</em> },
            Run::Code(text) => html! { <code>{ text.clone() }</code> },
        }) }
    }
}

/// The lesson step the link names, or the one last opened while the student tries
/// things; nothing outside a lesson.
#[component]
pub(crate) fn LessonPanel() -> Html {
    let location = use_location();
    let query = location
        .as_ref()
        .map(|l| l.query_str().to_owned())
        .unwrap_or_default();
    let named = lesson_in_query(&query);
    let open = use_state(|| None::<(String, usize)>);
    {
        let open = open.clone();
        use_effect_with(named.clone(), move |named| {
            if named.is_some() {
                open.set(named.clone());
            }
        });
    }
    let engine = use_context::<Engine>();
    let shown = named.clone().or_else(|| (*open).clone());
    // A lesson open: the lessons are kept for offline use.
    {
        let keep = engine.as_ref().map(|e| e.keep_lessons.clone());
        use_effect_with(shown.is_some(), move |&open| {
            if let Some(keep) = keep.filter(|_| open) {
                keep.emit(());
            }
        });
    }
    // A lesson file named by its address: fetched once, kept while the page is open.
    let fetched = use_state(|| None::<(String, Result<Lesson, String>)>);
    {
        let fetched = fetched.clone();
        let address = shown
            .as_ref()
            .map(|(name, _)| name.clone())
            .filter(|name| is_lesson_address(name));
        use_effect_with(address, move |address| {
            if let Some(address) = address.clone()
                && fetched.as_ref().is_none_or(|(a, _)| *a != address)
            {
                wasm_bindgen_futures::spawn_local(async move {
                    let lesson = fetch_lesson(&address).await;
                    fetched.set(Some((address, lesson)));
                });
            }
        });
    }
    // A lesson carried in the link: unpacked once per link.
    let inline = use_memo(
        shown
            .as_ref()
            .map(|(name, _)| name.clone())
            .filter(|name| is_inline(name)),
        |name| name.as_deref().map(decode),
    );
    let resolved = shown.as_ref().map(|(name, step)| {
        resolve(
            name,
            (*inline).as_ref(),
            (*fetched).as_ref(),
            engine
                .as_ref()
                .and_then(Engine::info)
                .map(|i| i.lessons.as_slice()),
        )
        .and_then(|lesson| {
            if (1..=lesson.steps.len()).contains(step) {
                Ok(lesson)
            } else {
                Err(refused(&format!(
                    "The lesson “{}” has {} steps; the link asks for step {step}.",
                    lesson.title,
                    lesson.steps.len()
                )))
            }
        })
    });
    // Called on every render (hooks keep their order); no keys outside a lesson.
    use_step_keys(match (&shown, &resolved) {
        (Some((name, step)), Some(Ok(lesson))) => Some((
            step_href(name, lesson, step.saturating_sub(1).max(1)),
            step_href(name, lesson, (step + 1).min(lesson.steps.len())),
        )),
        _ => None,
    });
    let (Some((name, step)), Some(resolved)) = (shown, resolved) else {
        return html! {};
    };
    let lesson = match resolved {
        Ok(lesson) => lesson,
        Err(shown_instead) => return shown_instead,
    };
    let current = &lesson.steps[step - 1];
    let on_its_view = named.as_ref() == Some(&(name.clone(), step));
    let close = {
        let (open, view) = (open.clone(), current.view.clone());
        Callback::from(move |_: MouseEvent| {
            open.set(None);
            if let Some(window) = web_sys::window() {
                let _ = window.location().set_hash(&view);
            }
        })
    };
    let pack = engine
        .as_ref()
        .and_then(Engine::info)
        .map(|info| info.name.clone());
    html! {
        <aside class="panel lesson" id="lesson" aria-label="lesson" data-step={ step.to_string() }>
            <p class="muted lesson-where">{ format!("Lesson: {} · step {step} of {}", lesson.title, lesson.steps.len()) }</p>
            <h2 id="lesson-step-title">{ current.title.clone() }</h2>
            if pack.as_ref().is_some_and(|p| *p != lesson.pack) {
                <p class="engine-note" id="lesson-other-pack">{ format!("This lesson is written for the pack “{}”; the model loaded here is “{}”, so what it says may not hold.", lesson.pack, pack.unwrap_or_default()) }</p>
            }
            { for paragraphs(&current.text).iter().map(|runs| html! { <p>{ view_runs(runs) }</p> }) }
            if !current.claims.is_empty() {
                <p class="muted">{ "What the model does here (each checked against this pack by Glassbox's tests):" }</p>
                <ul class="lesson-claims" id="lesson-claims">
                    { for current.claims.iter().map(|claim| html! { <li>{ claim.describe() }</li> }) }
                </ul>
            }
            if !current.try_this.is_empty() {
                <p class="lesson-try" id="lesson-try"><strong>{ "Try this: " }</strong>
                    { for paragraphs(&current.try_this).iter().map(|runs| view_runs(runs)) }
                </p>
            }
            if !current.questions.is_empty() {
                <div class="lesson-questions" id="lesson-questions">
                    { for current.questions.iter().map(|q| html! {
                        <details class="lesson-question">
                            <summary>{ for paragraphs(&q.question).iter().map(|runs| view_runs(runs)) }</summary>
                            { for paragraphs(&q.answer).iter().map(|runs| html! { <p>{ view_runs(runs) }</p> }) }
                        </details>
                    }) }
                </div>
            }
            if !on_its_view {
                <p><a id="lesson-return" href={ step_href(&name, &lesson, step) }>{ "Back to this step's view" }</a></p>
            }
            <nav class="lesson-nav" aria-label="lesson steps">
                if step > 1 {
                    <a id="lesson-back" href={ step_href(&name, &lesson, step - 1) }>{ "← Back" }</a>
                }
                if step < lesson.steps.len() {
                    <a id="lesson-next" href={ step_href(&name, &lesson, step + 1) }>{ "Next →" }</a>
                } else {
                    <a id="lesson-finish" href="#/">{ "Finish" }</a>
                }
                <button type="button" id="lesson-close" onclick={close}>{ "Close the lesson" }</button>
            </nav>
        </aside>
    }
}

/// The lesson `name` names: carried in the link (`inline`, unpacked), by the pack
/// (`pack_lessons`, once it has loaded), fetched from its address (`fetched`), or built in; or what the panel shows instead (loading, or why it
/// cannot be opened).
fn resolve(
    name: &str,
    inline: Option<&Result<Lesson, String>>,
    fetched: Option<&(String, Result<Lesson, String>)>,
    pack_lessons: Option<&[PackLesson]>,
) -> Result<Lesson, Html> {
    if let Some(unpacked) = inline {
        return unpacked.clone().map_err(|error| {
            refused(&format!(
                "The lesson in this link could not be opened: {error}"
            ))
        });
    }
    if let Some(carried) = name.strip_prefix(PACK_PREFIX) {
        let Some(lessons) = pack_lessons else {
            return Err(html! {
                <aside class="panel lesson" id="lesson-loading" aria-live="polite">
                    <p class="muted">{ "Loading the pack's lessons…" }</p>
                </aside>
            });
        };
        return match lessons
            .iter()
            .find(|l| l.name == carried)
            .map(PackLesson::lesson)
        {
            Some(Ok(lesson)) => Ok(lesson),
            Some(Err(error)) => Err(refused(&format!(
                "The pack's lesson “{carried}” could not be read: {error}"
            ))),
            None => Err(refused(&format!(
                "The pack loaded here has no lesson called “{carried}”; the home page lists its lessons."
            ))),
        };
    }
    if is_lesson_address(name) {
        return match fetched {
            Some((address, Ok(lesson))) if address == name => Ok(lesson.clone()),
            Some((address, Err(error))) if address == name => Err(refused(&format!(
                "The lesson at {name} could not be opened: {error}"
            ))),
            _ => Err(html! {
                <aside class="panel lesson" id="lesson-loading" aria-live="polite">
                    <p class="muted">{ format!("Loading the lesson at {name}…") }</p>
                </aside>
            }),
        };
    }
    match built_in(name) {
        Some(Ok(lesson)) => Ok(lesson),
        Some(Err(error)) => Err(refused(&format!(
            "The lesson “{name}” could not be read: {error}"
        ))),
        None => Err(refused(&format!(
            "There is no lesson called “{name}”; the home page lists the lessons."
        ))),
    }
}

/// The arrow keys move to the step before (←) and after (→), as in a presentation,
/// unless the student is typing.
#[hook]
fn use_step_keys(targets: Option<(String, String)>) {
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    use_effect_with(targets, |targets| {
        let targets = targets.clone();
        let on_key =
            Closure::<dyn Fn(web_sys::KeyboardEvent)>::new(move |event: web_sys::KeyboardEvent| {
                let typing = event
                    .target()
                    .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
                    .is_some_and(|e| {
                        matches!(e.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT")
                    });
                if typing
                    || event.alt_key()
                    || event.ctrl_key()
                    || event.meta_key()
                    || event.shift_key()
                {
                    return;
                }
                let Some((back, next)) = &targets else {
                    return;
                };
                let to = match event.key().as_str() {
                    "ArrowLeft" => back,
                    "ArrowRight" => next,
                    _ => return,
                };
                if let Some(window) = web_sys::window()
                    && window.location().hash().ok().as_deref() != Some(to.as_str())
                {
                    let _ = window.location().set_hash(to);
                }
            });
        let window = web_sys::window();
        if let Some(window) = &window {
            let _ =
                window.add_event_listener_with_callback("keydown", on_key.as_ref().unchecked_ref());
        }
        move || {
            if let Some(window) = window {
                let _ = window.remove_event_listener_with_callback(
                    "keydown",
                    on_key.as_ref().unchecked_ref(),
                );
            }
        }
    });
}

/// Fetches and reads the lesson file at `address` (relative to the page, or absolute),
/// refusing one longer than [`MAX_LESSON_BYTES`] before reading it all when the server
/// says its length.
async fn fetch_lesson(address: &str) -> Result<Lesson, String> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;
    let window = web_sys::window().ok_or("no window")?;
    let response = JsFuture::from(window.fetch_with_str(address))
        .await
        .map_err(|_| {
            "the request failed (offline, a wrong address, or a site that does not allow \
             this page to read it: CORS)"
                .to_owned()
        })?;
    let response: web_sys::Response = response.dyn_into().map_err(|_| "not a response")?;
    if !response.ok() {
        return Err(format!("the server answered {}", response.status()));
    }
    let declared = response
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|l| l.parse::<usize>().ok());
    if declared.is_some_and(|l| l > MAX_LESSON_BYTES) {
        return Err(format!(
            "it is longer than the {MAX_LESSON_BYTES} bytes a lesson may have"
        ));
    }
    // Read no further than the limit, even when the server does not say the length.
    let bytes =
        glassbox_web::engine::capped_bytes(response, MAX_LESSON_BYTES as u64, &|_| {}).await?;
    Lesson::parse(&bytes).map_err(|e| e.to_string())
}

/// The `href` of step `step` of lesson `name`.
fn step_href(name: &str, lesson: &Lesson, step: usize) -> String {
    step_link(name, lesson, step).map_or_else(|| "#/".to_owned(), |link| format!("#{link}"))
}

/// A lesson link that cannot be followed, and why.
fn refused(reason: &str) -> Html {
    html! {
        <aside class="panel lesson" id="lesson" role="alert">
            <p id="lesson-refused">{ reason.to_owned() }</p>
        </aside>
    }
}

/// The lessons for the home page: those the loaded pack carries, then the built-in ones
/// (each with the pack it is written for when that is another): each title, what it
/// teaches, and a link to its first step.
#[component]
pub(crate) fn LessonList() -> Html {
    let engine = use_context::<Engine>();
    let info = engine.as_ref().and_then(Engine::info);
    let pack = info.map(|i| i.name.clone());
    let item = |name: &str, lesson: &Lesson, written_for: Option<&str>| {
        html! {
            <li>
                <a href={ step_href(name, lesson, 1) }>{ lesson.title.clone() }</a>
                { format!(" — {} ({} steps)", lesson.summary, lesson.steps.len()) }
                { for written_for.map(|p| html! { <span class="muted">{ format!(" · for the pack “{p}”") }</span> }) }
            </li>
        }
    };
    let carried = info.map(|i| i.lessons.clone()).unwrap_or_default();
    html! {
        <ul class="lessons" id="lessons">
            { for carried.iter().map(|carried| match &carried.lesson() {
                Ok(lesson) => item(&format!("{PACK_PREFIX}{}", carried.name), lesson, None),
                Err(error) => html! {
                    <li class="status-bad">{ format!("The pack's lesson “{}” could not be read: {error}", carried.name) }</li>
                },
            }) }
            { for glassbox_web::lessons::BUILT_IN.iter().filter_map(|(name, _)| {
                let lesson = built_in(name)?.ok()?;
                let other = pack.as_ref().filter(|p| **p != lesson.pack).map(|_| lesson.pack.clone());
                Some(item(name, &lesson, other.as_deref()))
            }) }
        </ul>
    }
}
