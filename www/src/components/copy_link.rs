//! "Copy link": puts the current view's URL on the clipboard; "Embed" shows the HTML that
//! puts the view in a course page.

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
    let snippet = use_state(|| None::<String>);
    let on_embed = {
        let snippet = snippet.clone();
        Callback::from(move |_: MouseEvent| {
            let href = web_sys::window().and_then(|w| w.location().href().ok());
            snippet.set(match (&*snippet, href) {
                (None, Some(href)) => Some(glassbox_web::chrome::embed_snippet(&href)),
                _ => None,
            });
        })
    };
    html! {
        <>
            <button class="copy-link" {onclick} title="the link reproduces this view in any browser">
                { if *copied { "Link copied" } else { "Copy link" } }
            </button>
            { " " }
            <button class="embed-link" onclick={on_embed} title="HTML to show this view in a course page">{ "Embed" }</button>
            if let Some(code) = &*snippet {
                <label class="embed-snippet muted">{ "Paste into a course page (add hide=engine,prompt,… to the address to hide controls):" }
                    <textarea id="embed-snippet" readonly=true rows="3" value={code.clone()} />
                </label>
            }
        </>
    }
}
