//! `tokenizer`: a `tokenizer.json` through `Tokenizer::from_json`, then what the app does
//! with one: encode a text with offsets, decode the ids, look tokens up.

use glassbox_model::Tokenizer;

use super::Target;
use crate::Behaviour;
use crate::seeds::repo_file;

/// The model crate's byte-level BPE fixture (400 tokens).
const SEED: &str = "crates/model/tests/fixtures/tokenizer/tokenizer.json";

/// Texts encoded with a loaded tokenizer: ASCII, digits and spaces, accents and emoji,
/// nothing.
const SAMPLES: [&str; 3] = ["The jury said 1234  times,\n", "café 😀 \u{0} e\u{301}", ""];

pub(super) fn target() -> Result<Target, String> {
    Ok(Target {
        name: "tokenizer",
        text: true,
        seeds: vec![repo_file(SEED)?],
        run: Box::new(run),
    })
}

fn run(input: &[u8]) -> Behaviour {
    let mut b = Behaviour::default();
    let Some(tokenizer) = b.stage("parse", Tokenizer::from_json(input)) else {
        return b;
    };
    for sample in SAMPLES {
        if let Some(tokens) = b.stage("encode", tokenizer.encode(sample)) {
            let ids: Vec<u32> = tokens.iter().map(|t| t.id).collect();
            b.stage("decode", tokenizer.decode(&ids));
        }
    }
    let last = u32::try_from(tokenizer.vocab_size()).unwrap_or(u32::MAX);
    for id in [0, last.saturating_sub(1), last, u32::MAX] {
        let _ = tokenizer.token_text(id);
    }
    let _ = tokenizer.token_id("the");
    b
}
