//! GGUF files: a Llama golden fixture written as GGUF the way llama.cpp's converter writes
//! it (its names, its interleaved query/key rows, metadata for the config, a byte-level
//! BPE vocabulary) reads back to the reference's logits; and every kind of malformed file
//! gets one line naming the file and the problem, never a panic or a huge allocation.
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

mod common;

use candle_core::{DType, Tensor};
use common::{find, gguf_refusal as refusal, llama_fixtures, max_abs_diff};
use glassbox_model::{Hooks, Model};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// A metadata value as GGUF stores it.
enum Meta {
    U32(u32),
    F32(f32),
    Text(&'static str),
    Texts(Vec<String>),
}

/// A tensor: name, shape (outermost first), GGUF type id, bytes.
struct Blob {
    name: String,
    shape: Vec<usize>,
    kind: u32,
    bytes: Vec<u8>,
}

fn string(out: &mut Vec<u8>, text: &str) {
    out.extend((text.len() as u64).to_le_bytes());
    out.extend(text.as_bytes());
}

/// A GGUF v3 file of `metadata` and `tensors`, data aligned to 32 bytes.
fn write(metadata: &[(&str, Meta)], tensors: &[Blob]) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend(3_u32.to_le_bytes());
    out.extend((tensors.len() as u64).to_le_bytes());
    out.extend((metadata.len() as u64).to_le_bytes());
    for (key, value) in metadata {
        string(&mut out, key);
        match value {
            Meta::U32(v) => {
                out.extend(4_u32.to_le_bytes());
                out.extend(v.to_le_bytes());
            }
            Meta::F32(v) => {
                out.extend(6_u32.to_le_bytes());
                out.extend(v.to_le_bytes());
            }
            Meta::Text(v) => {
                out.extend(8_u32.to_le_bytes());
                string(&mut out, v);
            }
            Meta::Texts(items) => {
                out.extend(9_u32.to_le_bytes());
                out.extend(8_u32.to_le_bytes());
                out.extend((items.len() as u64).to_le_bytes());
                for item in items {
                    string(&mut out, item);
                }
            }
        }
    }
    let mut offset = 0_usize;
    for blob in tensors {
        string(&mut out, &blob.name);
        out.extend((blob.shape.len() as u32).to_le_bytes());
        for dim in blob.shape.iter().rev() {
            out.extend((*dim as u64).to_le_bytes());
        }
        out.extend(blob.kind.to_le_bytes());
        out.extend((offset as u64).to_le_bytes());
        offset += blob.bytes.len().div_ceil(32) * 32;
    }
    out.resize(out.len().div_ceil(32) * 32, 0);
    for blob in tensors {
        out.extend(&blob.bytes);
        out.resize(out.len().div_ceil(32) * 32, 0);
    }
    out
}

/// llama.cpp's row order for a query or key weight of `heads` heads (`[out, in]`).
fn permute(tensor: &Tensor, heads: usize) -> Tensor {
    let (rows, cols) = tensor.dims2().unwrap();
    tensor
        .reshape((heads, 2, rows / heads / 2, cols))
        .unwrap()
        .transpose(1, 2)
        .unwrap()
        .contiguous()
        .unwrap()
        .reshape((rows, cols))
        .unwrap()
}

