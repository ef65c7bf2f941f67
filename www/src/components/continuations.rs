//! A steering result as the steer view and graph steering both show it: the unsteered
//! and steered continuations side by side after the prompt, then the next-token logits
//! the steering raised and lowered most.

use glassbox_lab::SteerResult;
use yew::prelude::*;

/// `result` after `prompt`; the continuations' elements are `#{prefix}baseline` and
/// `#{prefix}steered`.
pub(crate) fn continuations(prompt: &str, result: &SteerResult, prefix: &str) -> Html {
    let changes = |changes: &[(String, f32)]| {
        html! {
            <ol>{ for changes.iter().map(|(t, d)| html! { <li><code>{ format!("{t:?}") }</code>{ format!(" {d:+.2}") }</li> }) }</ol>
        }
    };
    html! {
        <>
            <div class="columns">
                <div><h3>{ "unsteered" }</h3><p class="continuation" id={format!("{prefix}baseline")}>
                    <span class="muted">{ prompt.to_owned() }</span>{ result.baseline.clone() }</p></div>
                <div><h3>{ "steered" }</h3><p class="continuation" id={format!("{prefix}steered")}>
                    <span class="muted">{ prompt.to_owned() }</span>{ result.steered.clone() }</p></div>
            </div>
            <h3>{ "Next-token logits after the prompt" }</h3>
            <div class="columns">
                <div><h4>{ "raised most" }</h4>{ changes(&result.raised) }</div>
                <div><h4>{ "lowered most" }</h4>{ changes(&result.lowered) }</div>
            </div>
        </>
    }
}
