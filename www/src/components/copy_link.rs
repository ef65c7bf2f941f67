//! "Copy link": puts the current view's URL on the clipboard.

use yew::prelude::*;

/// A button that copies the page's URL, which holds the whole view.
#[component]
pub(crate) fn CopyLink() -> Html {
    let copied = use_state(|| false);
    let onclick = {
        let copied = copied.clone();
        Callback::from(move |_| {
            if let Some(window) = web_sys::window()
                && let Ok(href) = window.location().href()
            {
                let _ = window.navigator().clipboard().write_text(&href);
                copied.set(true);
            }
        })
    };
    html! {
        <button class="copy-link" {onclick} title="the link reproduces this view in any browser">
            { if *copied { "Link copied" } else { "Copy link" } }
        </button>
    }
}