fn f32_blob(name: &str, tensor: &Tensor) -> Blob {
    let values: Vec<f32> = tensor.flatten_all().unwrap().to_vec1().unwrap();
    Blob {
        name: name.to_owned(),
        shape: tensor.dims().to_vec(),
        kind: 0,
        bytes: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

/// The `llama_gqa` fixture (6 query heads, 2 key/value heads, untied) as a GGUF file.
fn fixture_as_gguf() -> Vec<u8> {
    let fixture = &llama_fixtures()[0];
    let file =
        candle_core::safetensors::load_buffer(fixture.shards[0].1, &candle_core::Device::Cpu)
            .unwrap();
    let get = |name: &str| file[name].to_dtype(DType::F32).unwrap();
    let mut tensors = vec![
        f32_blob("token_embd.weight", &get("model.embed_tokens.weight")),
        f32_blob("output_norm.weight", &get("model.norm.weight")),
        f32_blob("output.weight", &get("lm_head.weight")),
    ];
    for l in 0..2 {
        let hf = |part: &str| get(&format!("model.layers.{l}.{part}.weight"));
        let blk = |part: &str| format!("blk.{l}.{part}.weight");
        tensors.extend([
            f32_blob(&blk("attn_norm"), &hf("input_layernorm")),
            f32_blob(&blk("attn_q"), &permute(&hf("self_attn.q_proj"), 6)),
            f32_blob(&blk("attn_k"), &permute(&hf("self_attn.k_proj"), 2)),
            f32_blob(&blk("attn_v"), &hf("self_attn.v_proj")),
            f32_blob(&blk("attn_output"), &hf("self_attn.o_proj")),
            f32_blob(&blk("ffn_norm"), &hf("post_attention_layernorm")),
            f32_blob(&blk("ffn_gate"), &hf("mlp.gate_proj")),
            f32_blob(&blk("ffn_up"), &hf("mlp.up_proj")),
            f32_blob(&blk("ffn_down"), &hf("mlp.down_proj")),
        ]);
    }
    // A byte-level vocabulary of 83 tokens: 82 printable bytes GPT-2 maps to themselves,
    // and one merge of the first two.
    let mut tokens: Vec<String> = ('!'..='r').map(String::from).collect();
    tokens.push("!\"".to_owned());
    assert_eq!(tokens.len(), 83);
    let metadata = [
        ("general.architecture", Meta::Text("llama")),
        ("llama.block_count", Meta::U32(2)),
        ("llama.embedding_length", Meta::U32(48)),
        ("llama.feed_forward_length", Meta::U32(40)),
        ("llama.attention.head_count", Meta::U32(6)),
        ("llama.attention.head_count_kv", Meta::U32(2)),
        ("llama.context_length", Meta::U32(32)),
        ("llama.rope.freq_base", Meta::F32(10_000.0)),
        ("llama.attention.layer_norm_rms_epsilon", Meta::F32(1e-5)),
        ("tokenizer.ggml.model", Meta::Text("gpt2")),
        ("tokenizer.ggml.pre", Meta::Text("gpt-2")),
        ("tokenizer.ggml.tokens", Meta::Texts(tokens)),
        (
            "tokenizer.ggml.merges",
            Meta::Texts(vec!["! \"".to_owned()]),
        ),
    ];
    write(&metadata, &tensors)
}

both! {
    fn a_gguf_file_reads_back_to_the_reference_logits() {
        let fixture = &llama_fixtures()[0];
        let (model, tokenizer) = Model::from_gguf("fixture.gguf", &fixture_as_gguf()).unwrap();
        let logits = model.forward_ids(&fixture.tokens(), &mut Hooks::none()).unwrap();
        let expected = fixture.expected()["logits"].squeeze(0).unwrap();
        let diff = max_abs_diff(&logits, &expected);
        assert!(diff < 1e-4, "logits differ by {diff}");
        assert_eq!(tokenizer.encode_ids("!\"#!").unwrap(), vec![82, 2, 0]);
    }
}

both! {
    fn every_truncation_is_refused_by_name() {
        let bytes = fixture_as_gguf();
        // Cut inside the header, the metadata, the tensor table and the data.
        for cut in [0, 3, 7, 20, 100, 400, 1500, 2500, bytes.len() / 2, bytes.len() - 1] {
            let error = refusal(&bytes[..cut]);
            assert!(
                error.contains("truncated") || error.contains("not a GGUF file")
                    || error.contains("more than the") || error.contains("claims bytes"),
                "cut at {cut}: {error}"
            );
        }
    }
}

both! {
    fn lying_headers_are_refused_by_name() {
        let good = fixture_as_gguf();
        // The tensor count: 2^60 tensors.
        let mut bytes = good.clone();
        bytes[8..16].copy_from_slice(&(1_u64 << 60).to_le_bytes());
        assert!(refusal(&bytes).contains("the tensor count claims"));
        // The vocabulary array claims 2^40 strings.
        let mut bytes = good.clone();
        let at = find(&bytes, b"tokenizer.ggml.tokens") + "tokenizer.ggml.tokens".len() + 8;
        bytes[at..at + 8].copy_from_slice(&(1_u64 << 40).to_le_bytes());
        assert!(refusal(&bytes).contains("an array claims"));
        // A tensor of a type Glassbox does not read (IQ2_XXS).
        let mut bytes = good.clone();
        let at = find(&bytes, b"blk.1.ffn_down.weight") + "blk.1.ffn_down.weight".len() + 4 + 16;
        bytes[at..at + 4].copy_from_slice(&16_u32.to_le_bytes());
        let error = refusal(&bytes);
        assert!(error.contains("tensor type 16 (an IQ type)") && error.contains("blk.1.ffn_down.weight"), "{error}");
        // A tensor whose shape disagrees with the metadata: ffn_down claims 39 inputs.
        let mut bytes = good.clone();
        let at = find(&bytes, b"blk.1.ffn_down.weight") + "blk.1.ffn_down.weight".len() + 4;
        bytes[at..at + 8].copy_from_slice(&39_u64.to_le_bytes());
        let error = refusal(&bytes);
        assert!(error.contains("blk.1.ffn_down.weight") && error.contains("[48, 39]"), "{error}");
        // A tensor claiming bytes past the end of the file.
        let mut bytes = good.clone();
        let at = find(&bytes, b"output.weight") + "output.weight".len() + 4 + 16 + 4;
        bytes[at..at + 8].copy_from_slice(&(1_u64 << 50).to_le_bytes());
        assert!(refusal(&bytes).contains("claims bytes"));
        // Dimensions whose product overflows.
        let mut bytes = good.clone();
        let at = find(&bytes, b"output.weight") + "output.weight".len() + 4;
        bytes[at..at + 16].copy_from_slice(&[0xff; 16]);
        assert!(refusal(&bytes).contains("impossible shape"));
        // Not GGUF at all, and a future version.
        assert!(refusal(b"PK\x03\x04 a zip file").contains("not a GGUF file"));
        let mut bytes = good;
        bytes[4] = 9;
        assert!(refusal(&bytes).contains("version 9"));
    }
}
