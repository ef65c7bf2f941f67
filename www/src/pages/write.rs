//! Writing a lesson in the page: its title and summary, the steps the bar above each view
//! added (reordered, retitled, their text and "try this" written here), a preview, and two
//! ways to share it: a link that carries the whole lesson, and a file to download (opened
//! again here to edit, or from a link's `lesson=` address).

use glassbox_lab::{Lesson, MAX_LESSON_BYTES};
use glassbox_web::lesson_link::encode;
use glassbox_web::lessons::step_link;
use wasm_bindgen_futures::JsFuture;
use web_sys::{HtmlInputElement, HtmlTextAreaElement};
use yew::prelude::*;
use yew_router::prelude::*;

use crate::draft;
use crate::route::Route;
use crate::state::Engine;

/// One edit of the draft.
type Edit = Box<dyn Fn(&mut Lesson)>;

/// The builder.
#[component]
pub(crate) fn WritePage() -> Html {
    let engine = use_context::<Engine>();
    let pack = engine
        .as_ref()
        .and_then(Engine::info)
        .map_or_else(String::new, |info| info.name.clone());
    let lesson = use_state(|| {
        draft::load().unwrap_or_else(|| {
            let lesson = draft::empty(&pack);
            draft::save(&lesson);
            lesson
        })
    });
    let problem = use_state(|| None::<String>);
    let edit = {
        let lesson = lesson.clone();
        Callback::from(move |change: Edit| {
            let mut next = (*lesson).clone();
            change(&mut next);
            draft::save(&next);
            lesson.set(next);
        })
    };
    let on_title = {
        let edit = edit.clone();
        Callback::from(move |event: InputEvent| {
            let value = text_of(&event);
            edit.emit(Box::new(move |l| l.title.clone_from(&value)));
        })
    };
    let on_summary = {
        let edit = edit.clone();
        Callback::from(move |event: InputEvent| {
            let value = text_of(&event);
            edit.emit(Box::new(move |l| l.summary.clone_from(&value)));
        })
    };
    let steps = lesson
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| step_editor(i, step, lesson.steps.len(), &edit));
    let open_file = {
        let (lesson, problem) = (lesson.clone(), problem.clone());
        Callback::from(move |event: Event| {
            let input = event.target_unchecked_into::<HtmlInputElement>();
            let Some(file) = input.files().and_then(|files| files.get(0)) else {
                return;
            };
            input.set_value("");
            let (lesson, problem) = (lesson.clone(), problem.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match read_lesson_file(&file).await {
                    Ok(opened) => {
                        draft::save(&opened);
                        lesson.set(opened);
                        problem.set(None);
                    }
                    Err(error) => problem.set(Some(format!(
                        "{} was not opened, the lesson here is unchanged: {error}",
                        file.name()
                    ))),
                }
            });
        })
    };
    let start_over = {
        let (lesson, pack) = (lesson.clone(), pack.clone());
        Callback::from(move |_: MouseEvent| {
            let empty = draft::empty(&pack);
            draft::save(&empty);
            lesson.set(empty);
        })
    };
    let stop = Callback::from(|_: MouseEvent| draft::clear());
    html! {
        <section class="panel" id="write-lesson">
            <h2>{ "Write a lesson" }</h2>
            <p class="muted">{ "Open any view (a prompt, a feature, a circuit…), set it to what the step discusses, and press “Add this view as a step” in the bar above it. Here, give each step its text; reorder, preview, then share the lesson as a link or a file. The draft stays in this browser." }</p>
            <div class="form">
                <label>{ "title" }<input id="draft-title" value={lesson.title.clone()} oninput={on_title} /></label>
                <label>{ "summary" }<input id="draft-summary" value={lesson.summary.clone()} oninput={on_summary} /></label>
            </div>
            if lesson.steps.is_empty() {
                <p class="muted" id="draft-empty">{ "No steps yet: open a view from the menu and add it." }</p>
            }
            <ol class="draft-steps" id="draft-steps">{ for steps }</ol>
            { share(&lesson) }
            <p class="controls">
                <label class="button">{ "Open a lesson file…" }
                    <input type="file" id="draft-open" accept=".json,application/json" onchange={open_file} hidden=true />
                </label>
                <button type="button" id="draft-new" onclick={start_over}>{ "Start a new lesson" }</button>
                <Link<Route> to={Route::Home}><span onclick={stop}>{ "Stop writing (the bar goes away)" }</span></Link<Route>>
            </p>
            if let Some(problem) = &*problem {
                <p class="status-bad" role="alert" id="draft-problem">{ problem.clone() }</p>
            }
        </section>
    }
}

