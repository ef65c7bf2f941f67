//! The attention view: one block's attention patterns on a prompt, every head as a small
//! map and the chosen head large, each cell how much a query token (row) attends to a key
//! token (column).

use glassbox_lab::{AttentionPatterns, HeadScoreKind};
use yew::prelude::*;
use yew_router::prelude::*;

use crate::components::copy_link::CopyLink;
use crate::components::status::ReadyGate;
use crate::components::text_field::TextField;
use crate::pages::qk::QkPanel;
use crate::route::{AttentionQuery, Route};
use crate::state::{AnswerView, LinkErrors, use_layout, use_query, use_request};

/// Side of a cell in the large map, in pixels.
const CELL: f64 = 18.0;
/// Side of the small maps, in pixels.
const THUMB: f64 = 120.0;
/// Room for the token labels of the large map.
const LABELS: f64 = 90.0;

/// The attention view.
#[component]
pub(crate) fn AttentionPage() -> Html {
    let navigator = use_navigator();
    let (query, link_errors) = use_query::<AttentionQuery>();
    let query = query.shown();
    let (n_layer, n_head) = use_layout().map_or((0, 0), |info| (info.n_layer, info.n_head));
    let answer = use_request(Some(query.attention()));
    let go = {
        let navigator = navigator.clone();
        Callback::from(move |q: AttentionQuery| {
            if let Some(navigator) = &navigator {
                let _ = navigator.replace_with_query(&Route::Attention, &q);
            }
        })
    };
    let on_text = {
        let (go, query) = (go.clone(), query.clone());
        Callback::from(move |text: String| {
            go.emit(AttentionQuery {
                text,
                ..query.clone()
            });
        })
    };
    let pick = |layer: usize, head: usize| {
        let (go, query) = (go.clone(), query.clone());
        Callback::from(move |_: MouseEvent| {
            go.emit(AttentionQuery {
                layer,
                head,
                ..query.clone()
            });
        })
    };
    let blocks = (0..n_layer).map(|l| {
        let class = if l == query.layer { "button selected" } else { "button" };
        html! { <button class={class} id={format!("block-{l}")} onclick={pick(l, query.head.min(n_head.saturating_sub(1)))}>{ format!("block {l}") }</button> }
    });
    let body = AnswerView::new("Running the model…")
        .error_id("attention-error")
        .show(&answer, |patterns| {
            let thumbs = patterns.heads.iter().enumerate().map(|(h, _)| {
                let class = if h == query.head { "thumb selected" } else { "thumb" };
                html! {
                    <button class={class} id={format!("head-{h}")} onclick={pick(query.layer, h)} aria-label={format!("head {h}")}>
                        { Map { patterns, head: h, cell: THUMB / patterns.tokens.len().max(1) as f64, labels: 0.0 }.draw(None) }
                        <span>{ format!("head {h}") }</span>
                        <span class="muted head-score">{ format!("prev {:.2}", patterns.scores.get(h).map_or(0.0, |s| s.previous_token)) }</span>
                    </button>
                }
            });
            let head = query.head.min(patterns.heads.len().saturating_sub(1));
            let on_cell = {
                let (go, query) = (go.clone(), query.clone());
                Callback::from(move |(q, k): (usize, usize)| {
                    go.emit(AttentionQuery {
                        qk: format!("{q}_{k}"),
                        ..query.clone()
                    });
                })
            };
            let map = Map {
                patterns,
                head,
                cell: CELL,
                labels: LABELS,
            };
            html! {
                <>
                    <div class="thumbs">{ for thumbs }</div>
                    <h3 id="attention-title">{ format!("Block {}, head {head}: rows attend to columns", patterns.layer) }</h3>
                    { scores_line(patterns, head) }
                    <p class="muted">{ "Click a cell to see why the head looked there: its score split into what the query's and the key's residual streams hold." }</p>
                    <div class="graph-scroll">{ map.draw(Some((&on_cell, query.cell()))) }</div>
                    if let Some((q, k)) = query.cell() {
                        <QkPanel text={query.text.clone()} layer={patterns.layer} {head} query_at={q} key_at={k} />
                    }
                </>
            }
        });
    html! {
        <ReadyGate>
            <section class="panel">
                <h2>{ "Attention" }</h2>
                <p class="muted">{ "How much each token (row) attends to each earlier token (column), per head of one block: the patterns the attribution graph freezes." }</p>
                <TextField id="attention-prompt" value={query.text.clone()} on_commit={on_text} label="prompt" />
                <div class="controls">{ for blocks }<CopyLink /></div>
                <LinkErrors errors={link_errors} />
                { body }
            </section>
        </ReadyGate>
    }
}

