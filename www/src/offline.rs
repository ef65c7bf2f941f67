//! Registers the service worker (`sw.js`) that keeps the app shell, so the page opens
//! offline after one visit (the engine worker keeps the pack's files itself).

use wasm_bindgen_futures::JsFuture;

/// Registers `sw.js` where the page is served over HTTP(S); elsewhere, or when the
/// browser refuses, the page works as before, online only, and says so in the console.
pub(crate) fn keep_the_shell() {
    let Some(window) = web_sys::window() else {
        return;
    };
    let served = window
        .location()
        .protocol()
        .is_ok_and(|p| p == "http:" || p == "https:");
    if !served {
        return;
    }
    let container = window.navigator().service_worker();
    wasm_bindgen_futures::spawn_local(async move {
        if let Err(error) = JsFuture::from(container.register("./sw.js")).await {
            web_sys::console::warn_2(
                &"Glassbox: no offline copy of the page (service worker refused):".into(),
                &error,
            );
        }
    });
}
