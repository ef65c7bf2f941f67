//! The forward benchmark of `benches/forward.rs`, in the browser: run by `cargo xtask
//! bench` (ignored by the tests), it prints ms per forward from headless Chromium.
#![cfg(target_arch = "wasm32")]
#![allow(
    clippy::unwrap_used,
    reason = "a benchmark that fails should stop loudly"
)]

#[path = "../benches/shapes.rs"]
mod shapes;

use glassbox_model::{Gpt2, Gpt2Weights, Hooks};
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
#[ignore = "a benchmark: `cargo xtask bench` runs it"]
async fn forward_milliseconds_in_the_browser() {
    let shapes = shapes::bench_shapes();
    console_log!("glassbox-model CPU engine (candle-core) in wasm32, one thread");
    for (name, config) in shapes {
        let model = Gpt2::new(config.clone(), Gpt2Weights::init(&config, 0).unwrap()).unwrap();
        yield_to_browser().await;
        for len in [1_u32, 64, 256] {
            let tokens: Vec<u32> = (0..len)
                .map(|i| (i * 7919) % config.vocab_size as u32)
                .collect();
            model.forward_ids(&tokens, &mut Hooks::none()).unwrap();
            let mut times = Vec::new();
            let started = js_sys::Date::now();
            while times.len() < 3 || (js_sys::Date::now() - started < 3000.0 && times.len() < 30) {
                let t = js_sys::Date::now();
                model.forward_ids(&tokens, &mut Hooks::none()).unwrap();
                times.push(js_sys::Date::now() - t);
                yield_to_browser().await;
            }
            times.sort_by(f64::total_cmp);
            console_log!(
                "{name}, {len} tokens: median {:.1} ms over {} runs",
                times[times.len() / 2],
                times.len()
            );
        }
    }
}

/// Lets the browser's event loop run (the test runner polls the page while we work).
async fn yield_to_browser() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let set_timeout = js_sys::Reflect::get(&js_sys::global(), &"setTimeout".into()).unwrap();
        let set_timeout: js_sys::Function = set_timeout.into();
        set_timeout.call1(&js_sys::global(), &resolve).unwrap();
    });
    wasm_bindgen_futures::JsFuture::from(promise).await.unwrap();
}
