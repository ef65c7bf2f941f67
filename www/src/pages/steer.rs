//! Steering: set features to a value or scale them (0 ablates) while the model writes,
//! and compare with the unsteered text. Seeded, so a link gives the same text.

use glassbox_lab::{MAX_STEER_TOKENS, SteerRequest};
use glassbox_web::links::{format_steer_features, parse_steer_features};
use yew::prelude::*;
use yew_router::prelude::*;

use crate::components::continuations::continuations;
use crate::components::copy_link::CopyLink;
use crate::components::status::ReadyGate;
use crate::components::steer_picker::SteerPicker;
use crate::components::text_field::TextField;
use crate::pages::prompt::EXAMPLE_PROMPT;
use crate::route::{Route, SteerQuery};
use crate::state::{AnswerView, LinkErrors, use_query, use_request};

/// The steering view.
#[component]
pub(crate) fn SteerPage() -> Html {
    let navigator = use_navigator();
    let (query, link_errors) = use_query::<SteerQuery>();
    let prompt = if query.text.is_empty() {
        EXAMPLE_PROMPT.to_owned()
    } else {
        query.text.clone()
    };
    let features = parse_steer_features(&query.f);
    let temperature = query
        .t
        .parse::<f32>()
        .map_err(|_| format!("temperature `{}` is not a number", query.t));
    let request = match (&features, &temperature) {
        (Ok(features), Ok(t)) if !features.is_empty() => Some(SteerRequest {
            prompt: prompt.clone(),
            features: features.clone(),
            max_tokens: query.n,
            temperature: *t,
            seed: query.seed,
        }),
        _ => None,
    };
    let answer = use_request(request);
    let update = {
        let (query, navigator) = (query.clone(), navigator.clone());
        move |change: fn(&mut SteerQuery, String)| {
            let (query, navigator) = (query.clone(), navigator.clone());
            Callback::from(move |value: String| {
                let mut next = query.clone();
                change(&mut next, value);
                if let Some(navigator) = &navigator {
                    let _ = navigator.replace_with_query(&Route::Steer, &next);
                }
            })
        }
    };
    let on_features = {
        let (query, navigator) = (query.clone(), navigator.clone());
        Callback::from(move |features: Vec<glassbox_lab::FeatureSteer>| {
            let next = SteerQuery {
                f: format_steer_features(&features),
                ..query.clone()
            };
            if let Some(navigator) = &navigator {
                let _ = navigator.replace_with_query(&Route::Steer, &next);
            }
        })
    };
    let problem = match (&features, &temperature) {
        (Err(e), _) | (_, Err(e)) => Some(e.clone()),
        (Ok(f), _) if f.is_empty() => Some("Add a feature to steer: search for one below, type e.g. 1/3:c20 (clamp feature 3 of block 1 to 20) or 2/5:x0 (ablate it), or use “Steer with it” on a feature's page.".to_owned()),
        _ => None,
    };
    html! {
        <ReadyGate>
            <section class="panel">
                <h2>{ "Steer" }</h2>
                <div class="form">
                    <label>{ "prompt" }<TextField id="steer-prompt" value={prompt.clone()} on_commit={update(|q, v| q.text = v)} /></label>
                    <label>{ "features" }<TextField id="steer-features" value={query.f.clone()} on_commit={update(|q, v| q.f = v)}
                        placeholder="1/3:c20, 2/5:x0" /></label>
                    <label>{ "tokens" }<TextField kind="number" min="1" max={MAX_STEER_TOKENS.to_string()} value={query.n.to_string()}
                        on_commit={update(|q, v| q.n = v.parse().unwrap_or(q.n))} /></label>
                    <label>{ "temperature" }<TextField value={query.t.clone()} on_commit={update(|q, v| q.t = v)} /></label>
                    <label>{ "seed" }<TextField kind="number" min="0" value={query.seed.to_string()}
                        on_commit={update(|q, v| q.seed = v.parse().unwrap_or(q.seed))} /></label>
                </div>
                <p class="muted">{ "layer/index:c<value> clamps a feature to a value at every position; layer/index:x<factor> scales it (x0 ablates). The same link always gives the same text. Or pick and set features here:" }</p>
                <SteerPicker features={features.clone().unwrap_or_default()} on_change={on_features} />
                <p><CopyLink /></p>
                <LinkErrors errors={link_errors} />
                { for problem.map(|p| html! { <p class="status-bad" id="steer-problem">{ p }</p> }) }
            </section>
            { AnswerView::new("Generating…").error_id("steer-error").show(&answer, |result| html! {
                <section class="panel" id="steer-result">
                    { continuations(&prompt, result, "") }
                </section>
            }) }
        </ReadyGate>
    }
}
