//! The last line of defence: a panic shows a message on the page instead of a blank one.

use wasm_bindgen::JsCast;

/// Logs panics to the console and shows them in the page's `#fatal` panel, which lives in
/// `index.html` outside the yew tree so it survives the app.
pub(crate) fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        show(&format!(
            "Glassbox hit an internal error and stopped: {info}. Reloading the page usually helps; \
             if it happens again, the browser console has the details."
        ));
    }));
}

fn show(message: &str) {
    let panel = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id("fatal"))
        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok());
    if let Some(panel) = panel {
        // Text, never HTML: the message may quote user input.
        panel.set_text_content(Some(message));
        panel.set_hidden(false);
    }
}