/// Head `head`'s scores on the prompt beside chance level (a head spreading its attention
/// evenly), a dash where the prompt defines none (no token repeats).
fn scores_line(patterns: &AttentionPatterns, head: usize) -> Html {
    let Some(scores) = patterns.scores.get(head) else {
        return html! {};
    };
    let kinds = [
        HeadScoreKind::PreviousToken,
        HeadScoreKind::DuplicateToken,
        HeadScoreKind::Induction,
    ];
    let parts = kinds.map(|kind| match (scores.get(kind), patterns.chance.get(kind)) {
        (Some(value), Some(chance)) => {
            html! { <span class="score">{ format!("{} {value:.3} ", kind.name()) }<span class="muted">{ format!("(chance {chance:.3})") }</span></span> }
        }
        _ => html! { <span class="score">{ format!("{} —", kind.name()) }</span> },
    });
    html! {
        <p id="head-scores" title="Mean attention: from each token to the one before it (previous-token); from each repeated token to its earlier copy (duplicate-token) and to the token after that copy (induction). Chance is what a head spreading its attention evenly would score on this prompt.">
            { format!("Head {}.{head} on this prompt: ", patterns.layer) }
            { for parts.into_iter().enumerate().map(|(i, part)| html! { <>{ if i > 0 { " · " } else { "" } }{ part }</> }) }
        </p>
    }
}

/// Head `head`'s pattern as a grid of `cell`-pixel squares, with token labels in a
/// margin of `labels` pixels (none if 0).
struct Map<'a> {
    patterns: &'a AttentionPatterns,
    head: usize,
    cell: f64,
    labels: f64,
}

/// A cell of a map: `(query, key)`.
type Cell = (usize, usize);

/// What clicking the large map does: the callback a cell's click emits, and the cell
/// selected now.
type Clicks<'a> = (&'a Callback<Cell>, Option<Cell>);

impl Map<'_> {
    /// The map; where `clicks` is given, clicking a cell emits its `(query, key)` and the
    /// selected cell is outlined.
    fn draw(&self, clicks: Option<Clicks<'_>>) -> Html {
        let Self {
            patterns,
            head,
            cell,
            labels,
        } = *self;
        let len = patterns.tokens.len();
        let Some(values) = patterns.heads.get(head) else {
            return html! {};
        };
        let side = labels + cell * len as f64;
        let cells = (0..len).flat_map(|q| (0..=q).map(move |k| (q, k))).map(|(q, k)| {
            let p = values.get(q * len + k).copied().unwrap_or(0.0);
            let title = (labels > 0.0).then(|| {
                html! { <title>{ format!("{:?} → {:?}: {p:.3}", patterns.tokens[q], patterns.tokens[k]) }</title> }
            });
            let onclick = clicks.map(|(on_cell, _)| {
                let on_cell = on_cell.clone();
                Callback::from(move |_: MouseEvent| on_cell.emit((q, k)))
            });
            let selected = clicks.is_some_and(|(_, at)| at == Some((q, k)));
            html! {
                <rect class={if selected { "cell selected" } else { "cell" }} x={format!("{:.1}", labels + cell * k as f64)} y={format!("{:.1}", labels + cell * q as f64)}
                    width={format!("{cell:.2}")} height={format!("{cell:.2}")} style={format!("--a:{:.3}", p.clamp(0.0, 1.0))}
                    data-cell={format!("{q}_{k}")} {onclick}>
                    { for title }
                </rect>
            }
        });
        let axis = (labels > 0.0).then(|| {
            let rows = patterns.tokens.iter().enumerate().map(|(i, t)| {
                let y = labels + cell * (i as f64 + 0.7);
                html! { <text class="axis" x={format!("{:.1}", labels - 4.0)} y={format!("{y:.1}")} text-anchor="end">{ format!("{t:?}") }</text> }
            });
            let columns = patterns.tokens.iter().enumerate().map(|(i, t)| {
                let x = labels + cell * (i as f64 + 0.7);
                html! { <text class="axis" x={format!("{x:.1}")} y={format!("{:.1}", labels - 4.0)} transform={format!("rotate(-60 {x:.1} {:.1})", labels - 4.0)}>{ format!("{t:?}") }</text> }
            });
            html! { <>{ for rows }{ for columns }</> }
        });
        html! {
            <svg class="attention" role="img" width={format!("{side:.0}")} height={format!("{side:.0}")}
                aria-label={format!("attention pattern of head {head}")} data-head={head.to_string()}>
                { for cells }
                { for axis }
            </svg>
        }
    }
}
