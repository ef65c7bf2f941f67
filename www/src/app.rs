//! The app shell: starts the engine worker and loads the pack, then routes to the pages.

use std::rc::Rc;

use glassbox_web::chrome::{Chrome, with_embed};
use glassbox_web::engine::client::EngineClient;
use glassbox_web::engine::protocol::{
    EngineRequest, Feature, FeatureData, PickedFile, Request, Response, SwitchEngine,
};
use glassbox_web::lessons::{built_in_for, features_shown};
use glassbox_web::pack_link::pack_from_query;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::components::theme::ThemeToggle;
use crate::pages::{
    attention::AttentionPage, circuit::CircuitPage, feature::FeaturePage, gpu::GpuPage, home::Home,
    lens::LensPage, not_found::NotFound, prompt::PromptPage, quiz::QuizPage, search::SearchPage,
    steer::SteerPage, write::WritePage,
};
use crate::route::Route;
use crate::state::{Engine, EngineChoice, EngineStatus};

/// Where the default pack is served, relative to the page (`?pack=URL` opens another).
pub(crate) const PACK_BASE: &str = "packs/brown/";

/// The root component.
#[component]
pub(crate) fn App() -> Html {
    let client = use_memo((), |()| EngineClient::spawn());
    let status = use_state(|| EngineStatus::Loading {
        stage: "starting the engine".to_owned(),
        loaded: 0,
        total: 0,
    });
    let choice = use_state(|| None::<EngineChoice>);
    let features_progress = use_state(|| None::<(String, u64, u64)>);
    {
        let (client, status, choice) = (Rc::clone(&client), status.clone(), choice.clone());
        let background = features_progress.clone();
        use_effect_with((), move |()| {
            let base = match pack_asked_for() {
                Ok(base) => base,
                Err(error) => {
                    status.set(EngineStatus::Failed(error));
                    return;
                }
            };
            // A worker script gone from the server never starts: say so instead of waiting.
            let missing = status.clone();
            wasm_bindgen_futures::spawn_local(async move {
                if let Err(error) = glassbox_web::engine::client::check_worker().await {
                    missing.set(EngineStatus::Failed(error));
                }
            });
            let (told, features_ready) = (choice.clone(), status.clone());
            // Unasked: the engine changed, or the pack's features (loading after its
            // model) made progress or arrived.
            client.on_unasked(Callback::from(move |response| match response {
                Response::Engine(info) => told.set(Some(EngineChoice::Running(info))),
                Response::Progress {
                    stage,
                    loaded,
                    total,
                } => background.set(Some((stage, loaded, total))),
                Response::Ready(info) => {
                    background.set(None);
                    told.set(Some(EngineChoice::Running(info.engine.clone())));
                    features_ready.set(EngineStatus::Ready(Rc::new(info)));
                }
                _ => {}
            }));
            client.request(
                Request::Load {
                    base,
                    engine: engine_asked_for(),
                    workers: workers_asked_for(),
                },
                Callback::from(move |response| {
                    if let Response::Ready(info) = &response {
                        choice.set(Some(EngineChoice::Running(info.engine.clone())));
                    }
                    status.set(match response {
                        Response::Progress {
                            stage,
                            loaded,
                            total,
                        } => EngineStatus::Loading {
                            stage,
                            loaded,
                            total,
                        },
                        Response::Ready(info) => EngineStatus::Ready(Rc::new(info)),
                        Response::Error(error) => EngineStatus::Failed(error),
                        other => EngineStatus::Failed(format!("unexpected answer: {other:?}")),
                    });
                }),
            );
        });
    }
    let lessons_wanted = use_state_eq(|| false);
    let lessons_kept = use_lessons_kept(&client, &status, *lessons_wanted);
    let keep_lessons = Callback::from(move |()| lessons_wanted.set(true));
    let open_error = use_state(|| None::<String>);
    // Sends files to the worker to open; their `blob:` URLs are let go once answered.
    let open_files: Rc<dyn Fn(Vec<PickedFile>)> = {
        let (client, status, choice, open_error) = (
            Rc::clone(&client),
            status.clone(),
            choice.clone(),
            open_error.clone(),
        );
        Rc::new(move |files: Vec<PickedFile>| {
            open_error.set(None);
            let before = (*status).clone();
            let (status, choice, open_error) = (status.clone(), choice.clone(), open_error.clone());
            let urls: Vec<String> = files
                .iter()
                .map(|f| f.url.clone())
                .filter(|url| url.starts_with("blob:"))
                .collect();
            let revoke = move || {
                for url in &urls {
                    let _ = web_sys::Url::revoke_object_url(url);
                }
            };
            client.request(
                Request::OpenModel {
                    files,
                    engine: engine_asked_for(),
                },
                Callback::from(move |response| match response {
                    Response::Progress {
                        stage,
                        loaded,
                        total,
                    } => status.set(EngineStatus::Loading {
                        stage,
                        loaded,
                        total,
                    }),
                    Response::Ready(info) => {
                        revoke();
                        choice.set(Some(EngineChoice::Running(info.engine.clone())));
                        status.set(EngineStatus::Ready(Rc::new(info)));
                    }
                    Response::Error(error) => {
                        revoke();
                        // The worker kept what it had loaded before: so does the page.
                        status.set(before.clone());
                        open_error.set(Some(error));
                    }
                    other => open_error.set(Some(format!("unexpected answer: {other:?}"))),
                }),
            );
        })
    };
    let open_model = {
        let (open_files, open_error) = (Rc::clone(&open_files), open_error.clone());
        Callback::from(move |picked: Vec<web_sys::File>| {
            let mut files = Vec::with_capacity(picked.len());
            for file in &picked {
                let Ok(url) = web_sys::Url::create_object_url_with_blob(file) else {
                    open_error.set(Some(format!("{}: the file could not be read", file.name())));
                    return;
                };
                // A folder's files carry their path within it (`webkitRelativePath`).
                let path = js_sys::Reflect::get(file, &"webkitRelativePath".into())
                    .ok()
                    .and_then(|p| p.as_string())
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| file.name());
                files.push(PickedFile {
                    name: file.name(),
                    path,
                    url,
                });
            }
            open_files(files);
        })
    };
    let reopen = Callback::from(move |files: Vec<PickedFile>| open_files(files));
    let switch_engine = {
        let (client, choice) = (Rc::clone(&client), choice.clone());
        Callback::from(move |gpu: bool| {
            choice.set(Some(EngineChoice::Switching));
            let answered = choice.clone();
            client.request(
                Request::SwitchEngine(SwitchEngine { gpu }),
                Callback::from(move |response| {
                    if let Response::Engine(info) = response {
                        answered.set(Some(EngineChoice::Running(info)));
                    }
                }),
            );
        })
    };
    // The built-in lessons' previews stand in while the default pack loads for the first
    // time, until its features are in; never for another pack or a model opened later.
    let previewing = use_mut_ref(|| {
        let search = web_sys::window()
            .and_then(|w| w.location().search().ok())
            .unwrap_or_default();
        matches!(pack_from_query(&search, &page_base()), Ok(None))
    });
    if *previewing.borrow() && !first_load_under_way(&status) {
        *previewing.borrow_mut() = false;
    }
    let engine = Engine {
        client: (*client).clone(),
        previewing: *previewing.borrow(),
        status: (*status).clone(),
        choice: (*choice).clone(),
        switch: switch_engine,
        open_model,
        reopen,
        open_error: (*open_error).clone(),
        features_progress: (*features_progress).clone(),
        lessons_kept,
        keep_lessons,
    };
    let chrome = use_memo((), |()| {
        let search = web_sys::window()
            .and_then(|w| w.location().search().ok())
            .unwrap_or_default();
        Chrome::from_search(&search)
    });
    html! {
        <ContextProvider<Engine> context={engine}>
            <HashRouter>
            <div id="app-root" class={ chrome.classes() }>
                if chrome.embed {
                    <p class="embed-bar muted" id="embed-bar">
                        <a href="#" target="_blank" rel="noopener" onclick={Callback::from(|e: MouseEvent| open_in_full(&e))}>{ "Glassbox ↗ open the full page" }</a>
                    </p>
                }
                <header class="site">
                    <h1><Link<Route> to={Route::Home}>{ "Glassbox" }</Link<Route>></h1>
                    <nav aria-label="views">
                        <Link<Route> to={Route::Prompt}>{ "Prompt" }</Link<Route>>
                        <Link<Route> to={Route::Search}>{ "Search" }</Link<Route>>
                        <Link<Route> to={Route::Steer}>{ "Steer" }</Link<Route>>
                        <Link<Route> to={Route::Circuit}>{ "Circuit" }</Link<Route>>
                        <Link<Route> to={Route::Attention}>{ "Attention" }</Link<Route>>
                        <Link<Route> to={Route::Lens}>{ "Lens" }</Link<Route>>
                        <Link<Route> to={Route::Quiz}>{ "Quiz" }</Link<Route>>
                        <Link<Route> to={Route::Gpu}>{ "GPU" }</Link<Route>>
                    </nav>
                    <crate::components::status::StatusLine />
                    <crate::components::pack_picker::PackPicker />
                    <crate::components::open_model::OpenModel />
                    <ThemeToggle />
                    if let Some(note) = chrome.unknown_note() {
                        <p class="engine-note" id="hide-note">{ note }</p>
                    }
                </header>
                <main>
                    <crate::components::draft_bar::DraftBar />
                    <crate::components::lesson_panel::LessonPanel />
                    <Switch<Route> render={switch} />
                </main>
            </div>
            </HashRouter>
        </ContextProvider<Engine>>
    }
}

