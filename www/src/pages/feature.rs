//! The feature view: its label and evidence, activation histogram, examples recomputed
//! live from the corpus, logit effects, and its activations on a prompt. A feature of a
//! dictionary opened from disk (no precomputed data) shows what was measured live over
//! the sample text instead.

use std::collections::HashMap;

use glassbox_lab::LiveFeature;
use glassbox_pack::Example;
use glassbox_web::engine::protocol::{Feature, FeatureView, LiveExample, LiveFeatureOf};
use yew::prelude::*;
use yew_router::prelude::*;

use crate::components::copy_link::CopyLink;
use crate::components::plots::{Histogram, ShadedTokens};
use crate::components::status::ReadyGate;
use crate::components::text_field::TextField;
use crate::route::{FeatureQuery, Route, SteerQuery};
use crate::state::{AnswerView, Engine, LinkErrors, use_query, use_request};

/// "Steer with it" clamps the feature to this multiple of its strongest corpus activation.
const STEER_MULTIPLE: f32 = 8.0;

/// Properties of [`FeaturePage`].
#[derive(Properties, PartialEq)]
pub(crate) struct FeaturePageProps {
    /// The block.
    pub(crate) layer: usize,
    /// The feature.
    pub(crate) index: usize,
}

/// The feature view.
#[component]
pub(crate) fn FeaturePage(props: &FeaturePageProps) -> Html {
    let (layer, index) = (props.layer, props.index);
    let engine = use_context::<Engine>();
    let live = engine
        .as_ref()
        .and_then(Engine::info)
        .and_then(|info| info.dictionaries.get(layer))
        .is_some_and(|d| !d.feature_data);
    if live {
        return html! { <LiveFeaturePage {layer} {index} /> };
    }
    let answer = use_request(Some(Feature {
        layer,
        feature: index,
    }));
    html! {
        <ReadyGate>
            if answer.failed() {
                <h2>{ format!("Feature {layer}/{index}") }</h2>
            }
            { AnswerView::new("Loading the feature…").error_id("feature-error").show(&answer, |view| view_feature(view)) }
            if answer.failed() {
                <p><Link<Route> to={Route::Search}>{ "Search for features" }</Link<Route>></p>
            }
        </ReadyGate>
    }
}

fn view_feature(view: &FeatureView) -> Html {
    let r = &view.record;
    let texts: HashMap<u32, String> = view.token_texts.iter().cloned().collect();
    let token = |id: u32| format!("{:?}", texts.get(&id).cloned().unwrap_or_default());
    let documents: HashMap<u32, String> = view.documents.iter().cloned().collect();
    let steer = SteerQuery {
        f: format!(
            "{}/{}:c{:.3}",
            view.layer,
            r.index,
            STEER_MULTIPLE * r.histogram.max
        ),
        ..SteerQuery::default()
    };
    let ablate = SteerQuery {
        f: format!("{}/{}:x0", view.layer, r.index),
        ..SteerQuery::default()
    };
    html! {
        <>
            <section class="panel">
                <h2 id="feature-title">{ format!("Feature {}/{}", view.layer, r.index) }</h2>
                <p class="feature-label" id="feature-label">{ r.label.clone() }</p>
                <p class="muted">{ format!("fires on {:.3}% of corpus tokens", 100.0 * r.frequency) }</p>
                { evidence(view) }
                <p>
                    <CopyLink />{ " " }
                    <Link<Route, SteerQuery> to={Route::Steer} query={Some(steer)}>{ "Steer with it" }</Link<Route, SteerQuery>>
                    { " · " }
                    <Link<Route, SteerQuery> to={Route::Steer} query={Some(ablate)}>{ "Ablate it" }</Link<Route, SteerQuery>>
                </p>
            </section>
            <section class="panel">
                <h2>{ "Activations" }</h2>
                <Histogram counts={r.histogram.counts.clone()} max={r.histogram.max} />
                <p class="muted">{ format!("{} bins from 0 to {:.3}; bar heights on a log scale", r.histogram.counts.len(), r.histogram.max) }</p>
            </section>
            <section class="panel" id="top-examples">
                <h2>{ "Top examples" }</h2>
                <p class="muted">{ "Recomputed in this browser from the corpus; shading is this feature's activation." }</p>
                { for r.top.iter().map(|e| html! {
                    <ExampleRow layer={view.layer} feature={r.index} example={*e} max={r.histogram.max}
                        document={documents.get(&e.0).cloned().unwrap_or_default()} />
                }) }
            </section>
            <section class="panel">
                <h2>{ "Across the distribution" }</h2>
                { for r.quantiles.iter().enumerate().map(|(i, band)| html! {
                    <>
                        <h3>{ format!("quantiles {:.0}–{:.0}% (activations {:.3}–{:.3})",
                            100.0 * i as f64 / r.quantiles.len() as f64,
                            100.0 * (i + 1) as f64 / r.quantiles.len() as f64, band.low(), band.high()) }</h3>
                        { for band.examples().iter().map(|e| html! {
                            <ExampleRow layer={view.layer} feature={r.index} example={*e} max={r.histogram.max}
                                document={documents.get(&e.0).cloned().unwrap_or_default()} />
                        }) }
                    </>
                }) }
            </section>
            <section class="panel">
                <h2>{ "Logit effects" }</h2>
                <p class="muted">{ "What its decoder direction writes straight to the next-token logits." }</p>
                <div class="columns" id="logits">
                    <div><h3>{ "promotes" }</h3><ol>
                        { for r.logits.top.iter().map(|e| html! { <li><code>{ token(e.0) }</code>{ format!(" +{:.2}", e.1) }</li> }) }
                    </ol></div>
                    <div><h3>{ "suppresses" }</h3><ol>
                        { for r.logits.bottom.iter().map(|e| html! { <li><code>{ token(e.0) }</code>{ format!(" {:.2}", e.1) }</li> }) }
                    </ol></div>
                </div>
            </section>
            <OnPrompt layer={view.layer} feature={r.index} max={r.histogram.max} />
        </>
    }
}

