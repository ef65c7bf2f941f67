//! The bar above every view while a teacher writes a lesson: adds the view shown, as it
//! is (its link), as the lesson's next step.

use glassbox_lab::is_step_view;
use glassbox_web::lessons::view_of;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::draft;
use crate::route::Route;

/// The bar, shown while a lesson is being written (not on the builder itself).
#[component]
pub(crate) fn DraftBar() -> Html {
    let location = use_location();
    let (path, query) = location
        .as_ref()
        .map(|l| (l.path().to_owned(), l.query_str().to_owned()))
        .unwrap_or_default();
    let lesson = use_state(draft::load);
    let added = use_state(|| None::<usize>);
    {
        // The builder may have changed the draft: read it again on every view.
        let (lesson, added) = (lesson.clone(), added.clone());
        use_effect_with((path.clone(), query.clone()), move |_| {
            lesson.set(draft::load());
            added.set(None);
        });
    }
    let Some(current) = (*lesson).clone() else {
        return html! {};
    };
    if path == "/write" {
        return html! {};
    }
    let view = view_of(&path, &query);
    let can_add = is_step_view(&view);
    let add = {
        let (lesson, added, view) = (lesson.clone(), added.clone(), view.clone());
        Callback::from(move |_: MouseEvent| {
            let mut next = current.clone();
            next.steps.push(glassbox_lab::Step {
                title: format!("Step {}", next.steps.len() + 1),
                text: String::new(),
                view: view.clone(),
                claims: Vec::new(),
                try_this: String::new(),
                questions: Vec::new(),
            });
            draft::save(&next);
            added.set(Some(next.steps.len()));
            lesson.set(Some(next));
        })
    };
    let count = lesson.as_ref().map_or(0, |l| l.steps.len());
    let title = lesson
        .as_ref()
        .map(|l| l.title.clone())
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| "untitled".to_owned());
    html! {
        <aside class="panel draft-bar" id="draft-bar" aria-label="lesson being written">
            <span>{ format!("Writing the lesson “{title}”: {count} step{}. ", if count == 1 { "" } else { "s" }) }</span>
            <button type="button" id="draft-add" onclick={add} disabled={!can_add}
                title={ if can_add { "the view as it is now, with its link, becomes the next step" } else { "the home page, the quiz and the GPU check cannot be a step: open a view" } }>
                { format!("Add this view as step {}", count + 1) }
            </button>
            { " " }
            <Link<Route> to={Route::Write}>{ "Write the steps' text…" }</Link<Route>>
            if let Some(n) = *added {
                <span class="muted" id="draft-added" aria-live="polite">{ format!(" Added as step {n}.") }</span>
            }
        </aside>
    }
}