/// What a text box or text area holds after `event`.
fn text_of(event: &InputEvent) -> String {
    event
        .target_dyn_into::<HtmlTextAreaElement>()
        .map(|t| t.value())
        .or_else(|| {
            event
                .target_dyn_into::<HtmlInputElement>()
                .map(|i| i.value())
        })
        .unwrap_or_default()
}

/// One step's fields and the buttons that move or remove it.
fn step_editor(i: usize, step: &glassbox_lab::Step, count: usize, edit: &Callback<Edit>) -> Html {
    let field = |set: fn(&mut glassbox_lab::Step, String)| {
        let edit = edit.clone();
        Callback::from(move |event: InputEvent| {
            let value = text_of(&event);
            edit.emit(Box::new(move |l| {
                if let Some(step) = l.steps.get_mut(i) {
                    set(step, value.clone());
                }
            }));
        })
    };
    let action = |change: fn(&mut Vec<glassbox_lab::Step>, usize)| {
        let edit = edit.clone();
        Callback::from(move |_: MouseEvent| edit.emit(Box::new(move |l| change(&mut l.steps, i))))
    };
    html! {
        <li class="draft-step" data-step={(i + 1).to_string()}>
            <input class="draft-step-title" aria-label={format!("step {} title", i + 1)} value={step.title.clone()} oninput={field(|s, v| s.title = v)} />
            <p class="muted">{ "view: " }<a href={format!("#{}", step.view)}>{ step.view.clone() }</a></p>
            <textarea class="draft-step-text" rows="4" aria-label={format!("step {} text", i + 1)} placeholder="What the student reads beside the view: paragraphs split by a blank line, **bold**, *emphasis*, `code`."
                value={step.text.clone()} oninput={field(|s, v| s.text = v)} />
            <textarea class="draft-step-try" rows="2" aria-label={format!("step {} try this", i + 1)} placeholder="Something to try (optional)."
                value={step.try_this.clone()} oninput={field(|s, v| s.try_this = v)} />
            { questions_editor(i, step, edit) }
            <p class="controls">
                <button type="button" class="draft-up" disabled={i == 0} onclick={action(|steps, i| steps.swap(i - 1, i))}>{ "Move up" }</button>
                <button type="button" class="draft-down" disabled={i + 1 == count} onclick={action(|steps, i| steps.swap(i, i + 1))}>{ "Move down" }</button>
                <button type="button" class="draft-remove" onclick={action(|steps, i| { steps.remove(i); })}>{ "Remove" }</button>
            </p>
        </li>
    }
}