fn evidence(view: &FeatureView) -> Html {
    let p = &view.record.profile;
    let texts: HashMap<u32, String> = view.token_texts.iter().cloned().collect();
    let names: HashMap<&str, &str> = view
        .names
        .iter()
        .map(|(k, n)| (k.as_str(), n.as_str()))
        .collect();
    let name = |key: &str| names.get(key).copied().unwrap_or(key).to_owned();
    html! {
        <table class="evidence" id="evidence">
            <tbody>
                { for p.tag.iter().map(|t| html! {
                    <tr><th>{ "part of speech" }</th>
                        <td>{ format!("{} ({}): precision {:.2}, recall {:.3}", name(&t.key), t.key, t.precision, t.recall) }</td></tr>
                }) }
                { for p.genre.iter().map(|g| html! {
                    <tr><th>{ "genre" }</th>
                        <td>{ format!("{}: precision {:.2}, recall {:.3}", name(&g.key), g.precision, g.recall) }</td></tr>
                }) }
                <tr><th>{ "commonest tags" }</th>
                    <td>{ p.tags.iter().map(|(t, c)| format!("{t} ×{c}")).collect::<Vec<_>>().join(", ") }</td></tr>
                <tr><th>{ "commonest tokens" }</th>
                    <td>{ p.tokens.iter().map(|(t, c)| format!("{:?} ×{c}", texts.get(t).cloned().unwrap_or_default())).collect::<Vec<_>>().join(", ") }</td></tr>
            </tbody>
        </table>
    }
}

/// Properties of [`ExampleRow`].
#[derive(Properties, PartialEq)]
struct ExampleRowProps {
    layer: usize,
    feature: usize,
    example: Example,
    max: f32,
    document: String,
}

/// One corpus example, recomputed by the engine and shaded.
#[component]
fn ExampleRow(props: &ExampleRowProps) -> Html {
    let answer = use_request(Some(LiveExample {
        layer: props.layer,
        feature: props.feature,
        document: props.example.document(),
        position: props.example.position(),
    }));
    let place = format!(
        "{} token {} · {:.2}",
        props.document,
        props.example.position(),
        props.example.activation()
    );
    html! {
        <div class="example">
            <span class="where muted">{ place }</span>
            { AnswerView::new("…").inline().show(&answer, |e| html! {
                <ShadedTokens tokens={e.tokens.iter().map(|t| t.text.clone()).collect::<Vec<_>>()}
                    activations={e.activations.clone()} max={props.max} focus={Some(e.at)} />
            }) }
        </div>
    }
}

/// Properties of [`OnPrompt`].
#[derive(Properties, PartialEq)]
struct OnPromptProps {
    layer: usize,
    feature: usize,
    max: f32,
}

