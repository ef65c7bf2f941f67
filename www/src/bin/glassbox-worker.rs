//! The engine worker's entry point (built by trunk as a web worker): the engine worker,
//! or the column helper where the worker's address ends in its role.

#[cfg(target_arch = "wasm32")]
fn main() {
    use glassbox_web::engine::columns;
    use gloo_worker::Registrable;
    use wasm_bindgen::JsCast;
    console_error_panic_hook::set_once();
    let scope: Option<web_sys::WorkerGlobalScope> = js_sys::global().dyn_into().ok();
    if scope.is_some_and(|scope| scope.location().hash() == columns::ROLE) {
        columns::run_helper();
    } else {
        glassbox_web::engine::worker::EngineWorker::registrar().register();
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("glassbox-worker runs only as a web worker in the browser");
}
