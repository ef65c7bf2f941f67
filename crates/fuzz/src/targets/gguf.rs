//! `gguf`: a GGUF file through `Gguf::parse`, then what loading a model does with it:
//! its f32 size, `.llama()` and `.gpt2()` (config and every tensor, dequantized), the model
//! of the blocks it holds as the first file of a split model, and `.tokenizer()`
//! (the vocabulary rebuilt as a `tokenizer.json`), used to encode and decode a text.
//!
//! The repository has no small GGUF file (the model crate's test writes one from a
//! fixture), so the seeds are written here the same way: tiny Llamas in f32; in
//! `Q8_0`/`Q4_0`/`Q4_1`/f16/bf16 with tied embeddings, control tokens and the Llama 3
//! pre-tokenizer; and in the K-quants (random blocks) at width 256; and a tiny GPT-2 in
//! `Q8_0` as `gpt2_to_gguf` writes it.

use glassbox_model::gguf::{Gguf, TensorType, quantize};
use glassbox_model::gguf_split::split_gguf;
use glassbox_model::gguf_write::GgufVocabulary;
use glassbox_model::{Activation, Gpt2, Gpt2Config, Gpt2Weights, Model, gpt2_to_gguf};

use super::Target;
use crate::Behaviour;
use crate::rng::Rng;
use crate::seeds::{GgufTensor, Meta, gguf, values};

/// GGUF type ids.
const F32: u32 = 0;
const F16: u32 = 1;
const Q4_0: u32 = 2;
const Q4_1: u32 = 3;
const Q8_0: u32 = 8;
const Q2_K: u32 = 10;
const Q3_K: u32 = 11;
const Q4_K: u32 = 12;
const Q5_K: u32 = 13;
const Q6_K: u32 = 14;
const BF16: u32 = 30;

/// What the text encoded with a loaded tokenizer holds: ASCII, digits, accents, emoji.
const SAMPLE: &str = "The jury said 1234 times: \"café\" 😀\n";

pub(super) fn target() -> Target {
    Target {
        name: "gguf",
        text: false,
        seeds: vec![
            llama(32, &[F32; 8], true, "gpt-2"),
            llama(
                32,
                &[Q8_0, Q8_0, Q8_0, Q8_0, Q4_0, Q4_1, BF16, F16],
                false,
                "llama-bpe",
            ),
            llama(
                256,
                &[Q4_K, Q5_K, Q3_K, Q2_K, Q6_K, Q4_K, Q8_0, F32],
                false,
                "smollm",
            ),
            gpt2(),
            gpt2_first_file(),
        ],
        run: Box::new(run),
    }
}

fn run(input: &[u8]) -> Behaviour {
    let mut b = Behaviour::default();
    let Some(file) = b.stage("parse", Gguf::parse("fuzz.gguf", input)) else {
        return b;
    };
    let _ = file.f32_bytes();
    if let Some(model) = b.stage("llama", file.llama()) {
        let _ = model.config().dims();
    }
    if let Some(model) = b.stage("gpt2", file.gpt2()) {
        let _ = model.config().dims();
    }
    if let Some((model, _)) = b.stage(
        "first blocks",
        Model::from_first_gguf_files(&[("fuzz.gguf", input)]),
    ) {
        let _ = model.dims();
    }
    if let Some(tokenizer) = b.stage("tokenizer", file.tokenizer())
        && let Some(ids) = b.stage("encode", tokenizer.encode_ids(SAMPLE))
    {
        b.stage("decode", tokenizer.decode(&ids));
    }
    b
}

/// A one-block GPT-2 of width 32 (`Q8_0` matrices) as `gpt2_to_gguf` writes it, with a
/// vocabulary of printable bytes whose last token is a control token.
fn gpt2() -> Vec<u8> {
    let config = Gpt2Config {
        n_layer: 1,
        n_head: 2,
        n_embd: 32,
        n_positions: 32,
        vocab_size: 83,
        layer_norm_epsilon: 1e-5,
        n_inner: None,
        activation_function: Activation::GeluTanh,
    };
    let mut tokens: Vec<String> = ('!'..='r').map(String::from).collect();
    tokens.push("<|endoftext|>".to_owned());
    let mut types = vec![1; tokens.len()];
    types[82] = 3;
    let vocabulary = GgufVocabulary {
        tokens,
        types,
        merges: vec!["! \"".to_owned()],
        pre: "gpt-2".to_owned(),
        eos: Some(82),
    };
    Gpt2Weights::init(&config, 7)
        .and_then(|weights| Gpt2::new(config, weights))
        .and_then(|model| gpt2_to_gguf(&model, "fuzz", &vocabulary, TensorType::Q8_0))
        .unwrap_or_default()
}

/// The first file of [`gpt2`] split in two as `gguf-split` would (`split.*` metadata),
/// the final norm left to the second.
fn gpt2_first_file() -> Vec<u8> {
    split_gguf("fuzz.gguf", &gpt2(), |name| {
        !name.starts_with("output_norm")
    })
    .map(|[first, _]| first)
    .unwrap_or_default()
}

