//! The prompt view: type text; see its tokens, the next-token predictions, and each
//! token's strongest features at every block.

use glassbox_lab::PromptAnalysis;
use glassbox_web::engine::protocol::FeatureData;
use web_sys::HtmlTextAreaElement;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::components::copy_link::CopyLink;
use crate::components::status::ReadyGate;
use crate::route::{FeatureQuery, PromptQuery, Route};
use crate::state::{AnswerView, LinkErrors, use_layout, use_query, use_request};

/// Milliseconds of quiet typing before the prompt is analysed.
const DEBOUNCE_MS: u32 = 300;

pub(crate) use glassbox_web::views::EXAMPLE_PROMPT;

/// The prompt view.
#[component]
pub(crate) fn PromptPage() -> Html {
    let navigator = use_navigator();
    let (query, link_errors) = use_query::<PromptQuery>();
    let text = query.prompt();
    let draft = use_state(|| text.clone());
    let timer = use_mut_ref(|| None::<gloo_timers::callback::Timeout>);
    {
        // A link or back/forward changed the prompt: show it.
        let draft = draft.clone();
        use_effect_with(text.clone(), move |text| draft.set(text.clone()));
    }
    let oninput = {
        let (draft, navigator) = (draft.clone(), navigator.clone());
        Callback::from(move |event: InputEvent| {
            let value = event.target_unchecked_into::<HtmlTextAreaElement>().value();
            draft.set(value.clone());
            let navigator = navigator.clone();
            *timer.borrow_mut() = Some(gloo_timers::callback::Timeout::new(
                DEBOUNCE_MS,
                move || {
                    if let Some(navigator) = navigator {
                        let _ = navigator.replace_with_query(
                            &Route::Prompt,
                            &PromptQuery {
                                text: value,
                                pin: None,
                            },
                        );
                    }
                },
            ));
        })
    };
    let answer = use_request(Some(query.analyze()));
    let layout = use_layout();
    let info = layout.as_deref();
    let state = info.map(|i| &i.features);
    let notes = Notes {
        missing: no_features(state),
        pending: block_pending(state),
        no_predictions: no_predictions(state),
    };
    let names: Vec<String> = info.map_or_else(Vec::new, |info| {
        (0..info.dictionaries.len())
            .map(|l| info.dictionary_name(l))
            .collect()
    });
    let pin = {
        let (navigator, text) = (navigator.clone(), text.clone());
        Callback::from(move |position: usize| {
            if let Some(navigator) = &navigator {
                let _ = navigator.replace_with_query(
                    &Route::Prompt,
                    &PromptQuery {
                        text: text.clone(),
                        pin: Some(position),
                    },
                );
            }
        })
    };
    html! {
        <ReadyGate>
            <section class="panel">
                <h2>{ "Prompt" }</h2>
                <label for="prompt" class="muted">{ "Type anything; the model reads it as you type." }</label>
                <textarea id="prompt" rows="3" value={(*draft).clone()} {oninput} spellcheck="false" />
                <p><CopyLink /></p>
                <LinkErrors errors={link_errors} />
            </section>
            { AnswerView::new("Running the model…").error_id("prompt-error").show(&answer, |analysis| view_analysis(analysis, &names, &notes, &text, query.pin, &pin)) }
        </ReadyGate>
    }
}

/// Why parts of a prompt's analysis are not there yet (or will not be).
struct Notes {
    /// Why a token has no features.
    missing: String,
    /// Why a block has none while others have.
    pending: &'static str,
    /// Why there are no predictions.
    no_predictions: &'static str,
}

