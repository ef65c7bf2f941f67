//! Our tokenizer wrapper against the `tokenizers` reference (Python) on tricky text:
//! ids, character offsets and decoding.
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

mod common;

use glassbox_model::Tokenizer;
use serde::Deserialize;

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

#[derive(Deserialize)]
struct Case {
    text: String,
    ids: Vec<u32>,
    offsets: Vec<(usize, usize)>,
    decoded: String,
}

fn tokenizer() -> Tokenizer {
    Tokenizer::from_json(include_bytes!("fixtures/tokenizer/tokenizer.json")).unwrap()
}

both! {
    fn ids_offsets_and_decoding_match_the_reference() {
        let tokenizer = tokenizer();
        let cases: Vec<Case> = serde_json::from_str(include_str!("fixtures/tokenizer/expected.json")).unwrap();
        assert!(cases.len() >= 6);
        for case in cases {
            let tokens = tokenizer.encode(&case.text).unwrap();
            let ids: Vec<u32> = tokens.iter().map(|t| t.id).collect();
            let offsets: Vec<(usize, usize)> = tokens.iter().map(|t| (t.start, t.end)).collect();
            assert_eq!(ids, case.ids, "{:?}", case.text);
            assert_eq!(offsets, case.offsets, "{:?}", case.text);
            assert_eq!(tokenizer.decode(&ids).unwrap(), case.decoded);
            let chars: Vec<char> = case.text.chars().collect();
            for token in &tokens {
                assert_eq!(token.text, chars[token.start..token.end].iter().collect::<String>());
            }
        }
    }
}

both! {
    fn a_malformed_tokenizer_is_an_error() {
        let error = Tokenizer::from_json(b"{\"model\": 3}").unwrap_err().to_string();
        assert!(error.starts_with("tokenizer: not a valid tokenizer.json"), "{error}");
        assert_eq!(tokenizer().token_id("<|endoftext|>"), Some(0));
    }
}

both! {
    fn a_syntax_error_in_the_decoder_is_an_error_not_a_panic() {
        // Found by `cargo xtask fuzz`: `tokenizers` panicked on it.
        let good = include_str!("fixtures/tokenizer/tokenizer.json");
        let decoder = good.find("\"decoder\"").unwrap();
        let at = decoder + good[decoder..].find("\"add_prefix_space\"").unwrap();
        // A stray letter, and a lone surrogate's escape.
        for insert in ["w", "\"\\ud800\": 1, "] {
            let bad = format!("{}{insert}{}", &good[..at], &good[at..]);
            let error = Tokenizer::from_json(bad.as_bytes()).unwrap_err().to_string();
            assert!(error.starts_with("tokenizer: not a valid tokenizer.json"), "{error}");
        }
    }
}