/// Whether the pack is still loading for the first time: its model, or its features after it.
fn first_load_under_way(status: &EngineStatus) -> bool {
    match status {
        EngineStatus::Loading { .. } => true,
        EngineStatus::Ready(info) => info.features.is_loading(),
        EngineStatus::Failed(_) => false,
    }
}

/// Opens the view in a full page of its own (out of the iframe it is embedded in).
fn open_in_full(event: &MouseEvent) {
    event.prevent_default();
    if let Some(window) = web_sys::window()
        && let Ok(href) = window.location().href()
    {
        let _ = window.open_with_url_and_target(&with_embed(&href, false), "_blank");
    }
}

/// The engine the page's address asks for: `?engine=cpu` (e.g. on a GPU that
/// misbehaves), `?engine=gpu` (even a software one, to compare), else the automatic
/// choice.
fn engine_asked_for() -> EngineRequest {
    let query = web_sys::window()
        .and_then(|w| w.location().search().ok())
        .unwrap_or_default();
    let mut pairs = query.trim_start_matches('?').split('&');
    if pairs.clone().any(|pair| pair == "engine=cpu") {
        EngineRequest::Cpu
    } else if pairs.any(|pair| pair == "engine=gpu") {
        EngineRequest::Gpu
    } else {
        EngineRequest::Auto
    }
}

