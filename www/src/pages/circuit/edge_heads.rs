//! "Which heads moved this, and why did they look there?": an edge into the selected node
//! from an earlier token (`heads=` its source) split by the attention heads that carry it
//! in one hop (`Lab::edge_heads`), the rest of it in paths of two hops or more; below, the
//! QK attribution of the chosen head (`head=`, the top carrier by default) at the edge's
//! query and key.

use glassbox_lab::{EdgeHeads, HeadRoute};
use glassbox_web::engine::protocol::EdgeAsk;
use yew::prelude::*;

use super::View;
use crate::pages::qk::QkPanel;
use crate::state::{AnswerView, use_request};

/// Properties of [`EdgeHeadsPanel`].
#[derive(Properties, PartialEq)]
pub(crate) struct EdgeHeadsProps {
    /// The view (its link holds the edge's source and the chosen head).
    pub(crate) view: View,
    /// The selected node: the edge's target.
    pub(crate) target: String,
}

/// The head `block.head` names, if it is one of `split`'s.
fn chosen<'a>(split: &'a EdgeHeads, name: &str) -> Option<&'a HeadRoute> {
    let (layer, head) = name.split_once('.')?;
    let (layer, head): (usize, usize) = (layer.parse().ok()?, head.parse().ok()?);
    split
        .heads
        .iter()
        .find(|h| h.layer == layer && h.head == head)
}

/// The split edge: its total, the heads, and the chosen head's QK attribution.
fn show(split: &EdgeHeads, view: &View) -> Html {
    let rest = split.edge - split.one_hop;
    let pick = |route: &HeadRoute| {
        let (view, source, name) = (
            view.clone(),
            split.source.clone(),
            format!("{}.{}", route.layer, route.head),
        );
        Callback::from(move |_: MouseEvent| view.split_edge(&source, &name))
    };
    let current = chosen(split, &view.query.head).or_else(|| split.heads.first());
    let share = |w: f32| {
        if split.edge == 0.0 {
            String::new()
        } else {
            format!("{:.0}%", 100.0 * w / split.edge)
        }
    };
    html! {
        <>
            <p id="edge-heads-total">{ format!(
                "The edge from {} (token {}) to {} (token {}) is {:+.3}: heads carry {:+.3} of it in one hop, paths of two hops or more (through another position first) the other {:+.3}.",
                split.source, split.key, split.target, split.query, split.edge, split.one_hop, rest
            ) }</p>
            <table id="edge-heads">
                <thead><tr><th>{ "head" }</th><th>{ "attention" }</th><th>{ "carries" }</th><th>{ "of the edge" }</th><th></th></tr></thead>
                <tbody>
                    { for split.heads.iter().map(|route| {
                        let is_current = current.is_some_and(|c| c == route);
                        html! {
                            <tr class={classes!(is_current.then_some("selected"))}>
                                <td>{ format!("{}.{}", route.layer, route.head) }</td>
                                <td>{ format!("{:.3}", route.attention) }</td>
                                <td>{ format!("{:+.3}", route.weight) }</td>
                                <td>{ share(route.weight) }</td>
                                <td><button class="why-here" onclick={pick(route)} disabled={is_current}>{ "why did it look here?" }</button></td>
                            </tr>
                        }
                    }) }
                </tbody>
            </table>
            { for current.map(|route| html! {
                <QkPanel text={view.query.text.clone()} layer={route.layer} head={route.head} query_at={split.query} key_at={split.key} />
            }) }
        </>
    }
}

/// The edge from the link's `heads=` into `target`, split; nothing while the link names
/// none.
#[component]
pub(crate) fn EdgeHeadsPanel(props: &EdgeHeadsProps) -> Html {
    let view = &props.view;
    let query = &view.query;
    let request = (!query.heads.is_empty()).then(|| EdgeAsk {
        text: query.text.clone(),
        contrast: query.contrast(),
        source: query.heads.clone(),
        target: props.target.clone(),
    });
    let answer = use_request(request);
    if query.heads.is_empty() {
        return html! {};
    }
    let close = {
        let view = view.clone();
        Callback::from(move |_: MouseEvent| view.split_edge("", ""))
    };
    html! {
        <section class="edge-heads" id="edge-heads-panel">
            <h4>{ format!("Which heads carry {} → {}", query.heads, props.target) }</h4>
            <p class="muted">{ "With attention patterns and norm scales frozen, a node's write at an earlier token reaches this one only through attention. One hop through head h of a block between them carries attention(h) × what h's values and output make of the write, read in the target's direction; between adjacent blocks that is the whole edge." }</p>
            <button id="edge-heads-close" onclick={close}>{ "Close" }</button>
            { AnswerView::new("Splitting the edge…").error_id("edge-heads-error").show(&answer, |split| show(split, view)) }
        </section>
    }
}