/// The analysis; `notes` say what is missing and why (`names`: the blocks').
fn view_analysis(
    analysis: &PromptAnalysis,
    names: &[String],
    notes: &Notes,
    text: &str,
    pin: Option<usize>,
    on_pin: &Callback<usize>,
) -> Html {
    let n = analysis.tokens.len();
    let pinned = pin.filter(|&p| p < n).unwrap_or(n.saturating_sub(1));
    html! {
        <>
            <section class="panel">
                <h2>{ format!("{n} tokens") }</h2>
                <div class="tokens" id="tokens">
                    { for analysis.tokens.iter().enumerate().map(|(i, t)| {
                        let on_pin = on_pin.clone();
                        let class = if i == pinned { "token pinned" } else { "token" };
                        html! {
                            <button {class} onclick={Callback::from(move |_| on_pin.emit(i))}
                                title={format!("token {i}, id {}", t.id)} aria-pressed={(i == pinned).to_string()}>
                                { t.text.replace(' ', "␣").replace('\n', "⏎") }
                            </button>
                        }
                    }) }
                </div>
            </section>
            <section class="panel">
                <h2>{ "Next token" }</h2>
                if analysis.predictions.is_empty() {
                    <p class="muted" id="predictions-waiting">{ notes.no_predictions }</p>
                }
                <table id="predictions">
                    <thead><tr><th>{ "token" }</th><th>{ "probability" }</th></tr></thead>
                    <tbody>
                        { for analysis.predictions.iter().map(|p| html! {
                            <tr>
                                <td><code>{ format!("{:?}", p.text) }</code></td>
                                <td>
                                    <span class="bar" style={format!("--w:{:.1}%", 100.0 * p.probability)}></span>
                                    { format!("{:.1}%", 100.0 * p.probability) }
                                </td>
                            </tr>
                        }) }
                    </tbody>
                </table>
            </section>
            <section class="panel">
                <h2>{ format!("Features at {:?} (token {pinned})", analysis.tokens.get(pinned).map(|t| t.text.as_str()).unwrap_or_default()) }</h2>
                if analysis.features.get(pinned).is_none_or(Vec::is_empty) {
                    <p class="muted" id="no-features">{ notes.missing.clone() }</p>
                } else {
                    <p class="muted">{ "Click a token above to pin it; click a feature to open it." }</p>
                }
                <div class="layers" id="features">
                    { for analysis.features.get(pinned).into_iter().flatten().enumerate().map(|(layer, features)| html! {
                        <div class="layer">
                            <h3>{ names.get(layer).cloned().unwrap_or_else(|| format!("block {layer}")) }</h3>
                            <ol>
                                { for features.iter().map(|f| html! {
                                    <li>
                                        <Link<Route, FeatureQuery>
                                            to={Route::Feature { layer: f.layer, index: f.feature }}
                                            query={Some(FeatureQuery { text: text.to_owned() })}>
                                            { format!("#{} ", f.feature) }
                                        </Link<Route, FeatureQuery>>
                                        <span class="label">{ f.label.clone() }</span>
                                        <span class="muted">{ format!(" {:.2}", f.activation) }</span>
                                    </li>
                                }) }
                            </ol>
                        </div>
                    }) }
                    // The pack's blocks whose features are still coming (or did not come).
                    if analysis.features.get(pinned).is_some_and(|f| !f.is_empty()) {
                        { for names.iter().skip(analysis.features.get(pinned).map_or(0, Vec::len)).map(|name| html! {
                            <div class="layer pending">
                                <h3>{ name.clone() }</h3>
                                <p class="muted">{ notes.pending }</p>
                            </div>
                        }) }
                    }
                </div>
            </section>
        </>
    }
}

/// Why a prompt shows no features: the pack's are still loading, did not load, or the
/// model has none.
fn no_features(state: Option<&FeatureData>) -> String {
    match state {
        Some(
            FeatureData::Loading | FeatureData::Partial { .. } | FeatureData::FirstBlocks { .. },
        ) => "The features are loading \
             after the model (the line at the top says how far); they appear here when they \
             arrive."
            .to_owned(),
        Some(FeatureData::Failed(error)) => format!(
            "The pack's features did not load ({error}); predictions, attention and the logit \
             lens work. Reloading the page tries again."
        ),
        _ => "This model has no feature dictionaries (it was opened on its own, without a \
              pack): predictions, attention, the logit lens and generation work; features need \
              a pack that has them, or SAELens dictionaries opened beside the model."
            .to_owned(),
    }
}

/// Why a prompt has no predictions: they need every block of the model, and only its
/// first blocks are in (a model split over files), or the rest did not load.
fn no_predictions(state: Option<&FeatureData>) -> &'static str {
    match state {
        Some(FeatureData::Failed(_)) => {
            "The predictions need every block of the model, and its later blocks did not \
             load (the line at the top says why). Reloading the page tries again."
        }
        _ => {
            "The predictions need every block of the model; its later blocks are still \
             arriving (the line at the top says how far). The first blocks' features below \
             are already the model's."
        }
    }
}

/// Why a block shows no features while earlier blocks do: its transcoder is still coming,
/// or did not come.
fn block_pending(state: Option<&FeatureData>) -> &'static str {
    match state {
        Some(FeatureData::Failed(_)) => "Did not load (the line at the top says why).",
        _ => "Loading; its features appear here when its transcoder arrives.",
    }
}
