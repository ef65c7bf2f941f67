//! Interventions on one node: ablate or clamp a feature at its position, or take a
//! transcoder's error out; each logit's change as the graph predicts it, in the model
//! with attention patterns and norm scales frozen, and in the model itself, side by side.

use glassbox_lab::{Contrast, NodeEdit};
use glassbox_web::engine::protocol::Intervene;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::state::{AnswerView, use_request};

/// The node an intervention acts on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum NodeTarget {
    /// A feature active at a position.
    Feature {
        layer: usize,
        feature: usize,
        position: usize,
        activation: f32,
    },
    /// A transcoder's error at a position.
    Error { layer: usize, position: usize },
}

/// Properties of [`Intervention`].
#[derive(Properties, PartialEq)]
pub(crate) struct InterventionProps {
    /// The prompt.
    pub(crate) text: String,
    /// The logit difference the graph attributes, if any.
    pub(crate) contrast: Option<Contrast>,
    /// The node.
    pub(crate) target: NodeTarget,
    /// Adds an edit of the node to the graph steering.
    pub(crate) on_steer: Callback<NodeEdit>,
}

/// The intervention buttons and their result.
#[component]
pub(crate) fn Intervention(props: &InterventionProps) -> Html {
    let asked = use_state(|| None::<NodeEdit>);
    let clamp_to = use_state(|| match props.target {
        NodeTarget::Feature { activation, .. } => format!("{:.3}", 2.0 * activation),
        NodeTarget::Error { .. } => String::new(),
    });
    let request = (*asked).map(|edit| Intervene {
        text: props.text.clone(),
        contrast: props.contrast.clone(),
        edit,
    });
    let answer = use_request(request);
    let ask = |edit: NodeEdit| {
        let asked = asked.clone();
        Callback::from(move |_: MouseEvent| asked.set(Some(edit)))
    };
    let steer = |edit: NodeEdit| {
        let on_steer = props.on_steer.clone();
        Callback::from(move |_: MouseEvent| on_steer.emit(edit))
    };
    let controls = match props.target {
        NodeTarget::Feature {
            layer,
            feature,
            position,
            ..
        } => {
            let edit = |value| NodeEdit::Feature {
                layer,
                position,
                feature,
                value,
            };
            let value = clamp_to.parse::<f32>().ok().filter(|v| v.is_finite());
            let on_value = {
                let clamp_to = clamp_to.clone();
                Callback::from(move |event: InputEvent| {
                    clamp_to.set(event.target_unchecked_into::<HtmlInputElement>().value());
                })
            };
            html! {
                <>
                <p>
                    <button id="ablate-node" onclick={ask(edit(0.0))}>{ "Ablate here" }</button>
                    { " or " }
                    <label>{ "clamp to " }
                        <input id="clamp-value" type="number" step="any" value={(*clamp_to).clone()} oninput={on_value} />
                    </label>
                    <button id="clamp-node" disabled={value.is_none()} onclick={ask(edit(value.unwrap_or(0.0)))}>{ "Clamp" }</button>
                    <span class="muted">{ " sets this feature's activation at this position and writes the difference along its decoder." }</span>
                </p>
                <p>
                    { "Graph steering: " }
                    <button id="steer-ablated" onclick={steer(edit(0.0))}>{ "Add ablated" }</button>
                    { " " }
                    <button id="steer-clamped" disabled={value.is_none()} onclick={steer(edit(value.unwrap_or(0.0)))}>{ "Add clamped" }</button>
                    <span class="muted">{ " and continue the prompt with it (below the graph)." }</span>
                </p>
                </>
            }
        }
        NodeTarget::Error { layer, position } => html! {
            <p>
                <button id="ablate-node" onclick={ask(NodeEdit::Error { layer, position })}>{ "Take the error out" }</button>
                <span class="muted">{ " removes what the transcoder does not explain here." }</span>
                { " " }
                <button id="steer-error" onclick={steer(NodeEdit::Error { layer, position })}>{ "Add to graph steering" }</button>
            </p>
        },
    };
    let result = AnswerView::new("Running the model…")
        .error_id("intervention-error")
        .show(&answer, |changes| {
            html! {
            <table class="ablation" id="intervention">
                <thead><tr><th>{ "logit" }</th><th>{ "graph (direct effect)" }</th><th>{ "frozen attention" }</th><th>{ "model" }</th></tr></thead>
                <tbody>
                    { for changes.iter().map(|c| html! {
                        <tr><td><code>{ match &c.versus { None => format!("{:?}", c.text), Some((_, v)) => format!("{:?} rather than {v:?}", c.text) } }</code></td><td>{ format!("{:+.3}", c.predicted) }</td><td>{ format!("{:+.3}", c.frozen) }</td><td>{ format!("{:+.3}", c.actual) }</td></tr>
                    }) }
                </tbody>
            </table>
            }
        });
    html! {
        <div class="intervention">
            { controls }
            <p class="muted">{ "Each logit's change: as the graph predicts it (the node's direct effect, everything else frozen), in the model with attention patterns and LayerNorm scales frozen (later MLPs live), and in the model itself." }</p>
            { result }
        </div>
    }
}
