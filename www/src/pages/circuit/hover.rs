//! The card a hovered feature node shows: its label, how often it fires, and its top
//! examples from the corpus.

use glassbox_web::engine::protocol::Feature;
use yew::prelude::*;

use crate::state::{AnswerView, use_request};

/// Properties of [`HoverCard`].
#[derive(Properties, PartialEq)]
pub(crate) struct HoverCardProps {
    /// The block.
    pub(crate) layer: usize,
    /// The feature.
    pub(crate) feature: usize,
    /// The node's id.
    pub(crate) id: String,
}

/// A feature's label and top examples.
#[component]
pub(crate) fn HoverCard(props: &HoverCardProps) -> Html {
    let answer = use_request(Some(Feature {
        layer: props.layer,
        feature: props.feature,
    }));
    let body = AnswerView::new("Loading…").show(&answer, |view| {
        html! {
            <>
                <p><strong>{ view.record.label.clone() }</strong></p>
                <p class="muted">{ format!("fires on {:.2}% of tokens", 100.0 * view.record.frequency) }</p>
                <ol class="snippets">
                    { for view.snippets.iter().map(|s| html! {
                        <li>
                            <span>{ s.before.clone() }</span>
                            <mark>{ s.token.clone() }</mark>
                            <span>{ s.after.clone() }</span>
                            <span class="muted">{ format!(" ({:.2})", s.activation) }</span>
                        </li>
                    }) }
                </ol>
            </>
        }
    });
    html! {
        <aside class="hover-card" id="hover-card" aria-live="polite">
            <h4>{ format!("{} · feature {}/{}", props.id, props.layer, props.feature) }</h4>
            { body }
        </aside>
    }
}
