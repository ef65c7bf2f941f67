//! Time to compute an attribution graph on the default pack for 16-, 48- and 64-token
//! prompts, natively on the CPU engine, with every active feature a node and with the
//! page's cap (the most influential 2048): tracing the prompt, attributing (the
//! transposed passes), influence and pruning. Run by `cargo xtask bench`; numbers, no
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
