//! Steering without the link syntax: each steered feature as a row (its label, clamp or
//! scale, a slider with the feature's typical and strongest activations marked, presets),
//! and a search to add one by label, tag or token. Every change writes the same
//! `layer/index:c<value>` list the link keeps.

use glassbox_lab::{FeatureSteer, MAX_STEERED_FEATURES, SearchQuery, SteerMode};
use glassbox_web::engine::protocol::{Feature, Search};
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::components::text_field::TextField;
use crate::state::{Answer, Engine, use_request};

/// The activation a feature added from the search starts clamped to, until its record
/// says what is typical.
const START_CLAMP: f32 = 10.0;

/// Hits the search offers.
const OFFERED: usize = 8;

/// The picker's properties.
#[derive(Properties, PartialEq)]
pub(crate) struct SteerPickerProps {
    /// The features steered now.
    pub(crate) features: Vec<FeatureSteer>,
    /// Called with the new list after any change.
    pub(crate) on_change: Callback<Vec<FeatureSteer>>,
}

/// The steered features' rows and the search that adds one.
#[component]
pub(crate) fn SteerPicker(props: &SteerPickerProps) -> Html {
    let rows = props.features.iter().enumerate().map(|(i, steer)| {
        let (features, on_change) = (props.features.clone(), props.on_change.clone());
        let set = Callback::from(move |changed: Option<FeatureSteer>| {
            let mut next = features.clone();
            match changed {
                Some(steer) => next[i] = steer,
                None => {
                    next.remove(i);
                }
            }
            on_change.emit(next);
        });
        html! { <SteerRow key={format!("{}/{}", steer.layer, steer.feature)} steer={*steer} {set} /> }
    });
    let add = {
        let (features, on_change) = (props.features.clone(), props.on_change.clone());
        Callback::from(move |(layer, feature): (usize, usize)| {
            let mut next = features.clone();
            if !next
                .iter()
                .any(|f| f.layer == layer && f.feature == feature)
            {
                next.push(FeatureSteer {
                    layer,
                    feature,
                    mode: SteerMode::Clamp(START_CLAMP),
                });
            }
            on_change.emit(next);
        })
    };
    let full = props.features.len() >= MAX_STEERED_FEATURES;
    html! {
        <div class="steer-picker" id="steer-picker">
            <ul class="steer-rows" id="steer-rows">{ for rows }</ul>
            if full {
                <p class="muted">{ format!("{MAX_STEERED_FEATURES} features are steered, the most at once.") }</p>
            } else {
                <FeatureFinder {add} />
            }
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct SteerRowProps {
    steer: FeatureSteer,
    /// The changed steer, or `None` to remove it.
    set: Callback<Option<FeatureSteer>>,
}

/// One steered feature: its label, the mode, a slider with what is typical marked, presets.
#[component]
fn SteerRow(props: &SteerRowProps) -> Html {
    let FeatureSteer {
        layer,
        feature,
        mode,
    } = props.steer;
    let record = use_request(Some(Feature { layer, feature }));
    // The slider's value while it is dragged; the link changes when it is let go.
    let dragged = use_state(|| None::<f32>);
    {
        let dragged = dragged.clone();
        use_effect_with(mode, move |_| dragged.set(None));
    }
    let (label, typical, strongest) = match &record {
        Answer::Done(view) => (
            view.record.label.clone(),
            Some(view.record.histogram.median()),
            Some(view.record.histogram.max),
        ),
        Answer::Failed(error) => (format!("({error})"), None, None),
        _ => ("…".to_owned(), None, None),
    };
    let (value, top, step) = match mode {
        SteerMode::Clamp(v) => {
            let top = strongest
                .map_or(4.0 * START_CLAMP, |s| (4.0 * s).max(1.0))
                .max(v.abs());
            (v, top, "any")
        }
        SteerMode::Scale(x) => (x, 10.0_f32.max(x), "0.1"),
    };
    let shown = (*dragged).unwrap_or(value);
    let set = props.set.clone();
    let with_value = move |v: f32| match mode {
        SteerMode::Clamp(_) => SteerMode::Clamp(v),
        SteerMode::Scale(_) => SteerMode::Scale(v),
    };
    let steer_to = |mode: SteerMode| {
        let set = set.clone();
        Callback::from(move |_: MouseEvent| {
            set.emit(Some(FeatureSteer {
                layer,
                feature,
                mode,
            }));
        })
    };
    let on_input = {
        let dragged = dragged.clone();
        Callback::from(move |event: InputEvent| {
            let input = event.target_unchecked_into::<HtmlInputElement>();
            dragged.set(input.value().parse().ok());
        })
    };
    let on_release = {
        let set = set.clone();
        Callback::from(move |event: Event| {
            let input = event.target_unchecked_into::<HtmlInputElement>();
            if let Ok(v) = input.value().parse::<f32>() {
                set.emit(Some(FeatureSteer {
                    layer,
                    feature,
                    mode: with_value(v),
                }));
            }
        })
    };
    let on_mode = {
        let set = set.clone();
        Callback::from(move |event: Event| {
            let select = event.target_unchecked_into::<HtmlSelectElement>();
            let mode = if select.value() == "scale" {
                SteerMode::Scale(2.0)
            } else {
                SteerMode::Clamp(typical.map_or(START_CLAMP, |t| 2.0 * t))
            };
            set.emit(Some(FeatureSteer {
                layer,
                feature,
                mode,
            }));
        })
    };
    let marks_id = format!("steer-marks-{layer}-{feature}");
    let clamping = matches!(mode, SteerMode::Clamp(_));
    let presets = strongest.filter(|_| clamping).map(|s| {
        let t = typical.unwrap_or(s);
        html! {
            <span class="steer-presets">
                <button type="button" class="preset" onclick={steer_to(SteerMode::Clamp(round(t)))}>{ "typical" }</button>
                <button type="button" class="preset" onclick={steer_to(SteerMode::Clamp(round(s)))}>{ "strongest seen" }</button>
                <button type="button" class="preset" onclick={steer_to(SteerMode::Clamp(round(2.0 * s)))}>{ "2× strongest" }</button>
                <button type="button" class="preset" onclick={steer_to(SteerMode::Clamp(round(4.0 * s)))}>{ "4× strongest" }</button>
            </span>
        }
    });
    html! {
        <li class="steer-row" data-feature={format!("{layer}/{feature}")}>
            <p><strong>{ format!("{layer}/{feature}") }</strong>{ " " }<span class="label">{ label }</span></p>
            <p class="controls">
                <select aria-label="how to steer" onchange={on_mode}>
                    <option value="clamp" selected={clamping}>{ "clamp to" }</option>
                    <option value="scale" selected={!clamping}>{ "scale by" }</option>
                </select>
                <input type="range" class="steer-slider" aria-label={format!("feature {layer}/{feature}'s value")}
                    min="0" max={format!("{top}")} {step} value={format!("{shown}")}
                    list={marks_id.clone()} oninput={on_input} onchange={on_release} />
                <output class="steer-value">{ format!("{shown:.2}") }</output>
                <datalist id={marks_id}>
                    if clamping {
                        { for typical.map(|t| html! { <option value={format!("{t}")} label="typical" /> }) }
                        { for strongest.map(|s| html! { <option value={format!("{s}")} label="strongest seen" /> }) }
                    } else {
                        <option value="1" label="unchanged" />
                    }
                </datalist>
                <button type="button" class="preset" onclick={steer_to(SteerMode::Scale(0.0))}>{ "ablate" }</button>
                { for presets }
                <button type="button" class="steer-remove" onclick={{ let set = set.clone(); Callback::from(move |_: MouseEvent| set.emit(None)) }}>{ "Remove" }</button>
            </p>
            if clamping {
                { for typical.zip(strongest).map(|(t, s)| html! {
                    <p class="muted steer-typical">{ format!("When it fires in the corpus: typically {t:.2}, at most {s:.2} (marked on the slider).") }</p>
                }) }
            }
        </li>
    }
}

/// `v` to two significant decimals, for a value the link keeps.
fn round(v: f32) -> f32 {
    (v * 100.0).round() / 100.0
}

#[derive(Properties, PartialEq)]
struct FeatureFinderProps {
    add: Callback<(usize, usize)>,
}

/// Finds a feature to steer by label, tag or token, as the search view does.
#[component]
fn FeatureFinder(props: &FeatureFinderProps) -> Html {
    let engine = use_context::<Engine>();
    let tags = engine
        .as_ref()
        .and_then(|e| e.info().map(|i| i.tags.clone()))
        .unwrap_or_default();
    let searched = use_state(String::new);
    let query = (!searched.trim().is_empty()).then(|| SearchQuery::parse(&searched, &tags));
    let hits = use_request(query.map(|query| Search { query }));
    let on_search = {
        let searched = searched.clone();
        Callback::from(move |text: String| searched.set(text))
    };
    let offered = match &hits {
        Answer::Done(hits) if hits.is_empty() => {
            html! { <p class="muted" id="steer-no-hits">{ "No feature matches." }</p> }
        }
        Answer::Done(hits) => html! {
            <ul class="steer-hits" id="steer-hits">
                { for hits.iter().take(OFFERED).map(|hit| {
                    let (add, at) = (props.add.clone(), (hit.layer, hit.feature));
                    html! {
                        <li>
                            <button type="button" class="steer-add" onclick={Callback::from(move |_: MouseEvent| add.emit(at))}>{ "Steer" }</button>
                            { format!(" {}/{} ", hit.layer, hit.feature) }<span class="label">{ hit.label.clone() }</span>
                        </li>
                    }
                }) }
            </ul>
        },
        Answer::Failed(error) => html! { <p class="status-bad">{ error.clone() }</p> },
        _ => html! {},
    };
    html! {
        <div class="steer-finder">
            <label>{ "Add a feature: " }
                <TextField id="steer-search" kind="search" value={(*searched).clone()} on_commit={on_search}
                    placeholder={"a label's words · a tag such as CD · a token in quotes"} />
            </label>
            { offered }
        </div>
    }
}
