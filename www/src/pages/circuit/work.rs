//! How the graph shown was computed: its time, and on the CPU engine the workers that
//! carried its batches of targets (the engine worker and its helpers, `?workers=N`).

use glassbox_lab::Contrast;
use glassbox_web::engine::protocol::{GraphWork, GraphWorkOf};
use yew::prelude::*;

use crate::state::{Answer, use_request};

/// Properties of [`GraphWorkNote`].
#[derive(Properties, PartialEq)]
pub(crate) struct GraphWorkProps {
    /// The graph's prompt.
    pub(crate) text: String,
    /// Its logit difference, if any.
    pub(crate) contrast: Option<Contrast>,
}

/// One line: the graph's time and who carried it; nothing for a graph the engine did not
/// compute (a lesson's preview, an imported file).
#[component]
pub(crate) fn GraphWorkNote(props: &GraphWorkProps) -> Html {
    let answer = use_request(Some(GraphWorkOf {
        text: props.text.clone(),
        contrast: props.contrast.clone(),
    }));
    let Answer::Done(work) = answer else {
        return html! {};
    };
    let Some(work) = work.as_ref() else {
        return html! {};
    };
    let workers = work.carried.len().to_string();
    html! {
        <p class="muted" id="graph-work" data-ms={format!("{:.0}", work.ms)} data-workers={workers}>
            { describe(work) }
        </p>
    }
}

/// The line in words.
fn describe(work: &GraphWork) -> String {
    let seconds = work.ms / 1000.0;
    match work.carried.as_slice() {
        [] => format!("Computed in {seconds:.1} s on the GPU engine."),
        [_] => format!("Computed in {seconds:.1} s by the engine worker alone."),
        [here, helpers @ ..] => {
            let theirs: Vec<String> = helpers.iter().map(ToString::to_string).collect();
            format!(
                "Computed in {seconds:.1} s by {} workers: of its batches of targets, {here} \
                 in the engine worker and {} in its helpers.",
                work.carried.len(),
                theirs.join(", "),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_who_carried_the_batches() {
        let work = |carried: Vec<usize>| GraphWork {
            ms: 2345.0,
            carried,
        };
        assert_eq!(
            describe(&work(vec![])),
            "Computed in 2.3 s on the GPU engine."
        );
        assert_eq!(
            describe(&work(vec![9])),
            "Computed in 2.3 s by the engine worker alone."
        );
        assert_eq!(
            describe(&work(vec![5, 4, 3])),
            "Computed in 2.3 s by 3 workers: of its batches of targets, 5 in the engine \
             worker and 4, 3 in its helpers."
        );
    }
}
