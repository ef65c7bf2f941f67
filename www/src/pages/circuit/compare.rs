//! Two prompts side by side (`vs=`): the second prompt's graph computed with the same
//! thresholds (and logit difference, if any), its features and errors matched to the
//! first's by block, feature and position from the end (`glassbox_lab::compare_graphs`),
//! and what appears, vanishes or flips the sign of its direct effect on the output listed,
//! most influential first; a link asks why the first prompt's likeliest token rather than
//! the second's.

use glassbox_lab::{Change, GraphFile, LOGIT, NodeMatch, Side, compare_graphs};
use glassbox_web::engine::protocol::Circuit;
use yew::prelude::*;

use super::View;
use crate::route::CircuitQuery;
use crate::state::{Answer, AnswerView, Shared, use_request};

/// The most rows listed.
const ROWS: usize = 40;

/// Properties of [`Comparison`].
#[derive(Properties, PartialEq)]
pub(crate) struct ComparisonProps {
    /// The first prompt's graph.
    pub(crate) graph: Shared<GraphFile>,
    /// The view (its link's `vs` is the second prompt).
    pub(crate) view: View,
}

/// The likeliest next token of a graph (its target logit), as the graph writes it.
fn likeliest(graph: &GraphFile) -> Option<String> {
    let node = graph
        .nodes
        .iter()
        .find(|n| n.feature_type == LOGIT && n.is_target_logit)?;
    // Logit labels read `Output " were" (p=0.210)`: the token is the quoted part.
    let (_, rest) = node.clerp.split_once("Output ")?;
    let quoted = rest.split(" (").next()?;
    serde_json::from_str::<String>(quoted).ok()
}

/// The token at `from_end` positions before the last of `graph`'s prompt.
fn token(graph: &GraphFile, from_end: usize) -> String {
    let tokens = &graph.metadata.prompt_tokens;
    tokens
        .len()
        .checked_sub(from_end + 1)
        .and_then(|i| tokens.get(i))
        .map_or_else(String::new, |t| format!("{t:?}"))
}

fn side(side: Option<&Side>) -> Html {
    match side {
        Some(s) => html! {
            <td title={s.clerp.clone()}>{ format!("{} · {:+.3}", s.activation.map_or_else(|| "—".to_owned(), |a| format!("{a:.2}")), s.output_effect) }</td>
        },
        None => html! { <td class="muted">{ "absent" }</td> },
    }
}

fn change_word(change: Change) -> &'static str {
    match change {
        Change::Appears => "appears",
        Change::Vanishes => "vanishes",
        Change::FlipsSign => "flips sign",
        Change::Stays => "stays",
    }
}

/// The comparison panel; nothing while the link names no second prompt.
#[component]
pub(crate) fn Comparison(props: &ComparisonProps) -> Html {
    let query = &props.view.query;
    let request = (!query.vs.trim().is_empty()).then(|| Circuit {
        text: query.vs.clone(),
        contrast: query.contrast(),
        nodes: query.nodes,
        edges: query.edges,
    });
    let answer = use_request(request);
    let matches = use_memo(
        (props.graph.clone(), answer.clone()),
        |(first, answer)| match answer {
            Answer::Done(second) => compare_graphs(first, second),
            _ => Vec::new(),
        },
    );
    if query.vs.trim().is_empty() {
        return html! {};
    }
    let first = &props.graph;
    let view = props.view.clone();
    let body = AnswerView::new("Computing the second graph…")
        .error_id("compare-error")
        .show(&answer, |second| {
            let count = |c: Change| matches.iter().filter(|m| m.change() == c).count();
            let shown: Vec<&NodeMatch> = matches
                .iter()
                .filter(|m| m.change() != Change::Stays)
                .take(ROWS)
                .collect();
            let why = likeliest(first)
                .zip(likeliest(second))
                .filter(|(a, b)| a != b)
                .map(|(a, b)| {
                    let go = {
                        let (view, b) = (view.clone(), b.clone());
                        Callback::from(move |_: MouseEvent| {
                            view.go.emit(CircuitQuery {
                                versus: b.clone(),
                                at: String::new(),
                                ..view.query.clone()
                            });
                        })
                    };
                    html! {
                        <p><button id="compare-versus" onclick={go}>{ format!("Why {a:?} rather than {b:?} here?") }</button>
                            <span class="muted">{ " attributes the first prompt's logit difference of the two prompts' likeliest tokens." }</span></p>
                    }
                });
            html! {
                <>
                    <p id="compare-counts">{ format!(
                        "{} appear, {} vanish, {} flip the sign of their direct effect on the output, {} stay ({} nodes in the second graph).",
                        count(Change::Appears), count(Change::Vanishes), count(Change::FlipsSign), count(Change::Stays), second.nodes.len()
                    ) }</p>
                    { for why }
                    <table class="compare" id="compare-table">
                        <thead><tr><th>{ "node" }</th><th>{ "token (first · second)" }</th><th>{ "first: activation · output effect" }</th><th>{ "second" }</th><th>{ "change" }</th></tr></thead>
                        <tbody>
                            { for shown.iter().map(|m| {
                                let name = match m.feature {
                                    Some(f) => format!("{}/{f}", m.layer),
                                    None => format!("error of block {}", m.layer),
                                };
                                let select = m.first.as_ref().map(|s| {
                                    let (view, id) = (view.clone(), s.node_id.clone());
                                    Callback::from(move |_: MouseEvent| view.select(&id))
                                });
                                html! {
                                    <tr class={change_word(m.change()).replace(' ', "-")}>
                                        <td>{ match select {
                                            Some(onclick) => html! { <button class="link" {onclick}>{ name }</button> },
                                            None => html! { name },
                                        } }</td>
                                        <td>{ format!("{} · {}", token(first, m.from_end), token(second, m.from_end)) }</td>
                                        { side(m.first.as_ref()) }
                                        { side(m.second.as_ref()) }
                                        <td>{ change_word(m.change()) }</td>
                                    </tr>
                                }
                            }) }
                        </tbody>
                    </table>
                </>
            }
        });
    html! {
        <section class="comparison" id="comparison">
            <h3>{ format!("Beside “{}”", query.vs) }</h3>
            <p class="muted">{ "The second prompt's graph, pruned alike; its features and transcoder errors matched to this graph's by block, feature and token position counted from the end (the last tokens line up). A node's output effect is the sum of its edges into the logits; the most influential first." }</p>
            { body }
        </section>
    }
}
