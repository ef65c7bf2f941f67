//! Milliseconds per forward pass and per decoded token of the GPU engine next to the CPU
//! engine, in the same run, at 1, 64 and 256 tokens, for the default pack's shape and
//! GPT-2 small's (`glassbox-model`'s `benches/shapes.rs`), with random weights.
//!
//! `cargo bench -p glassbox-gpu --bench forward`; `cargo xtask bench` runs it next to the
//! same in the browser (`tests/wasm_bench.rs`). The adapter is lavapipe (Vulkan on the
//! CPU) unless `GLASSBOX_ADAPTER=gpu`; `GLASSBOX_BANDWIDTH_GBPS` adds the decode speed
//! that memory bandwidth allows. Below each row, a roofline model of the pass (bytes,
//! FLOPs, dispatches) predicts its time on named GPUs (`compare/roofline.rs`), to be set
//! beside a real GPU's measurement. A benchmark, not a test: it asserts nothing.

#[cfg(not(target_arch = "wasm32"))]
mod compare;
#[cfg(not(target_arch = "wasm32"))]
#[path = "../../model/benches/shapes.rs"]
mod shapes;

/// Environment variable: the device's memory bandwidth in GB/s, for the decode bound.
#[cfg(not(target_arch = "wasm32"))]
const BANDWIDTH: &str = "GLASSBOX_BANDWIDTH_GBPS";

/// The native clock; printing to stdout.
#[cfg(not(target_arch = "wasm32"))]
struct Native(std::time::Instant);

#[cfg(not(target_arch = "wasm32"))]
impl compare::Host for Native {
    fn now_ms(&self) -> f64 {
        self.0.elapsed().as_secs_f64() * 1e3
    }

    async fn pause(&self) {}

    fn print(&self, line: &str) {
        println!("{line}");
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> compare::BenchResult<()> {
    // The CPU engine as the command line runs it (see `native_process`).
    #[allow(unsafe_code, reason = "first thing in `main`: no other thread yet")]
    // SAFETY: no other thread runs yet.
    let _prepared = unsafe { glassbox_model::native_process::prepare() };
    let bandwidth_gbps = match std::env::var(BANDWIDTH) {
        Ok(v) => Some(
            v.parse::<f64>()
                .map_err(|e| format!("{BANDWIDTH}={v}: {e}"))?,
        ),
        Err(_) => None,
    };
    let cpu_engine = format!(
        "candle-core, {} threads",
        std::thread::available_parallelism()?.get()
    );
    let setting = compare::Setting {
        cpu_engine: &cpu_engine,
        software_adapter: "lavapipe",
        hardware_hint: " (GLASSBOX_ADAPTER=gpu asks for a hardware adapter)",
        bandwidth_gbps,
    };
    let budget = compare::Budget {
        ms: 3000.0,
        max_runs: 30,
        slow_ms: 2000.0,
        warm_up_only_ms: f64::INFINITY,
    };
    pollster::block_on(compare::run(
        &Native(std::time::Instant::now()),
        &budget,
        &setting,
    ))
}

/// In the browser the benchmark is `tests/wasm_bench.rs`, run by `cargo xtask bench`.
#[cfg(target_arch = "wasm32")]
fn main() {}
