//! "Open a model…": a person picks a GGUF file from their computer and the page runs it
//! in place of the pack. The file is read by the engine worker through a `blob:` URL:
//! nothing is uploaded anywhere. If it cannot be opened, the reason shows here and the
//! pack loaded before stays.

use wasm_bindgen::JsCast;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::state::Engine;

/// The file picker, and the reason the last file could not be opened.
#[component]
pub(crate) fn OpenModel() -> Html {
    let Some(engine) = use_context::<Engine>() else {
        return html! {};
    };
    let open = engine.open_model.clone();
    let onchange = Callback::from(move |event: Event| {
        let Some(input) = event
            .target()
            .and_then(|t| t.dyn_into::<HtmlInputElement>().ok())
        else {
            return;
        };
        if let Some(file) = input.files().and_then(|files| files.get(0)) {
            open.emit(file);
        }
        // The same file can be picked again.
        input.set_value("");
    });
    html! {
        <div class="open-model">
            <label class="button" title="Run a GGUF model file from this computer in this page (nothing is uploaded)">
                { "Open a model…" }
                <input type="file" id="open-model" accept=".gguf" class="visually-hidden" {onchange} />
            </label>
            if let Some(error) = &engine.open_error {
                <p class="status-bad" role="alert" id="open-model-error">{ error.clone() }</p>
            }
        </div>
    }
}
