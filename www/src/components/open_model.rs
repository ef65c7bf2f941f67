//! "Open a model…": a person picks a GGUF file, or a Hugging Face folder (or its files),
//! from their computer and the page runs it in place of the pack; SAELens dictionaries
//! (a folder's `cfg.json` and `sae_weights.safetensors`) picked with it, or on their own
//! to add to the model loaded, attach where their `cfg.json` says. The files are read by
//! the engine worker through `blob:` URLs: nothing is uploaded anywhere. If the files
//! cannot be opened, the reason shows here and what was loaded before stays. The last
//! model opened is kept in this browser ([`kept`]): "Reopen" opens it on a later visit.

use glassbox_web::engine::kept::{self, KeptModel};
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
    let kept_model = use_state(|| None::<KeptModel>);
    {
        // Looked up again whenever what is loaded changes (an open may have kept a model).
        let kept_model = kept_model.clone();
        let loaded = engine.info().map(|i| (i.name.clone(), i.kept.clone()));
        use_effect_with(loaded, move |_| {
            wasm_bindgen_futures::spawn_local(async move { kept_model.set(kept::kept().await) });
        });
    }
    let showing_it = |k: &KeptModel| {
        engine
            .info()
            .is_some_and(|i| i.from_disk && i.name == k.name)
    };
    let reopen = (*kept_model).clone().filter(|k| !showing_it(k)).map(|k| {
        let (reopen, files) = (engine.reopen.clone(), k.picked());
        let on_reopen = Callback::from(move |_: MouseEvent| reopen.emit(files.clone()));
        let on_forget = {
            let kept_model = kept_model.clone();
            Callback::from(move |_: MouseEvent| {
                let kept_model = kept_model.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    kept::forget().await;
                    kept_model.set(None);
                });
            })
        };
        html! {
            <div class="open-buttons">
                <button type="button" id="reopen-model" onclick={on_reopen}
                    title={format!("Open it again from the copy kept in this browser ({:.0} MB), without picking the files", k.bytes as f64 / 1e6)}>
                    { format!("Reopen “{}”", k.name) }
                </button>
                <button type="button" id="forget-model" onclick={on_forget} title="Remove the copy kept in this browser">
                    { "Forget it" }
                </button>
            </div>
        }
    });
    html! {
        <div class="open-model">
            <div class="open-buttons">
                <label class="button" title="Run a model from this computer in this page: a GGUF file (or every file of a split one), or a Hugging Face folder's config.json, model.safetensors (or shards and their index) and tokenizer.json picked together; add a SAELens dictionary's cfg.json and sae_weights.safetensors with it, or on their own to add it to the model loaded. Nothing is uploaded.">
                    { "Open a model…" }
                    <input type="file" id="open-model" multiple=true accept=".gguf,.json,.safetensors" class="visually-hidden" onchange={on_files} />
                </label>
                <label class="button" title="Run a folder from this computer in this page: a Hugging Face model (or a GGUF file) with SAELens dictionaries in subfolders (each a cfg.json and sae_weights.safetensors), or a folder of dictionaries alone to add to the model loaded. Nothing is uploaded.">
                    { "Open a folder…" }
                    <input type="file" id="open-model-folder" webkitdirectory=true class="visually-hidden" onchange={on_folder} />
                </label>
            </div>
            { for reopen }
            if let Some(error) = &engine.open_error {
                <p class="status-bad" role="alert" id="open-model-error">{ error.clone() }</p>
            }
        </div>
    }
}