/// How many helper workers the page's address asks a graph be spread over (`?workers=N`;
/// `workers=1`: none, the engine worker computes every graph alone), else `None`: one per
/// core.
fn workers_asked_for() -> Option<usize> {
    let query = web_sys::window()
        .and_then(|w| w.location().search().ok())
        .unwrap_or_default();
    workers_in(&query)
}

/// The `workers=N` of a query string, if it holds a whole number from 1 up.
fn workers_in(query: &str) -> Option<usize> {
    query
        .trim_start_matches('?')
        .split('&')
        .find_map(|pair| pair.strip_prefix("workers="))
        .and_then(|n| n.parse().ok())
        .filter(|&n| n >= 1)
}

/// The pack the page's address asks for (`?pack=URL`), else the default pack.
pub(crate) fn pack_asked_for() -> Result<String, String> {
    let search = web_sys::window()
        .and_then(|w| w.location().search().ok())
        .unwrap_or_default();
    Ok(pack_from_query(&search, &page_base())?.unwrap_or_else(|| page_base() + PACK_BASE))
}

/// The page's URL up to its last `/` (so the pack is found under any path it is served
/// from), or `./` outside a browser.
pub(crate) fn page_base() -> String {
    let href = web_sys::window()
        .and_then(|w| w.location().href().ok())
        .unwrap_or_default();
    let href = href.split(['#', '?']).next().unwrap_or_default();
    match href.rfind('/') {
        Some(i) => href[..=i].to_owned(),
        None => "./".to_owned(),
    }
}

