//! The engine's state: a line in the header, and a gate that shows loading progress (or
//! why loading failed) until the pack is ready.

use yew::prelude::*;

use crate::state::{Engine, EngineStatus};

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// Which engine runs, in a few words, for the header.
#[component]
pub(crate) fn StatusLine() -> Html {
    let Some(engine) = use_context::<Engine>() else {
        return html! {};
    };
    let text = match &engine.status {
        EngineStatus::Loading { stage, .. } => format!("loading: {stage}…"),
        EngineStatus::Ready(info) => format!(
            "engine: CPU in a web worker · pack “{}”{}",
            info.name,
            if info.from_cache {
                " (from this browser's cache)"
            } else {
                ""
            }
        ),
        EngineStatus::Failed(_) => "engine: not loaded".to_owned(),
    };
    html! { <p class="status-line muted" id="engine-status">{ text }</p> }
}

/// Properties of [`ReadyGate`].
#[derive(Properties, PartialEq)]
pub(crate) struct ReadyGateProps {
    /// Shown once the pack is ready.
    pub(crate) children: Html,
}

/// Shows a progress bar while the pack loads, the reason if it failed, else `children`.
#[component]
pub(crate) fn ReadyGate(props: &ReadyGateProps) -> Html {
    let Some(engine) = use_context::<Engine>() else {
        return html! {};
    };
    match &engine.status {
        EngineStatus::Ready(_) => props.children.clone(),
        EngineStatus::Loading {
            stage,
            loaded,
            total,
        } => html! {
            <section class="panel" aria-live="polite" id="loading">
                <h2>{ "Loading the model" }</h2>
                <p>{ format!("{stage}: {} of {}", megabytes(*loaded), megabytes(*total)) }</p>
                <progress max={total.max(&1).to_string()} value={loaded.to_string()}></progress>
                <p class="muted">{ "Everything runs in this browser; the files are kept in its cache, so the next visit starts at once, also offline." }</p>
            </section>
        },
        EngineStatus::Failed(error) => html! {
            <section class="panel" role="alert" id="load-failed">
                <h2 class="status-bad">{ "The model could not be loaded" }</h2>
                <p>{ error.clone() }</p>
                <p class="muted">{ "Reloading the page tries again." }</p>
            </section>
        },
    }
}
