//! Light and dark themes: follows the system until the visitor picks one.

use wasm_bindgen::JsCast;
use yew::prelude::*;

fn root() -> Option<web_sys::HtmlElement> {
    web_sys::window()?
        .document()?
        .document_element()?
        .dyn_into()
        .ok()
}

/// A button that switches between the light and dark themes.
#[component]
pub(crate) fn ThemeToggle() -> Html {
    let dark = use_state(|| {
        web_sys::window()
            .and_then(|w| w.match_media("(prefers-color-scheme: dark)").ok().flatten())
            .is_some_and(|m| m.matches())
    });
    {
        use_effect_with(*dark, |&dark| {
            if let Some(root) = root() {
                let _ = root.set_attribute("data-theme", if dark { "dark" } else { "light" });
            }
        });
    }
    let toggle = {
        let dark = dark.clone();
        Callback::from(move |_| dark.set(!*dark))
    };
    html! {
        <button class="theme" onclick={toggle} aria-label="switch between light and dark theme">
            { if *dark { "☀ light" } else { "☾ dark" } }
        </button>
    }
}
