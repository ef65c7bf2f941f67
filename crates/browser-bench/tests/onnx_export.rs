//! The ONNX export read back with a protobuf reader of the test's own: every weight is an
//! initializer with its transformers name, shape and bytes; the graph is in order (each
//! node's inputs exist before it) and ends in `logits`; each block has the operators of
//! a GPT-2 block. That the graph computes what the CPU engine computes is checked each
//! time `cargo xtask bench` runs it in onnxruntime-web (logits to within 1e-3).
#![allow(clippy::unwrap_used, reason = "tests")]

use std::collections::{BTreeMap, HashSet};

use glassbox_browser_bench::{INPUT_IDS, LOGITS, gpt2_onnx};
use glassbox_model::{Activation, Gpt2Config, Gpt2Weights};

/// A field's value as the wire format carries it.
#[derive(Clone, Copy)]
enum Value<'a> {
    Varint(u64),
    Fixed32,
    Bytes(&'a [u8]),
}

/// The fields of one protobuf message, in order.
fn fields(mut bytes: &[u8]) -> Vec<(u64, Value<'_>)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let key = varint(&mut bytes);
        let value = match key & 7 {
            0 => Value::Varint(varint(&mut bytes)),
            5 => {
                bytes = &bytes[4..];
                Value::Fixed32
            }
            2 => {
                let len = varint(&mut bytes) as usize;
                let (value, rest) = bytes.split_at(len);
                bytes = rest;
                Value::Bytes(value)
            }
            other => panic!("wire type {other} is not written by the exporter"),
        };
        out.push((key >> 3, value));
    }
    out
}

fn varint(bytes: &mut &[u8]) -> u64 {
    let mut value = 0;
    for shift in (0..64).step_by(7) {
        let byte = bytes[0];
        *bytes = &bytes[1..];
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return value;
        }
    }
    panic!("a varint longer than ten bytes")
}

fn all(message: &[u8], field: u64) -> Vec<Value<'_>> {
    fields(message)
        .into_iter()
        .filter(|(f, _)| *f == field)
        .map(|(_, v)| v)
        .collect()
}

fn bytes(value: Value<'_>) -> &[u8] {
    match value {
        Value::Bytes(bytes) => bytes,
        _ => panic!("a length-delimited field expected"),
    }
}

fn int(value: Value<'_>) -> u64 {
    match value {
        Value::Varint(v) => v,
        _ => panic!("a varint field expected"),
    }
}

fn string(value: Value<'_>) -> String {
    String::from_utf8(bytes(value).to_vec()).unwrap()
}

fn one(message: &[u8], field: u64) -> Value<'_> {
    let values = all(message, field);
    assert_eq!(values.len(), 1, "field {field} once");
    values[0]
}

fn config() -> Gpt2Config {
    Gpt2Config {
        n_layer: 2,
        n_head: 2,
        n_embd: 16,
        n_positions: 8,
        vocab_size: 11,
        layer_norm_epsilon: 1e-5,
        n_inner: None,
        activation_function: Activation::GeluTanh,
    }
}

#[test]
fn every_weight_is_an_initializer_with_its_name_shape_and_bytes() {
    let config = config();
    let weights = Gpt2Weights::init(&config, 3).unwrap();
    let model = gpt2_onnx(&config, &weights).unwrap();
    // ModelProto: ir_version 8, the default domain at opset 17.
    assert_eq!(int(one(&model, 1)), 8);
    let opset = bytes(one(&model, 8));
    assert_eq!(string(one(opset, 1)), "");
    assert_eq!(int(one(opset, 2)), 17);
    let graph = bytes(one(&model, 7));
    // TensorProto: dims 1, data_type 2 (FLOAT = 1), name 8, raw_data 9.
    let initializers: BTreeMap<String, &[u8]> = all(graph, 5)
        .into_iter()
        .map(|t| (string(one(bytes(t), 8)), bytes(t)))
        .collect();
    for (name, tensor) in weights.named() {
        let name = name.trim_start_matches("transformer.");
        let proto = initializers
            .get(name)
            .unwrap_or_else(|| panic!("{name} is not an initializer"));
        assert_eq!(int(one(proto, 2)), 1, "{name} is float");
        let dims: Vec<usize> = all(proto, 1).into_iter().map(|d| int(d) as usize).collect();
        assert_eq!(dims, tensor.dims(), "{name}'s shape");
        let expected: Vec<u8> = tensor
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert!(bytes(one(proto, 9)) == expected, "{name}'s bytes");
    }
}

#[test]
fn the_graph_is_in_order_and_each_block_has_a_gpt2_blocks_operators() {
    let config = config();
    let weights = Gpt2Weights::init(&config, 3).unwrap();
    let model = gpt2_onnx(&config, &weights).unwrap();
    let graph = bytes(one(&model, 7));
    let mut defined: HashSet<String> = all(graph, 5)
        .into_iter()
        .map(|t| string(one(bytes(t), 8)))
        .collect();
    let inputs: Vec<String> = all(graph, 11)
        .into_iter()
        .map(|v| string(one(bytes(v), 1)))
        .collect();
    assert_eq!(inputs, [INPUT_IDS]);
    defined.extend(inputs);
    let mut ops: BTreeMap<String, usize> = BTreeMap::new();
    // NodeProto: input 1, output 2, op_type 4.
    for node in all(graph, 1) {
        let node = bytes(node);
        let op = string(one(node, 4));
        for input in all(node, 1) {
            let input = string(input);
            assert!(
                defined.contains(&input),
                "{op} reads {input} before it is made"
            );
        }
        for output in all(node, 2) {
            assert!(defined.insert(string(output)), "{op} makes a name twice");
        }
        *ops.entry(op).or_default() += 1;
    }
    let outputs: Vec<String> = all(graph, 12)
        .into_iter()
        .map(|v| string(one(bytes(v), 1)))
        .collect();
    assert_eq!(outputs, [LOGITS]);
    assert!(defined.contains(LOGITS), "no node makes the logits");
    let blocks = config.n_layer;
    assert_eq!(ops["LayerNormalization"], 2 * blocks + 1);
    assert_eq!(ops["Softmax"], blocks);
    // Per block: queries-keys-values, scores, mixing, output, MLP in and out.
    assert_eq!(ops["MatMul"], 6 * blocks);
    assert_eq!(ops["Tanh"], blocks);
    assert_eq!(ops["Gemm"], 1, "the unembedding");
    assert_eq!(ops["Trilu"], 1, "one causal mask for every block");
}
