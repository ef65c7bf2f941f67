//! The model shapes every forward benchmark measures, native (`forward.rs`) and in the
//! browser (`tests/wasm_bench.rs`), so their numbers compare.

use glassbox_model::{Activation, Gpt2Config};

/// The default pack's shape (context widened to 256 to time 256 tokens) and GPT-2 small's.
pub(crate) fn bench_shapes() -> [(&'static str, Gpt2Config); 2] {
    let config = |n_layer, n_embd, n_head, n_positions, vocab_size| Gpt2Config {
        n_layer,
        n_head,
        n_embd,
        n_positions,
        vocab_size,
        layer_norm_epsilon: 1e-5,
        n_inner: None,
        activation_function: Activation::GeluTanh,
    };
    [
        (
            "default-pack shape (4 layers, d=256, 4 heads, vocab 8192)",
            config(4, 256, 4, 256, 8192),
        ),
        (
            "GPT-2 small shape (12 layers, d=768, 12 heads, vocab 50257)",
            config(12, 768, 12, 1024, 50257),
        ),
    ]
}
