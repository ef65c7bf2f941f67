//! The logit-lens view: what the residual stream would predict, read through the final
//! LayerNorm and the unembedding, after the embeddings and after each block (rows) at
//! each position (columns); each cell's likeliest token, shaded by its probability, and
//! the rank of the token that comes next in the prompt.

use glassbox_lab::LogitLens;
use glassbox_web::engine::protocol::Lens;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::components::copy_link::CopyLink;
use crate::components::status::ReadyGate;
use crate::components::text_field::TextField;
use crate::pages::prompt::EXAMPLE_PROMPT;
use crate::route::{LensQuery, Route};
use crate::state::{AnswerView, LinkErrors, use_query, use_request};

/// The logit-lens view.
#[component]
pub(crate) fn LensPage() -> Html {
    let navigator = use_navigator();
    let (mut query, link_errors) = use_query::<LensQuery>();
    if query.text.trim().is_empty() {
        EXAMPLE_PROMPT.clone_into(&mut query.text);
    }
    let answer = use_request(Some(Lens {
        text: query.text.clone(),
    }));
    let on_text = Callback::from(move |text: String| {
        if let Some(navigator) = &navigator {
            let _ = navigator.replace_with_query(&Route::Lens, &LensQuery { text });
        }
    });
    let body = AnswerView::new("Running the model…")
        .error_id("lens-error")
        .show(&answer, |lens| table(lens));
    html! {
        <ReadyGate>
            <section class="panel">
                <h2>{ "Logit lens" }</h2>
                <p class="muted">{ "The residual stream after the embeddings and after each block, read off as the model reads its last one (the final norm, then the unembedding): each cell's likeliest next token and its probability; hover for the top five and the rank of the token that actually comes next (bold where it is the likeliest). The top row is the model's own prediction." }</p>
                <TextField id="lens-prompt" value={query.text.clone()} on_commit={on_text} label="prompt" />
                <div class="controls"><CopyLink /></div>
                <LinkErrors errors={link_errors} />
                { body }
            </section>
        </ReadyGate>
    }
}

/// Stages as rows (the last on top), positions as columns.
fn table(lens: &LogitLens) -> Html {
    let rows = lens.stages.iter().zip(&lens.cells).rev().map(|(stage, cells)| {
        let cells = cells.iter().map(|cell| {
            let (text, p) = cell.top.first().cloned().unwrap_or_default();
            let hit = cell.next.is_some_and(|(_, rank)| rank == 0);
            let mut lines: Vec<String> = cell
                .top
                .iter()
                .map(|(t, q)| format!("{t:?} {q:.3}"))
                .collect();
            if let Some((q, rank)) = cell.next {
                lines.push(format!("next token: rank {rank}, p={q:.3}"));
            }
            let title = lines.join("\n");
            html! {
                <td class={classes!("lens-cell", hit.then_some("hit"))} style={format!("--a:{:.3}", p.clamp(0.0, 1.0))} {title}>
                    { format!("{text:?}") }
                </td>
            }
        });
        html! { <tr><th scope="row">{ stage.clone() }</th>{ for cells }</tr> }
    });
    html! {
        <div class="graph-scroll">
            <table class="lens" id="lens">
                <thead><tr><th>{ "" }</th>{ for lens.tokens.iter().map(|t| html! { <th scope="col">{ format!("{t:?}") }</th> }) }</tr></thead>
                <tbody>{ for rows }</tbody>
            </table>
        </div>
    }
}
