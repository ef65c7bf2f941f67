//! The pack picker: the packs listed in `packs/index.json` beside the page, the one open
//! selected; choosing another reloads the page with `?pack=` set (the default pack without
//! it), on the same view. Hidden when the index is missing or lists one pack.

use glassbox_web::packs_index::{INDEX_PATH, MAX_INDEX_BYTES, PackEntry, parse_index};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use yew::prelude::*;

use crate::app::{PACK_BASE, pack_asked_for, page_base};

/// The index's bytes, or `None` when there is none to read.
async fn fetch_index() -> Option<Vec<u8>> {
    let window = web_sys::window()?;
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str(INDEX_PATH))
        .await
        .ok()?
        .dyn_into()
        .ok()?;
    if !response.ok() {
        return None;
    }
    let buffer = JsFuture::from(response.array_buffer().ok()?).await.ok()?;
    let bytes = js_sys::Uint8Array::new(&buffer);
    (bytes.length() as usize <= MAX_INDEX_BYTES).then(|| bytes.to_vec())
}

/// Opens `pack` in place of the current one, keeping the view (the fragment).
fn open(pack: &PackEntry) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let location = window.location();
    let hash = location.hash().unwrap_or_default();
    let default = format!("packs/{}", pack.path) == PACK_BASE;
    let search = if default {
        String::new()
    } else {
        format!("?pack=packs/{}", pack.path)
    };
    let _ = location.set_href(&format!("{}{search}{hash}", page_base()));
}

/// A select of the packs beside the page.
#[component]
pub(crate) fn PackPicker() -> Html {
    let packs = use_state(Vec::<PackEntry>::new);
    {
        let packs = packs.clone();
        use_effect_with((), move |()| {
            wasm_bindgen_futures::spawn_local(async move {
                // A missing or unreadable index leaves the picker hidden: the page works
                // with the pack it has.
                if let Some(listed) = fetch_index().await.and_then(|b| parse_index(&b).ok()) {
                    packs.set(listed);
                }
            });
        });
    }
    if packs.len() < 2 {
        return html! {};
    }
    let current = pack_asked_for().unwrap_or_default();
    let base = page_base();
    let onchange = {
        let packs = packs.clone();
        Callback::from(move |event: Event| {
            let Some(select) = event.target_dyn_into::<web_sys::HtmlSelectElement>() else {
                return;
            };
            if let Some(pack) = usize::try_from(select.selected_index())
                .ok()
                .and_then(|i| packs.get(i))
            {
                open(pack);
            }
        })
    };
    html! {
        <label class="pack-picker">
            { "Pack " }
            <select {onchange} aria-label="the pack to open">
                { for packs.iter().map(|pack| {
                    let selected = format!("{base}packs/{}", pack.path) == current;
                    html! {
                        <option value={pack.path.clone()} {selected} title={pack.description.clone()}>
                            { &pack.name }
                        </option>
                    }
                }) }
            </select>
        </label>
    }
}
