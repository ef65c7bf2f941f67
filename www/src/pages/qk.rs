//! Why a head looked where it did (QK attribution, under the attention view's map): the
//! selected cell's score split into query-side × key-side terms (`Lab::qk_attribution`),
//! the largest terms, then the parts of each side that account for most of it, features
//! linking to their views.

use glassbox_lab::{QkAttribution, QkPart};
use glassbox_web::engine::protocol::QkAsk;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::route::Route;
use crate::state::{AnswerView, use_request};

/// Parts listed per side.
const PARTS: usize = 8;

/// Terms listed.
const TERMS: usize = 12;

/// Properties of [`QkPanel`].
#[derive(Properties, PartialEq)]
pub(crate) struct QkPanelProps {
    /// The prompt.
    pub(crate) text: String,
    /// The block.
    pub(crate) layer: usize,
    /// The head.
    pub(crate) head: usize,
    /// The query position.
    pub(crate) query_at: usize,
    /// The key position (`key` is yew's own).
    pub(crate) key_at: usize,
}

/// A part's name, a feature's linking to its view.
fn part_name(part: &QkPart) -> Html {
    match part.feature {
        Some((layer, index)) => html! {
            <Link<Route> to={Route::Feature { layer, index }}>{ part.name.clone() }</Link<Route>>
        },
        None => html! { part.name.clone() },
    }
}

/// One side's parts, largest first.
fn side(title: String, parts: &[QkPart], id: &'static str) -> Html {
    let mut order: Vec<&QkPart> = parts.iter().collect();
    order.sort_by(|a, b| b.total.abs().total_cmp(&a.total.abs()));
    html! {
        <div>
            <h4>{ title }</h4>
            <ol id={id}>
                { for order.into_iter().take(PARTS).map(|p| html! { <li>{ part_name(p) }{ format!(" {:+.3}", p.total) }</li> }) }
            </ol>
        </div>
    }
}

fn view(qk: &QkAttribution) -> Html {
    let token = |i: usize| format!("{:?}", qk.tokens.get(i).cloned().unwrap_or_default());
    html! {
        <>
            <p id="qk-score">{ format!(
                "Score {:.3} (attention {:.3}); its {} terms sum to {:.3}.",
                qk.score, qk.attention, qk.query_parts.len() * qk.key_parts.len(), qk.sum
            ) }</p>
            <table class="qk-terms" id="qk-terms">
                <thead><tr><th>{ format!("at the query {}", token(qk.query)) }</th><th>{ format!("at the key {}", token(qk.key)) }</th><th>{ "term" }</th></tr></thead>
                <tbody>
                    { for qk.terms.iter().take(TERMS).map(|t| html! {
                        <tr>
                            <td>{ qk.query_parts.get(t.query).map(part_name) }</td>
                            <td>{ qk.key_parts.get(t.key).map(part_name) }</td>
                            <td>{ format!("{:+.3}", t.value) }</td>
                        </tr>
                    }) }
                </tbody>
            </table>
            <div class="columns">
                { side(format!("query side ({})", token(qk.query)), &qk.query_parts, "qk-query-parts") }
                { side(format!("key side ({})", token(qk.key)), &qk.key_parts, "qk-key-parts") }
            </div>
        </>
    }
}

/// The selected cell's score, split.
#[component]
pub(crate) fn QkPanel(props: &QkPanelProps) -> Html {
    let answer = use_request(Some(QkAsk {
        text: props.text.clone(),
        layer: props.layer,
        head: props.head,
        query: props.query_at,
        key: props.key_at,
    }));
    html! {
        <section class="qk" id="qk">
            <h3>{ format!("Why head {}.{} looks from token {} to token {}", props.layer, props.head, props.query_at, props.key_at) }</h3>
            <p class="muted">{ "With LayerNorm's scale frozen, the query and the key are affine in the residual stream at their positions, which is a sum of parts: the embeddings, each earlier block's attention output, and each earlier block's MLP output as its transcoder's active features, decoder bias and error. Each query-side part times each key-side part is one term; with the norms' biases and b_Q, b_K as a part of each side, the terms sum to the score exactly." }</p>
            { AnswerView::new("Splitting the score…").error_id("qk-error").show(&answer, |qk| view(qk)) }
        </section>
    }
}
