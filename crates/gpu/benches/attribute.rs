//! Time to compute an attribution graph on the default pack, the GPU engine next to the
//! CPU engine in the same run: 16 and 48 tokens with the page's cap of 2048 feature nodes
//! (the most influential), and 16 with every active feature. Tracing the prompt (CPU,
//! shared) is timed apart; the graphs are checked to agree before they are timed.
//!
//! `cargo bench -p glassbox-gpu --bench attribute`; `cargo xtask bench` runs it next to
//! the page's numbers in Chromium. The adapter is lavapipe (Vulkan on the CPU) unless
//! `GLASSBOX_ADAPTER=gpu`. A benchmark, not a test: it asserts nothing.
#![allow(
    clippy::unwrap_used,
    reason = "a benchmark that fails should stop loudly"
)]

/// It reads the pack from disk: natively only (the browser's numbers come from the page).
#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Instant;

    use glassbox_circuits::{
        AttributionOptions, FrozenWeights, Replacement, Setup, attribute, attribute_with,
    };
    use glassbox_engine::attach_transcoders;
    use glassbox_gpu::{AdapterPreference, GpuContext, GpuModel};
    use glassbox_pack::dir;
    use pollster::block_on;

    const TEXT: &str = "The Fulton County Grand Jury said Friday an investigation of Atlanta's \
        recent primary election produced no evidence that any irregularities took place. The \
        jury further said in term-end presentments that the City Executive Committee, which had \
        over-all charge of the election, deserves the praise and thanks of the City of Atlanta.";

    // The CPU engine as the command line runs it (see `native_process`).
    #[allow(unsafe_code, reason = "first thing in `main`: no other thread yet")]
    // SAFETY: no other thread runs yet.
    let _prepared = unsafe { glassbox_model::native_process::prepare() };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../www/packs/brown");
    let loaded = dir::load(&root).unwrap();
    let transcoders: Vec<_> = loaded.dictionaries.into_iter().map(Arc::new).collect();
    let model = loaded.model;
    let ctx = Arc::new(block_on(GpuContext::new(AdapterPreference::from_env())).unwrap());
    let mut gpu = block_on(GpuModel::new(Arc::clone(&ctx), model.clone())).unwrap();
    block_on(attach_transcoders(&mut gpu, &transcoders)).unwrap();
    let all = loaded.tokenizer.encode_ids(TEXT).unwrap();
    println!(
        "attribution graphs on the default pack: CPU engine (candle-core, {} threads) vs GPU engine ({})",
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        ctx.adapter()
    );
    println!(
        "tokens  active   cap  rows  trace ms  CPU ms  GPU ms  CPU/GPU  GPU submits  (median of 3)"
    );
    let ms = |since: Instant| since.elapsed().as_secs_f64() * 1e3;
    let median = |mut runs: Vec<f64>| {
        runs.sort_by(f64::total_cmp);
        runs[runs.len() / 2]
    };
    for (len, cap) in [(16, None), (16, Some(2048)), (48, Some(2048))] {
        let tokens = &all[..len];
        let options = AttributionOptions {
            max_feature_nodes: cap,
            ..AttributionOptions::default()
        };
        let (mut trace, mut cpu, mut on_gpu) = (Vec::new(), Vec::new(), Vec::new());
        let mut shape = (0, 0, 0);
        for _ in 0..3 {
            let t = Instant::now();
            let replacement = Replacement::trace(&model, &transcoders, tokens).unwrap();
            trace.push(ms(t));
            let t = Instant::now();
            let reference = attribute(&model, &replacement, &options).unwrap();
            cpu.push(ms(t));
            let t = Instant::now();
            let before = gpu.counts().submits;
            let setup = Setup::new(
                &FrozenWeights::of(&model).unwrap(),
                &replacement,
                options.logit_probability,
                options.max_logits,
            )
            .unwrap();
            let carrier = block_on(gpu.attribution(&setup, &replacement)).unwrap();
            let graph = block_on(attribute_with(&setup, &replacement, &carrier, &options)).unwrap();
            on_gpu.push(ms(t));
            assert_eq!(graph.feature_nodes(), reference.feature_nodes());
            let rows = graph.feature_nodes() + setup.logit_targets.len();
            shape = (graph.active_features, rows, gpu.counts().submits - before);
        }
        let (trace, cpu, on_gpu) = (median(trace), median(cpu), median(on_gpu));
        let cap = cap.map_or_else(|| "all".to_owned(), |c| c.to_string());
        println!(
            "{len:>6}  {:>6}  {cap:>4}  {:>4}  {trace:>8.1}  {cpu:>6.0}  {on_gpu:>6.0}  {:>7.2}  {:>11}",
            shape.0,
            shape.1,
            cpu / on_gpu,
            shape.2
        );
    }
}
