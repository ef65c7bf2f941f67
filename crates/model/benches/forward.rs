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

use glassbox_model::{Activation, Gpt2, Gpt2Config, Gpt2Weights, Hooks};

fn config(
    n_layer: usize,
    n_embd: usize,
    n_head: usize,
    n_positions: usize,
    vocab_size: usize,
) -> Gpt2Config {
    Gpt2Config {
        n_layer,
        n_head,
        n_embd,
        n_positions,
        vocab_size,
        layer_norm_epsilon: 1e-5,
        n_inner: None,
        activation_function: Activation::GeluTanh,
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let shapes = [
        (
            "default-pack shape (4 layers, d=256, 4 heads, vocab 8192)",
            config(4, 256, 4, 256, 8192),
        ),
        (
            "GPT-2 small shape (12 layers, d=768, 12 heads, vocab 50257)",
            config(12, 768, 12, 1024, 50257),
        ),
    ];
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
