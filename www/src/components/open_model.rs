//! "Open a model…": a person picks a GGUF file, or a Hugging Face folder (or its files),
//! from their computer and the page runs it in place of the pack; SAELens dictionaries
//! (a folder's `cfg.json` and `sae_weights.safetensors`) picked with it, or on their own
//! to add to the model loaded, attach where their `cfg.json` says. The files are read by
//! the engine worker through `blob:` URLs: nothing is uploaded anywhere. If the files
//! cannot be opened, the reason shows here and what was loaded before stays.

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
    let picked = |open: Callback<Vec<web_sys::File>>| {
        Callback::from(move |event: Event| {
            let Some(input) = event
                .target()
                .and_then(|t| t.dyn_into::<HtmlInputElement>().ok())
            else {
                return;
            };
            let files: Vec<web_sys::File> = input
                .files()
                .map(|list| (0..list.length()).filter_map(|i| list.get(i)).collect())
                .unwrap_or_default();
            if !files.is_empty() {
                open.emit(files);
            }
            // The same files can be picked again.
            input.set_value("");
        })
    };
    let on_files = picked(engine.open_model.clone());
    let on_folder = picked(engine.open_model.clone());
    html! {
        <div class="open-model">
            <div class="open-buttons">
                <label class="button" title="Run a model from this computer in this page: a GGUF file, or a Hugging Face folder's config.json, model.safetensors (or shards and their index) and tokenizer.json picked together; add a SAELens dictionary's cfg.json and sae_weights.safetensors with it, or on their own to add it to the model loaded. Nothing is uploaded.">
                    { "Open a model…" }
                    <input type="file" id="open-model" multiple=true accept=".gguf,.json,.safetensors" class="visually-hidden" onchange={on_files} />
                </label>
                <label class="button" title="Run a folder from this computer in this page: a Hugging Face model (or a GGUF file) with SAELens dictionaries in subfolders (each a cfg.json and sae_weights.safetensors), or a folder of dictionaries alone to add to the model loaded. Nothing is uploaded.">
                    { "Open a folder…" }
                    <input type="file" id="open-model-folder" webkitdirectory=true class="visually-hidden" onchange={on_folder} />
                </label>
            </div>
            if let Some(error) = &engine.open_error {
                <p class="status-bad" role="alert" id="open-model-error">{ error.clone() }</p>
            }
        </div>
    }
}
