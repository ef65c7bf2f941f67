//! The start page.

use yew::prelude::*;
use yew_router::prelude::*;

use crate::pages::prompt::EXAMPLE_PROMPT;
use crate::route::{PromptQuery, Route, SearchQueryParams};
use crate::state::Engine;

/// The start page: what Glassbox is, the loaded pack, and where to begin.
#[component]
pub(crate) fn Home() -> Html {
    let engine = use_context::<Engine>();
    let info = engine.as_ref().and_then(Engine::info).cloned();
    // The lessons listed here are kept for offline use.
    let keep = engine.as_ref().map(|e| e.keep_lessons.clone());
    use_effect_with((), move |()| {
        if let Some(keep) = keep {
            keep.emit(());
        }
    });
    html! {
        <>
            <section class="panel">
                <h2>{ "Look inside a language model" }</h2>
                <p>
                    { "Glassbox runs a small language model and a feature dictionary for each of its layers right here in your browser, with no server. " }
                    { "A transcoder splits each MLP into thousands of sparse features a person can read; each feature is labelled from the parts of speech of the words it fires on, with the evidence shown." }
                </p>
                { for info.map(|i| html! {
                    <p class="muted" id="pack-info">{
                        if i.from_disk {
                            let kept = i.kept.as_ref().map(|k| format!(" {k}")).unwrap_or_default();
                            format!("Model “{}”: {}{kept}", i.name, i.description)
                        } else {
                            format!("Pack “{}”: {} {} blocks, {} features in all.", i.name, i.description, i.n_layer, i.dictionaries.iter().map(|d| d.d_sae).sum::<usize>())
                        }
                    }</p>
                }) }
                <p class="muted">{ "“Open a model…” (top right) runs a model from your computer instead (a GGUF file, or a Hugging Face folder; a Llama-family model such as SmolLM2, or GPT-2): predictions, attention, the logit lens and generation work on any model. Pick SAELens dictionaries with it (each folder's cfg.json and sae_weights.safetensors) to see their features, measured in this browser over a sample of text, and to steer with them. The files stay on your computer." }</p>
            </section>
            <section class="panel">
                <h2>{ "Lessons" }</h2>
                <p class="muted">{ "Step by step through what this pack's model does, each step beside the live view it discusses; every claim a lesson makes is checked against the pack." }</p>
                <crate::components::lesson_panel::LessonList />
                { for engine.as_ref().and_then(|e| e.lessons_kept.clone()).map(|(pack, failed)| html! {
                    <p class="muted" id="lessons-offline">{
                        if failed == 0 {
                            format!("The lessons for “{pack}” are kept in this browser: they work offline from now on.")
                        } else {
                            format!("{failed} of the views the lessons show could not be fetched: those steps need the network.")
                        }
                    }</p>
                }) }
                <p><Link<Route> to={Route::Write}>{ "Write a lesson of your own" }</Link<Route>>
                    { " — add views as steps, write their text, and share it as a link or a file." }</p>
            </section>
            <section class="panel">
                <h2>{ "Start here" }</h2>
                <ul>
                    <li><Link<Route, PromptQuery> to={Route::Prompt} query={Some(PromptQuery { text: EXAMPLE_PROMPT.to_owned(), pin: None })}>{ "Type a prompt" }</Link<Route, PromptQuery>>
                        { " — see its tokens, the model's next-token guesses and the features active at each token." }</li>
                    <li><Link<Route, SearchQueryParams> to={Route::Search} query={Some(SearchQueryParams { q: "NNS".to_owned() })}>{ "Search features" }</Link<Route, SearchQueryParams>>
                        { " by label, part of speech, token or text." }</li>
                    <li><Link<Route> to={Route::Steer}>{ "Steer the model" }</Link<Route>>
                        { " — clamp or ablate features and compare the text it writes." }</li>
                    <li><Link<Route> to={Route::Gpu}>{ "Check your GPU" }</Link<Route>></li>
                </ul>
                <p class="muted">{ "Every view's state is in its link: copy it, and anyone who opens it sees the same view, recomputed in their browser." }</p>
            </section>
        </>
    }
}
