//! How the default pack's model reads a prompt with and without `<|endoftext|>` in
//! front: the mean loss (nats per token) on the 31 tokens after each document's first,
//! and on a 32-token window from a document's 60th token, with the separator before the
//! window and without; held-out and training documents of at least 100 tokens. The
//! measurement behind reading prompts as typed by default (README, `glassbox graph
//! --bos`):
//!
//! `cargo run --release -p glassbox-lab --example bos_nll`
#![allow(
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    reason = "a measurement that fails should stop loudly; counts are small"
)]

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    use std::path::Path;

    use glassbox_lab::Lab;
    use glassbox_pack::{Split, dir};

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../www/packs/brown");
    let lab = Lab::from_pack(dir::load(&root).unwrap()).unwrap();
    let corpus = lab.corpus().unwrap().clone();
    for split in [Split::Eval, Split::Train] {
        // Document start without, with; window without, with.
        let mut totals = [0.0_f64; 4];
        let mut documents = 0;
        for (d, entry) in corpus.index.documents.iter().enumerate() {
            let tokens = corpus.document(d).unwrap();
            if entry.split != split || tokens.len() < 100 {
                continue;
            }
            let separator = tokens[0];
            for (i, window) in [&tokens[1..33], &tokens[60..92]].into_iter().enumerate() {
                let mut with = vec![separator];
                with.extend_from_slice(&window[..31]);
                totals[2 * i] += loss(&lab, &window[..31], 0, &window[1..]);
                totals[2 * i + 1] += loss(&lab, &with, 1, &window[1..]);
            }
            documents += 1;
        }
        let [start, start_with, middle, middle_with] = totals.map(|t| t / f64::from(documents));
        println!(
            "{documents} {split:?} documents: at the start {start:.4} nats without \
             <|endoftext|>, {start_with:.4} with; in the middle {middle:.4} without, \
             {middle_with:.4} with"
        );
    }
}

/// The mean loss of `targets` read off `ids`' logits from row `from` on.
#[cfg(not(target_arch = "wasm32"))]
fn loss(lab: &glassbox_lab::Lab, ids: &[u32], from: usize, targets: &[u32]) -> f64 {
    use glassbox_engine::{Logits, LogitsRead};
    let request = glassbox_lab::PassRequest::logits(LogitsRead::All);
    let output = pollster::block_on(lab.pass(ids, &request)).unwrap();
    let Some(Logits::Rows { rows, values }) = output.logits else {
        panic!("no logits");
    };
    let vocab = values.len() / rows;
    let total: f64 = targets
        .iter()
        .enumerate()
        .map(|(i, &target)| {
            let row = &values[(from + i) * vocab..(from + i + 1) * vocab];
            let max = f64::from(row.iter().copied().fold(f32::MIN, f32::max));
            let sum: f64 = row.iter().map(|&x| (f64::from(x) - max).exp()).sum();
            max + sum.ln() - f64::from(row[target as usize])
        })
        .sum();
    total / targets.len() as f64
}

#[cfg(target_arch = "wasm32")]
fn main() {}