/// Step `i`'s questions, each with its answer, and a button to add one.
fn questions_editor(i: usize, step: &glassbox_lab::Step, edit: &Callback<Edit>) -> Html {
    let change = |q: usize, set: fn(&mut glassbox_lab::Question, String)| {
        let edit = edit.clone();
        Callback::from(move |event: InputEvent| {
            let value = event.target_unchecked_into::<HtmlInputElement>().value();
            edit.emit(Box::new(move |l| {
                if let Some(question) = l.steps.get_mut(i).and_then(|s| s.questions.get_mut(q)) {
                    set(question, value.clone());
                }
            }));
        })
    };
    let remove = |q: usize| {
        let edit = edit.clone();
        Callback::from(move |_: MouseEvent| {
            edit.emit(Box::new(move |l| {
                if let Some(step) = l.steps.get_mut(i)
                    && q < step.questions.len()
                {
                    step.questions.remove(q);
                }
            }));
        })
    };
    let add = {
        let edit = edit.clone();
        Callback::from(move |_: MouseEvent| {
            edit.emit(Box::new(move |l| {
                if let Some(step) = l.steps.get_mut(i) {
                    step.questions.push(glassbox_lab::Question {
                        question: String::new(),
                        answer: String::new(),
                    });
                }
            }));
        })
    };
    html! {
        <div class="draft-questions">
            { for step.questions.iter().enumerate().map(|(q, question)| html! {
                <p class="draft-question">
                    <input class="draft-question-text" aria-label="question" placeholder="A question for the student" value={question.question.clone()} oninput={change(q, |x, v| x.question = v)} />
                    <input class="draft-question-answer" aria-label="answer" placeholder="Its answer, shown when asked" value={question.answer.clone()} oninput={change(q, |x, v| x.answer = v)} />
                    <button type="button" onclick={remove(q)}>{ "Remove the question" }</button>
                </p>
            }) }
            <button type="button" class="draft-add-question" onclick={add}>{ "Add a question" }</button>
        </div>
    }
}

/// The preview, the link and the file of `lesson`, or what keeps it from being shared.
fn share(lesson: &Lesson) -> Html {
    if let Err(problem) = lesson.check() {
        return html! { <p class="muted" id="draft-not-ready">{ format!("Not ready to share: {problem}.") }</p> };
    }
    let json = serde_json::to_string_pretty(lesson).unwrap_or_default();
    let file = format!(
        "data:application/json;charset=utf-8,{}",
        js_sys::encode_uri_component(&json)
    );
    let name = format!("{}.json", file_stem(&lesson.title));
    let link = encode(lesson).map(|value| {
        let fragment = step_link(&value, lesson, 1).unwrap_or_default();
        let page = web_sys::window()
            .and_then(|w| {
                let location = w.location();
                Some(format!(
                    "{}{}{}",
                    location.origin().ok()?,
                    location.pathname().ok()?,
                    location.search().ok()?
                ))
            })
            .unwrap_or_default();
        (format!("#{fragment}"), format!("{page}#{fragment}"))
    });
    html! {
        <div class="draft-share" id="draft-share">
            { match link {
                Ok((preview, full)) => html! {
                    <>
                        <p><a class="button" id="draft-preview" href={preview}>{ "Preview from step 1" }</a></p>
                        <label>{ "The lesson's link (it carries the whole lesson; anyone who opens it walks it):" }
                            <input id="draft-link" readonly=true value={full} />
                        </label>
                    </>
                },
                Err(problem) => html! { <p class="muted" id="draft-link-problem">{ problem }</p> },
            } }
            <p><a class="button" id="draft-download" href={file} download={name}>{ "Download the lesson file" }</a>
                <span class="muted">{ format!(" — put it beside the page (or any site that allows it) and share #/prompt?lesson=ADDRESS&step=1; at most {} KiB.", MAX_LESSON_BYTES / 1024) }</span></p>
        </div>
    }
}

/// A file name from a lesson's title.
fn file_stem(title: &str) -> String {
    let stem: String = title
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|w| !w.is_empty())
        .take(8)
        .collect::<Vec<_>>()
        .join("-");
    if stem.is_empty() {
        "lesson".to_owned()
    } else {
        stem
    }
}

/// A lesson file picked from this computer, refused over the size limit before reading.
async fn read_lesson_file(file: &web_sys::File) -> Result<Lesson, String> {
    if file.size() > MAX_LESSON_BYTES as f64 {
        return Err(format!(
            "it is {:.0} KiB; a lesson is at most {} KiB",
            file.size() / 1024.0,
            MAX_LESSON_BYTES / 1024
        ));
    }
    let text = JsFuture::from(file.text())
        .await
        .map_err(|_| "it could not be read".to_owned())?
        .as_string()
        .ok_or("it is not text")?;
    Lesson::parse(text.as_bytes()).map_err(|e| e.to_string())
}
