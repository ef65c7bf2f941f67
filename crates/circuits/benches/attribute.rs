//! Time to compute an attribution graph on the default pack for 16-, 48- and 64-token
//! prompts, natively on the CPU engine, with every active feature a node and with the
//! page's cap (the most influential 2048): tracing the prompt, attributing (the
//! transposed passes), influence and pruning. Then SmolLM2-135M (the GGUF `cargo xtask
//! models` fetches) at 16 and 32 tokens with the page's cap, its transcoders of the
//! `smollm2-135m` pack's shape (4096 features, 32 active per position: the work is the
//! same as the trained ones') drawn at random. Run by `cargo xtask bench`; numbers, no
//! assertions.
#![allow(
    clippy::unwrap_used,
    reason = "a benchmark that fails should stop loudly"
)]

#[cfg(not(target_arch = "wasm32"))]
use std::{path::Path, sync::Arc, time::Instant};

#[cfg(not(target_arch = "wasm32"))]
use glassbox_circuits::{AttributionOptions, Influence, Replacement, Thresholds, attribute};
#[cfg(not(target_arch = "wasm32"))]
use glassbox_pack::dir;

/// It reads the pack from disk: natively only (the browser's numbers come from the page).
#[cfg(target_arch = "wasm32")]
fn main() {}

/// Brown-like text long enough for 48 tokens.
#[cfg(not(target_arch = "wasm32"))]
const TEXT: &str = "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent \
primary election produced no evidence that any irregularities took place. The jury further said \
in term-end presentments that the City Executive Committee, which had over-all charge of the \
election, deserves the praise and thanks of the City of Atlanta for the manner in which the \
election was conducted.";

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    // The CPU engine as the command line runs it (see `native_process`).
    #[allow(unsafe_code, reason = "first thing in `main`: no other thread yet")]
    // SAFETY: no other thread runs yet.
    let _prepared = unsafe { glassbox_model::native_process::prepare() };
    default_pack();
    smollm2();
}

/// One graph's phases, in milliseconds: trace, attribute, influence and pruning, total;
/// and (active features, nodes).
#[cfg(not(target_arch = "wasm32"))]
fn timed(
    model: &glassbox_model::Model,
    transcoders: &[Arc<glassbox_dict::Dictionary>],
    tokens: &[u32],
    options: &AttributionOptions,
) -> ([f64; 4], (usize, usize)) {
    let t0 = Instant::now();
    let replacement = Replacement::trace(model, transcoders, tokens).unwrap();
    let t1 = Instant::now();
    let graph = attribute(model, &replacement, options).unwrap();
    let t2 = Instant::now();
    let pruned = Influence::of(&graph).prune(&graph, Thresholds::default());
    let t3 = Instant::now();
    assert!(pruned.nodes.iter().any(|&k| k));
    let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1000.0;
    (
        [ms(t0, t1), ms(t1, t2), ms(t2, t3), ms(t0, t3)],
        (graph.active_features, graph.len()),
    )
}

#[cfg(not(target_arch = "wasm32"))]
fn smollm2() {
    use glassbox_dict::{Dictionary, Spread};

    let folder = std::env::var_os("GLASSBOX_MODELS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/models"),
        std::path::PathBuf::from,
    );
    let bytes = std::fs::read(folder.join("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
        .expect("SmolLM2's GGUF: `cargo xtask models` fetches it");
    let (model, tokenizer) = glassbox_model::Model::from_gguf("SmolLM2", &bytes).unwrap();
    let dims = model.dims();
    let (d, d_sae) = (dims.d_model, 4096);
    let transcoders: Vec<Arc<Dictionary>> = (0..dims.n_layer)
        .map(|l| Dictionary::seeded_topk(d, d_sae, 32, l as u64, Spread::SMALL, None).unwrap())
        .map(Arc::new)
        .collect();
    let all = tokenizer.encode_ids(TEXT).unwrap();
    println!(
        "\nattribution graphs on SmolLM2-135M (30 blocks × 4096 features, k 32), CPU engine, native"
    );
    println!(
        "tokens  active  cap    nodes  trace ms  attribute ms  influence+prune ms  total ms  (median of 3)"
    );
    for len in [16, 32] {
        let options = AttributionOptions {
            max_feature_nodes: Some(2048),
            ..AttributionOptions::default()
        };
        let mut runs: Vec<([f64; 4], (usize, usize))> = (0..3)
            .map(|_| timed(&model, &transcoders, &all[..len], &options))
            .collect();
        runs.sort_by(|a, b| a.0[3].total_cmp(&b.0[3]));
        let (m, shape) = runs[1];
        println!(
            "{len:>6}  {:>6}  {:>5}  {:>5}  {:>8.1}  {:>12.1}  {:>18.1}  {:>8.1}",
            shape.0, 2048, shape.1, m[0], m[1], m[2], m[3]
        );
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn default_pack() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../www/packs/brown");
    let loaded = dir::load(&root).unwrap();
    let transcoders: Vec<_> = loaded.dictionaries.into_iter().map(Arc::new).collect();
    let all = loaded.tokenizer.encode_ids(TEXT).unwrap();
    println!("attribution graphs on the default pack, CPU engine (candle-core), native");
    println!(
        "tokens  active  cap    nodes  trace ms  attribute ms  influence+prune ms  total ms  (median of 3)"
    );
    for (len, cap) in [(16, None), (48, None), (48, Some(2048)), (64, Some(2048))] {
        let tokens = &all[..len];
        let options = AttributionOptions {
            max_feature_nodes: cap,
            ..AttributionOptions::default()
        };
        let mut runs = Vec::new();
        let mut shape = (0, 0);
        for _ in 0..3 {
            let t0 = Instant::now();
            let replacement = Replacement::trace(&loaded.model, &transcoders, tokens).unwrap();
            let t1 = Instant::now();
            let graph = attribute(&loaded.model, &replacement, &options).unwrap();
            let t2 = Instant::now();
            let pruned = Influence::of(&graph).prune(&graph, Thresholds::default());
            let t3 = Instant::now();
            shape = (graph.active_features, graph.len());
            assert!(pruned.nodes.iter().any(|&k| k));
            let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1000.0;
            runs.push([ms(t0, t1), ms(t1, t2), ms(t2, t3), ms(t0, t3)]);
        }
        runs.sort_by(|a, b| a[3].total_cmp(&b[3]));
        let m = runs[1];
        let cap = cap.map_or_else(|| "all".to_owned(), |c| c.to_string());
        println!(
            "{len:>6}  {:>6}  {cap:>5}  {:>5}  {:>8.1}  {:>12.1}  {:>18.1}  {:>8.1}",
            shape.0, shape.1, m[0], m[1], m[2], m[3]
        );
    }
}
