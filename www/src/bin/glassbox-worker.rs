//! The engine worker's entry point (built by trunk as a web worker).

#[cfg(target_arch = "wasm32")]
fn main() {
    use gloo_worker::Registrable;
    console_error_panic_hook::set_once();
    glassbox_web::engine::worker::EngineWorker::registrar().register();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("glassbox-worker runs only as a web worker in the browser");
}
