//! Milliseconds per forward pass of the CPU engine, at 1, 64 and 256 tokens, for the
//! default pack's shape and GPT-2 small's, with random weights; and SmolLM2-135M (from
//! the GGUF `cargo xtask models` fetches, when it is there): prefill at 64 and 256 tokens
//! and decoding with the KV cache, in tokens per second.
//!
//! `cargo bench -p glassbox-model --bench forward`; `cargo xtask bench` runs it next to
//! the same in the browser and in PyTorch (`forward_torch.py`). A benchmark, not a test: it asserts nothing.

#![cfg_attr(
    target_arch = "wasm32",
    allow(unused, reason = "the browser runs tests/wasm_bench.rs instead")
)]

use std::time::Instant;

mod shapes;

use glassbox_model::{Gpt2, Gpt2Weights, Hooks, KvCache, Model};

#[cfg(not(target_arch = "wasm32"))]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    // As the command line runs it (PyTorch's side gets the same allocator settings from
    // xtask).
    #[allow(unsafe_code, reason = "first thing in `main`: no other thread yet")]
    // SAFETY: no other thread runs yet.
    let prepared = unsafe { glassbox_model::native_process::prepare() };
    let shapes = shapes::bench_shapes();
    println!(
        "glassbox-model CPU engine (candle-core), {} threads, freed memory {}, candle's pool spins {} times before it parks",
        std::thread::available_parallelism()?.get(),
        if prepared.freed_memory_kept {
            "kept"
        } else {
            "returned (allocator defaults)"
        },
        prepared.spin_limit
    );
    for (name, config) in shapes {
        let model = Gpt2::new(config.clone(), Gpt2Weights::init(&config, 0)?)?;
        for len in [1_u32, 64, 256] {
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
    smollm2()
}

/// Median milliseconds of `run` over at least 3 runs and up to 3 seconds.
#[cfg(not(target_arch = "wasm32"))]
fn median_ms(
    mut run: impl FnMut() -> Result<(), Box<dyn std::error::Error>>,
) -> Result<(f64, usize), Box<dyn std::error::Error>> {
    run()?; // warm-up
    let mut times = Vec::new();
    let started = Instant::now();
    while times.len() < 3 || (started.elapsed().as_secs_f64() < 3.0 && times.len() < 50) {
        let t = Instant::now();
        run()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], times.len()))
}

/// SmolLM2-135M-Instruct from its `Q4_1` GGUF (dequantized to f32 at load).
#[cfg(not(target_arch = "wasm32"))]
fn smollm2() -> Result<(), Box<dyn std::error::Error>> {
    let folder = std::env::var_os("GLASSBOX_MODELS").map_or_else(
        || std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/models"),
        std::path::PathBuf::from,
    );
    let path = folder.join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    let Ok(bytes) = std::fs::read(&path) else {
        println!(
            "SmolLM2-135M: {} is missing (cargo xtask models)",
            path.display()
        );
        return Ok(());
    };
    let started = Instant::now();
    let (model, _) = Model::from_gguf("SmolLM2-135M-Instruct.Q4_1.gguf", &bytes)?;
    println!(
        "SmolLM2-135M (Q4_1 GGUF, f32 on the CPU): loaded in {:.0} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    let vocab = model.dims().vocab_size as u32;
    let tokens = |len: u32| -> Vec<u32> { (0..len).map(|i| (i * 7919) % vocab).collect() };
    for len in [64_u32, 256] {
        let ids = tokens(len);
        let (ms, runs) = median_ms(|| {
            model.forward_ids(&ids, &mut Hooks::none())?;
            Ok(())
        })?;
        println!("SmolLM2-135M, prefill {len} tokens: median {ms:.1} ms over {runs} runs");
    }
    // Decoding: 32 tokens, one at a time, after a 64-token prompt in the cache (the
    // prompt's pass is not timed).
    let prompt =
        candle_core::Tensor::new(tokens(64).as_slice(), &candle_core::Device::Cpu)?.unsqueeze(0)?;
    let steps = 32_u32;
    let mut times = Vec::new();
    for _ in 0..4 {
        let mut cache = KvCache::default();
        model.forward_cached(&prompt, &mut cache, &mut Hooks::none())?;
        let started = Instant::now();
        for step in 0..steps {
            let next = candle_core::Tensor::new(&[[step * 31 % vocab]], &candle_core::Device::Cpu)?;
            model.forward_cached(&next, &mut cache, &mut Hooks::none())?;
        }
        times.push(started.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let seconds = times[times.len() / 2];
    println!(
        "SmolLM2-135M, decode after a 64-token prompt: {:.1} ms per token, {:.1} tokens/s (median of {} runs of {steps})",
        seconds * 1e3 / f64::from(steps),
        f64::from(steps) / seconds,
        times.len()
    );
    Ok(())
}

/// In the browser the benchmark is `tests/wasm_bench.rs`, run by `cargo xtask bench`.
#[cfg(target_arch = "wasm32")]
fn main() {}