/// The feature's activations on a prompt (the one in the link, or one typed here).
#[component]
fn OnPrompt(props: &OnPromptProps) -> Html {
    let navigator = use_navigator();
    let (query, link_errors) = use_query::<FeatureQuery>();
    let text = query.prompt();
    let answer = use_request(Some(query.on_prompt(props.layer, props.feature)));
    let (layer, index) = (props.layer, props.feature);
    let on_commit = Callback::from(move |value: String| {
        if let Some(navigator) = &navigator {
            let _ = navigator.replace_with_query(
                &Route::Feature { layer, index },
                &FeatureQuery { text: value },
            );
        }
    });
    html! {
        <section class="panel" id="on-prompt">
            <h2>{ "On a prompt" }</h2>
            <TextField class="feature-prompt" rows={2} value={text} {on_commit} label="prompt to show this feature's activations on" />
            <LinkErrors errors={link_errors} />
            { AnswerView::new("…").error_id("on-prompt-error").show(&answer, |pairs| html! {
                <p><ShadedTokens tokens={pairs.iter().map(|p| p.0.clone()).collect::<Vec<_>>()}
                    activations={pairs.iter().map(|p| p.1).collect::<Vec<_>>()} max={props.max} /></p>
            }) }
        </section>
    }
}

/// The view of a feature measured live (a dictionary opened from disk).
#[component]
fn LiveFeaturePage(props: &FeaturePageProps) -> Html {
    let (layer, index) = (props.layer, props.index);
    let answer = use_request(Some(LiveFeatureOf {
        layer,
        feature: index,
    }));
    html! {
        <ReadyGate>
            if answer.failed() {
                <h2>{ format!("Feature {layer}/{index}") }</h2>
            }
            { AnswerView::new("Measuring the feature…").error_id("feature-error").show(&answer, |live| view_live_feature(live)) }
        </ReadyGate>
    }
}

fn view_live_feature(live: &LiveFeature) -> Html {
    let steer = SteerQuery {
        f: format!(
            "{}/{}:c{:.3}",
            live.layer,
            live.feature,
            STEER_MULTIPLE * live.max
        ),
        ..SteerQuery::default()
    };
    let ablate = SteerQuery {
        f: format!("{}/{}:x0", live.layer, live.feature),
        ..SteerQuery::default()
    };
    let share = 100.0 * live.active as f64 / live.positions.max(1) as f64;
    let effects = |list: &[(String, f32)]| {
        html! {
            <ol>{ for list.iter().map(|(t, e)| html! { <li><code>{ format!("{t:?}") }</code>{ format!(" {e:+.2}") }</li> }) }</ol>
        }
    };
    html! {
        <>
            <section class="panel">
                <h2 id="feature-title">{ format!("Feature {}/{}", live.layer, live.feature) }</h2>
                <p class="muted" id="feature-site">{ format!("a dictionary at {}, opened from this computer: no precomputed data or label; measured in this browser", live.site) }</p>
                <p id="feature-frequency">{ format!("fires on {share:.2}% of {} sample tokens ({} texts from the default pack's corpus); strongest {:.3}", live.positions, live.texts, live.max) }</p>
                <p>
                    <CopyLink />{ " " }
                    <Link<Route, SteerQuery> to={Route::Steer} query={Some(steer)}>{ "Steer with it" }</Link<Route, SteerQuery>>
                    { " · " }
                    <Link<Route, SteerQuery> to={Route::Steer} query={Some(ablate)}>{ "Ablate it" }</Link<Route, SteerQuery>>
                </p>
            </section>
            <section class="panel">
                <h2>{ "Activations" }</h2>
                <Histogram counts={live.histogram.clone()} max={live.max} />
                <p class="muted">{ format!("{} bins from 0 to {:.3}; bar heights on a log scale", live.histogram.len(), live.max) }</p>
            </section>
            <section class="panel" id="top-examples">
                <h2>{ "Top examples" }</h2>
                <p class="muted">{ "Its strongest activation in each sample text where it fires, strongest first; shading is this feature's activation." }</p>
                if live.top.is_empty() {
                    <p class="muted">{ "It does not fire on the sample text: try it on a prompt below." }</p>
                }
                { for live.top.iter().map(|e| html! {
                    <div class="example">
                        <span class="where muted">{ format!("text {} · {:.2}", e.window, e.activations[e.at]) }</span>
                        <ShadedTokens tokens={e.tokens.iter().map(|t| t.text.clone()).collect::<Vec<_>>()}
                            activations={e.activations.clone()} max={live.max} focus={Some(e.at)} />
                    </div>
                }) }
            </section>
            if !live.promotes.is_empty() {
                <section class="panel">
                    <h2>{ "Logit effects" }</h2>
                    <p class="muted">{ "What its decoder direction writes straight to the next-token logits (through the final norm's gain)." }</p>
                    <div class="columns" id="logits">
                        <div><h3>{ "promotes" }</h3>{ effects(&live.promotes) }</div>
                        <div><h3>{ "suppresses" }</h3>{ effects(&live.suppresses) }</div>
                    </div>
                </section>
            }
            <OnPrompt layer={live.layer} feature={live.feature} max={live.max} />
        </>
    }
}