/// A one-block Llama of width `width` (4 heads, 2 key/value heads when narrow), its
/// tensors encoded as `kinds` says (queries, keys, values, output, gate, up, down,
/// norms), embeddings tied or not, with the pre-tokenizer `pre`.
fn llama(width: usize, kinds: &[u32; 8], untied: bool, pre: &'static str) -> Vec<u8> {
    let kv_heads = if width == 32 { 2 } else { 4 };
    let kv_width = width / 4 * kv_heads;
    let d_mlp = 32;
    // 82 printable bytes that GPT-2's byte-level map keeps, and one merge.
    let mut tokens: Vec<String> = ('!'..='r').map(String::from).collect();
    tokens.push("!\"".to_owned());
    let vocab = tokens.len();
    let mut types = vec![1; vocab];
    if !untied {
        types[vocab - 1] = 3;
    }
    let mut seed = 0;
    let mut tensor = |name: &str, shape: Vec<usize>, kind: u32| {
        seed += 1;
        GgufTensor {
            name: name.to_owned(),
            bytes: encode(kind, &shape, seed),
            shape,
            kind,
        }
    };
    let mut tensors = vec![
        tensor(
            "token_embd.weight",
            vec![vocab, width],
            if width == 32 { F32 } else { Q6_K },
        ),
        tensor("output_norm.weight", vec![width], F32),
        tensor("blk.0.attn_norm.weight", vec![width], kinds[7]),
        tensor("blk.0.attn_q.weight", vec![width, width], kinds[0]),
        tensor("blk.0.attn_k.weight", vec![kv_width, width], kinds[1]),
        tensor("blk.0.attn_v.weight", vec![kv_width, width], kinds[2]),
        tensor("blk.0.attn_output.weight", vec![width, width], kinds[3]),
        tensor("blk.0.ffn_norm.weight", vec![width], kinds[7]),
        tensor("blk.0.ffn_gate.weight", vec![d_mlp, width], kinds[4]),
        tensor("blk.0.ffn_up.weight", vec![d_mlp, width], kinds[5]),
        tensor("blk.0.ffn_down.weight", vec![width, d_mlp], kinds[6]),
    ];
    if untied {
        tensors.push(tensor("output.weight", vec![vocab, width], F32));
    }
    let metadata = [
        ("general.architecture", Meta::Text("llama")),
        ("general.alignment", Meta::U32(32)),
        ("llama.block_count", Meta::U32(1)),
        ("llama.embedding_length", Meta::U32(width as u32)),
        ("llama.feed_forward_length", Meta::U32(d_mlp as u32)),
        ("llama.attention.head_count", Meta::U32(4)),
        ("llama.attention.head_count_kv", Meta::U32(kv_heads as u32)),
        ("llama.context_length", Meta::U32(32)),
        ("llama.rope.freq_base", Meta::F32(10_000.0)),
        ("llama.attention.layer_norm_rms_epsilon", Meta::F32(1e-5)),
        ("tokenizer.ggml.model", Meta::Text("gpt2")),
        ("tokenizer.ggml.pre", Meta::Text(pre)),
        ("tokenizer.ggml.tokens", Meta::Texts(tokens)),
        ("tokenizer.ggml.token_type", Meta::U32s(types)),
        (
            "tokenizer.ggml.merges",
            Meta::Texts(vec!["! \"".to_owned()]),
        ),
    ];
    gguf(&metadata, &tensors)
}

/// A tensor's bytes in encoding `kind`: small values, quantized where `quantize` can,
/// random blocks for the K-quants.
fn encode(kind: u32, shape: &[usize], seed: u64) -> Vec<u8> {
    let len = shape.iter().product();
    let values = values(seed, len);
    match kind {
        F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        // 1.0 in f16; the norms' gains.
        F16 => [0x00, 0x3C].repeat(len),
        BF16 => values
            .iter()
            .flat_map(|v| [v.to_le_bytes()[2], v.to_le_bytes()[3]])
            .collect(),
        Q2_K | Q3_K | Q4_K | Q5_K | Q6_K => {
            let kind = TensorType::from_id(kind).unwrap_or(TensorType::F32);
            let mut rng = Rng::new(seed);
            (0..len / kind.block_size() * kind.block_bytes())
                .map(|_| rng.u64() as u8)
                .collect()
        }
        _ => TensorType::from_id(kind)
            .and_then(|kind| quantize(kind, &values))
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The GPT-2 seed is written with `unwrap_or_default`: it must not have become empty.
    #[test]
    fn the_gpt2_seed_is_a_gpt2_that_loads() {
        let bytes = gpt2();
        let file = Gguf::parse("seed.gguf", &bytes).map_err(|e| e.to_string());
        let loaded = file.and_then(|f| f.gpt2().map_err(|e| e.to_string()));
        assert_eq!(loaded.map(|m| m.config().n_embd), Ok(32));
    }
}
