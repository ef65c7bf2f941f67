//! The GPU-vs-CPU benchmark of `benches/forward.rs`, in the browser: run by `cargo xtask
//! bench` (ignored by the tests), it prints ms per forward and per decoded token of both
//! engines from headless Chromium, whose WebGPU adapter there is SwiftShader.
#![cfg(target_arch = "wasm32")]
#![allow(
    clippy::unwrap_used,
    reason = "a benchmark that fails should stop loudly"
)]

#[path = "../benches/compare/mod.rs"]
mod compare;
#[path = "../../model/benches/shapes.rs"]
mod shapes;

use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// The page's clock, yielding to its event loop, and its console.
struct Browser;

impl compare::Host for Browser {
    fn now_ms(&self) -> f64 {
        js_sys::Date::now()
    }

    async fn pause(&self) {
        yield_to_browser().await;
    }

    fn print(&self, line: &str) {
        console_log!("{line}");
    }
}

#[wasm_bindgen_test]
#[ignore = "a benchmark: `cargo xtask bench` runs it"]
async fn gpu_and_cpu_milliseconds_in_the_browser() {
    let setting = compare::Setting {
        cpu_engine: "candle-core in wasm32, one thread",
        software_adapter: "SwiftShader",
        hardware_hint: "",
        bandwidth_gbps: None,
    };
    // Lighter than natively: the whole page has WASM_BINDGEN_TEST_TIMEOUT.
    let budget = compare::Budget {
        ms: 1500.0,
        max_runs: 10,
        slow_ms: 1000.0,
        // SwiftShader takes minutes over GPT-2 small's longer passes.
        warm_up_only_ms: 10_000.0,
    };
    compare::run(&Browser, &budget, &setting).await.unwrap();
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
