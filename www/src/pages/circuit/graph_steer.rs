//! Graph steering: the nodes the link sets (`steer=`), each removable, and the prompt
//! continued greedily for `n=` tokens (1 to 20) with them, next to the unsteered text and
//! with the next-token logits that moved most, as Neuronpedia's graph steering shows it.
//! Each edit acts at its position and the model computes the rest, attention free or
//! frozen over the prompt (`attn=frozen`).

use glassbox_lab::{MAX_GRAPH_STEER_TOKENS, NodeEdit, SteerAttention};
use glassbox_web::engine::protocol::SteerNodes;
use glassbox_web::links::parse_node_edits;
use yew::prelude::*;

use super::View;
use crate::components::continuations::continuations;
use crate::components::text_field::TextField;
use crate::state::{AnswerView, use_request};

/// Properties of [`GraphSteering`].
#[derive(Properties, PartialEq)]
pub(crate) struct GraphSteeringProps {
    /// The view (its link holds the nodes set and the tokens).
    pub(crate) view: View,
}

/// How an edit reads in the list.
fn describe(edit: &NodeEdit) -> String {
    match *edit {
        NodeEdit::Feature {
            layer,
            position,
            feature,
            value,
        } => {
            let change = if value == 0.0 {
                "ablated".to_owned()
            } else {
                format!("set to {value}")
            };
            format!("feature {layer}/{feature} at token {position} {change}")
        }
        NodeEdit::Error { layer, position } => {
            format!("block {layer}'s transcoder error at token {position} taken out")
        }
    }
}

/// The graph steering panel; nothing while the link sets no node.
#[component]
pub(crate) fn GraphSteering(props: &GraphSteeringProps) -> Html {
    let view = &props.view;
    let query = &view.query;
    let parsed = parse_node_edits(&query.steer);
    let tokens_ok = (1..=MAX_GRAPH_STEER_TOKENS).contains(&query.n);
    let request = match &parsed {
        Ok(edits) if !edits.is_empty() && tokens_ok => Some(SteerNodes {
            text: query.text.clone(),
            edits: edits.clone(),
            max_tokens: query.n,
            attention: query.attn,
        }),
        _ => None,
    };
    let answer = use_request(request);
    if query.steer.is_empty() {
        return html! {};
    }
    let edits = match parsed {
        Ok(edits) => edits,
        Err(error) => {
            let clear = {
                let view = view.clone();
                Callback::from(move |_: MouseEvent| view.set_steering(&[]))
            };
            return html! {
                <section class="graph-steering" id="graph-steering">
                    <h3>{ "Graph steering" }</h3>
                    <p class="status-bad" role="alert" id="graph-steer-problem">{ format!("The link's graph steering is ignored: {error}") }</p>
                    <button onclick={clear}>{ "Clear it" }</button>
                </section>
            };
        }
    };
    let remove = |i: usize| {
        let (view, edits) = (view.clone(), edits.clone());
        Callback::from(move |_: MouseEvent| {
            let mut kept = edits.clone();
            kept.remove(i);
            view.set_steering(&kept);
        })
    };
    let on_tokens = {
        let view = view.clone();
        Callback::from(move |value: String| {
            let n = value
                .trim()
                .parse::<usize>()
                .unwrap_or(view.query.n)
                .clamp(1, MAX_GRAPH_STEER_TOKENS);
            view.go.emit(crate::route::CircuitQuery {
                n,
                ..view.query.clone()
            });
        })
    };
    let on_freeze = {
        let view = view.clone();
        Callback::from(move |event: Event| {
            let frozen = event
                .target_dyn_into::<web_sys::HtmlInputElement>()
                .is_some_and(|input| input.checked());
            view.go.emit(crate::route::CircuitQuery {
                attn: if frozen {
                    SteerAttention::Frozen
                } else {
                    SteerAttention::Free
                },
                ..view.query.clone()
            });
        })
    };
    let frozen = query.attn == SteerAttention::Frozen;
    let how = if frozen {
        "attention frozen: every head attends over the prompt as it did unsteered, so the edits reach later tokens only along the paths the graph traced; the generated tokens attend freely"
    } else {
        "attention free: the model computes everything after them"
    };
    let prompt = query.text.clone();
    html! {
        <section class="graph-steering" id="graph-steering">
            <h3>{ "Graph steering" }</h3>
            <p class="muted" id="graph-steer-how">{ format!("The prompt continued greedily with these nodes set, each at its own token ({how}), next to the same continuation unsteered.") }</p>
            <label>
                <input type="checkbox" id="graph-steer-freeze" checked={frozen} onchange={on_freeze} />
                { " freeze attention over the prompt (circuit-tracer's freeze_attention)" }
            </label>
            <ul id="graph-steer-nodes">
                { for edits.iter().enumerate().map(|(i, edit)| html! {
                    <li>{ describe(edit) }{ " " }<button class="remove" onclick={remove(i)}>{ "remove" }</button></li>
                }) }
            </ul>
            <label>{ format!("tokens (1 to {MAX_GRAPH_STEER_TOKENS}) ") }
                <TextField id="graph-steer-tokens" value={query.n.to_string()} on_commit={on_tokens} label="tokens to generate" />
            </label>
            if !tokens_ok {
                <p class="status-bad" id="graph-steer-problem">{ format!("The link asks for {} tokens; graph steering generates 1 to {MAX_GRAPH_STEER_TOKENS}.", query.n) }</p>
            }
            { AnswerView::new("Generating…").error_id("graph-steer-error").show(&answer, |result| html! {
                <div id="graph-steer-result">{ continuations(&prompt, result, "graph-") }</div>
            }) }
        </section>
    }
}