#[allow(
    clippy::needless_pass_by_value,
    reason = "yew-router's Switch hands each route over by value"
)]
fn switch(route: Route) -> Html {
    match route {
        Route::Home => html! { <Home /> },
        Route::Prompt => html! { <PromptPage /> },
        Route::Feature { layer, index } => html! { <FeaturePage {layer} {index} /> },
        Route::Search => html! { <SearchPage /> },
        Route::Steer => html! { <SteerPage /> },
        Route::Circuit => html! { <CircuitPage /> },
        Route::Attention => html! { <AttentionPage /> },
        Route::Lens => html! { <LensPage /> },
        Route::Quiz => html! { <QuizPage /> },
        Route::Gpu => html! { <GpuPage /> },
        Route::Write => html! { <WritePage /> },
        Route::NotFound => html! { <NotFound /> },
    }
}

/// Once the pack's features are in and the lessons are `wanted`, fetches the feature
/// views its lessons show, so the lessons work offline after this visit: the pack and
/// how many could not be fetched, once done.
#[hook]
fn use_lessons_kept(
    client: &Rc<EngineClient>,
    status: &EngineStatus,
    wanted: bool,
) -> Option<(String, usize)> {
    let kept = use_state(|| None::<(String, usize)>);
    let (client, setter) = (Rc::clone(client), kept.clone());
    // The pack once its features are in; its lessons are read once per pack.
    let ready = match status {
        EngineStatus::Ready(info) if wanted && matches!(info.features, FeatureData::Ready) => {
            Some(Rc::clone(info))
        }
        _ => None,
    };
    let shown = use_memo(ready, |ready| {
        ready.as_ref().map(|info| {
            let mut lessons = built_in_for(&info.name);
            lessons.extend(info.lessons.iter().filter_map(|l| l.lesson().ok()));
            (info.name.clone(), features_shown(&lessons))
        })
    });
    use_effect_with(shown, move |shown| {
        let Some((pack, features)) = (**shown).clone() else {
            return;
        };
        // Answers counted down: (left, failed).
        let left = Rc::new(std::cell::Cell::new((features.len(), 0)));
        if features.is_empty() {
            setter.set(Some((pack.clone(), 0)));
        }
        for (layer, feature) in features {
            let (left, kept, pack) = (Rc::clone(&left), setter.clone(), pack.clone());
            client.request(
                Request::Feature(Feature { layer, feature }),
                Callback::from(move |response| {
                    let (n, failed) = left.get();
                    let failed = failed + usize::from(matches!(response, Response::Error(_)));
                    left.set((n.saturating_sub(1), failed));
                    if n == 1 {
                        kept.set(Some((pack.clone(), failed)));
                    }
                }),
            );
        }
    });
    (*kept).clone()
}

#[cfg(test)]
mod tests {
    use super::workers_in;

    #[test]
    fn the_workers_asked_for_are_a_whole_number_from_one() {
        assert_eq!(workers_in("?engine=cpu&workers=3"), Some(3));
        assert_eq!(workers_in("?workers=1"), Some(1));
        assert_eq!(workers_in("?workers=0"), None);
        assert_eq!(workers_in("?workers=-2"), None);
        assert_eq!(workers_in("?workers=many"), None);
        assert_eq!(workers_in("?engine=cpu"), None);
    }
}
