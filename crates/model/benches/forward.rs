//! Milliseconds per forward pass of the CPU engine, at 64 and 256 tokens, for the
//! default pack's shape and GPT-2 small's, with random weights.
//!
//! `cargo bench -p glassbox-model --bench forward`; `cargo xtask bench` runs it next to
//! the same in the browser and in PyTorch (`forward_torch.py`). A benchmark, not a test: it asserts nothing.

#![cfg_attr(
    target_arch = "wasm32",
    allow(unused, reason = "the browser runs tests/wasm_bench.rs instead")
)]

use std::time::Instant;

mod shapes;

use glassbox_model::{Gpt2, Gpt2Weights, Hooks};

#[cfg(not(target_arch = "wasm32"))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let shapes = shapes::bench_shapes();
    println!(
        "glassbox-model CPU engine (candle-core), {} threads",
        std::thread::available_parallelism()?.get()
    );
    for (name, config) in shapes {
        let model = Gpt2::new(config.clone(), Gpt2Weights::init(&config, 0)?)?;
        for len in [64_u32, 256] {
            let tokens: Vec<u32> = (0..len)
                .map(|i| (i * 7919) % config.vocab_size as u32)
                .collect();
            model.forward_ids(&tokens, &mut Hooks::none())?; // warm-up
            let mut times = Vec::new();
            let started = Instant::now();
            while times.len() < 3 || (started.elapsed().as_secs_f64() < 3.0 && times.len() < 50) {
                let t = Instant::now();
                model.forward_ids(&tokens, &mut Hooks::none())?;
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
            times.sort_by(f64::total_cmp);
            println!(
                "{name}, {len} tokens: median {:.1} ms over {} runs",
                times[times.len() / 2],
                times.len()
            );
        }
    }
    Ok(())
}

/// In the browser the benchmark is `tests/wasm_bench.rs`, run by `cargo xtask bench`.
#[cfg(target_arch = "wasm32")]
fn main() {}
