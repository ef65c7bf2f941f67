//! A GPT-2 written as an ONNX graph of standard operators (opset 17), with the same
//! weights as the CPU engine's [`Gpt2`](glassbox_model::Gpt2), one operator for each step
//! of transformers' forward pass (`gelu_new` written out with `Pow` and `Tanh`, as
//! transformers writes it), so that onnxruntime does the work it would do for an exported
//! transformers GPT-2: `input_ids` `[1, tokens]` (int64) in, `logits` `[1, tokens, vocab]`
//! out.

use glassbox_model::{Activation, Gpt2Config, Gpt2Weights, LayerNormWeights};

use crate::BenchError;
use crate::onnx::{Attr, Dim, ElemType, Graph, dim, float_tensor};

/// The graph input's name: the token ids, `[1, tokens]`.
pub const INPUT_IDS: &str = "input_ids";
/// The graph output's name: every position's logits, `[1, tokens, vocab]`.
pub const LOGITS: &str = "logits";

/// `weights` of the GPT-2 `config` describes, as the bytes of an ONNX model.
pub fn gpt2_onnx(config: &Gpt2Config, weights: &Gpt2Weights) -> Result<Vec<u8>, BenchError> {
    let mut graph = Graph::default();
    graph.input(
        INPUT_IDS,
        ElemType::Int64,
        &[Dim::Fixed(1), Dim::Named("tokens")],
    );
    let wte = graph.weight("wte.weight", &weights.token_embedding)?;
    let tokens = graph.op("Gather", &[&wte, INPUT_IDS], vec![]);
    let (positions, mask) = positions_and_causal_mask(&mut graph);
    let wpe = graph.weight("wpe.weight", &weights.position_embedding)?;
    let placed = graph.op("Gather", &[&wpe, &positions], vec![]);
    let mut residual = graph.op("Add", &[&tokens, &placed], vec![]);
    for (layer, block) in weights.blocks.iter().enumerate() {
        // Each layer's weight and bias, under transformers' names (`h.0.ln_1.weight`, …).
        let mut pair = |name: &str, weight, bias| -> Result<(String, String), BenchError> {
            let prefix = format!("h.{layer}.{name}");
            Ok((
                graph.weight(&format!("{prefix}.weight"), weight)?,
                graph.weight(&format!("{prefix}.bias"), bias)?,
            ))
        };
        let w = BlockNames {
            ln_1: pair("ln_1", &block.ln_1.weight, &block.ln_1.bias)?,
            qkv: pair("attn.c_attn", &block.qkv_weight, &block.qkv_bias)?,
            attn_out: pair("attn.c_proj", &block.attn_out_weight, &block.attn_out_bias)?,
            ln_2: pair("ln_2", &block.ln_2.weight, &block.ln_2.bias)?,
            mlp_in: pair("mlp.c_fc", &block.mlp_in_weight, &block.mlp_in_bias)?,
            mlp_out: pair("mlp.c_proj", &block.mlp_out_weight, &block.mlp_out_bias)?,
        };
        let normed = layer_norm(&mut graph, &residual, &w.ln_1, config.layer_norm_epsilon);
        let attended = attention(&mut graph, config, &normed, &mask, &w);
        residual = graph.op("Add", &[&residual, &attended], vec![]);
        let normed = layer_norm(&mut graph, &residual, &w.ln_2, config.layer_norm_epsilon);
        let hidden = linear(&mut graph, &normed, &w.mlp_in);
        let activated = activation(&mut graph, config.activation_function, &hidden);
        let out = linear(&mut graph, &activated, &w.mlp_out);
        residual = graph.op("Add", &[&residual, &out], vec![]);
    }
    let LayerNormWeights { weight, bias } = &weights.ln_final;
    let ln_f = (
        graph.weight("ln_f.weight", weight)?,
        graph.weight("ln_f.bias", bias)?,
    );
    let normed = layer_norm(&mut graph, &residual, &ln_f, config.layer_norm_epsilon);
    // The unembedding as `Gemm` with the embedding transposed in place (tied, as GPT-2's).
    let unembedding = match &weights.lm_head {
        Some(head) => graph.weight("lm_head.weight", head)?,
        None => wte,
    };
    let d = dim(config.n_embd);
    let rows_shape = graph.ints(&[2], &[-1, d]);
    let rows = graph.op("Reshape", &[&normed, &rows_shape], vec![]);
    let logits = graph.op(
        "Gemm",
        &[&rows, &unembedding],
        vec![("transB", Attr::Int(1))],
    );
    let logits_shape = graph.ints(&[3], &[1, -1, dim(config.vocab_size)]);
    graph.op_to("Reshape", &[&logits, &logits_shape], LOGITS, vec![]);
    graph.output(
        LOGITS,
        ElemType::Float,
        &[
            Dim::Fixed(1),
            Dim::Named("tokens"),
            Dim::Fixed(config.vocab_size),
        ],
    );
    graph.into_model("gpt2").encode()
}

/// The initializers' names of one block: each layer's `(weight, bias)`.
struct BlockNames {
    ln_1: (String, String),
    qkv: (String, String),
    attn_out: (String, String),
    ln_2: (String, String),
    mlp_in: (String, String),
    mlp_out: (String, String),
}

/// The positions `0..tokens` (`[tokens]`, int64) and the causal mask `[tokens, tokens]`
/// (0 on and below the diagonal, -inf above), both from `input_ids`' shape.
fn positions_and_causal_mask(graph: &mut Graph<'_>) -> (String, String) {
    let shape = graph.op("Shape", &[INPUT_IDS], vec![]);
    let one = graph.ints(&[], &[1]);
    let zero = graph.ints(&[], &[0]);
    let count = graph.op("Gather", &[&shape, &one], vec![]);
    let positions = graph.op("Range", &[&zero, &count, &one], vec![]);
    let axes = graph.ints(&[1], &[0]);
    let count_1d = graph.op("Unsqueeze", &[&count, &axes], vec![]);
    let square = graph.op(
        "Concat",
        &[&count_1d, &count_1d],
        vec![("axis", Attr::Int(0))],
    );
    let filled = graph.op(
        "ConstantOfShape",
        &[&square],
        vec![(
            "value",
            Attr::Tensor(float_tensor("value", &[1], f32::NEG_INFINITY)),
        )],
    );
    let mask = graph.op("Trilu", &[&filled, &one], vec![("upper", Attr::Int(1))]);
    (positions, mask)
}

fn layer_norm(
    graph: &mut Graph<'_>,
    x: &str,
    (gain, bias): &(String, String),
    epsilon: f64,
) -> String {
    graph.op(
        "LayerNormalization",
        &[x, gain, bias],
        vec![
            ("axis", Attr::Int(-1)),
            ("epsilon", Attr::Float(epsilon as f32)),
        ],
    )
}

/// `x · W + b` with `W` stored `[in, out]` (transformers' `Conv1D`).
fn linear(graph: &mut Graph<'_>, x: &str, (weight, bias): &(String, String)) -> String {
    let product = graph.op("MatMul", &[x, weight], vec![]);
    graph.op("Add", &[&product, bias], vec![])
}

/// Causal multi-head self-attention of `x` `[1, tokens, d]`, its output projection
/// included.
fn attention(
    graph: &mut Graph<'_>,
    config: &Gpt2Config,
    x: &str,
    mask: &str,
    w: &BlockNames,
) -> String {
    let d = dim(config.n_embd);
    let heads = dim(config.n_head);
    let d_head = dim(config.d_head());
    let qkv = linear(graph, x, &w.qkv);
    let sizes = graph.ints(&[3], &[d, d, d]);
    let split = graph.op_n("Split", &[&qkv, &sizes], 3, vec![("axis", Attr::Int(2))]);
    let by_head = graph.ints(&[4], &[1, -1, heads, d_head]);
    let mut heads_of = |value: &str, perm: &[i64]| {
        let reshaped = graph.op("Reshape", &[value, &by_head], vec![]);
        graph.op(
            "Transpose",
            &[&reshaped],
            vec![("perm", Attr::Ints(perm.to_vec()))],
        )
    };
    let queries = heads_of(&split[0], &[0, 2, 1, 3]);
    let keys_transposed = heads_of(&split[1], &[0, 2, 3, 1]);
    let values = heads_of(&split[2], &[0, 2, 1, 3]);
    let scores = graph.op("MatMul", &[&queries, &keys_transposed], vec![]);
    let scale = graph.scalar(1.0 / (d_head as f32).sqrt());
    let scaled = graph.op("Mul", &[&scores, &scale], vec![]);
    let masked = graph.op("Add", &[&scaled, mask], vec![]);
    let pattern = graph.op("Softmax", &[&masked], vec![("axis", Attr::Int(-1))]);
    let mixed = graph.op("MatMul", &[&pattern, &values], vec![]);
    let by_position = graph.op(
        "Transpose",
        &[&mixed],
        vec![("perm", Attr::Ints(vec![0, 2, 1, 3]))],
    );
    let merged_shape = graph.ints(&[3], &[1, -1, d]);
    let merged = graph.op("Reshape", &[&by_position, &merged_shape], vec![]);
    linear(graph, &merged, &w.attn_out)
}

/// The MLP's activation, written out as transformers writes it (`gelu_new` with `pow`).
fn activation(graph: &mut Graph<'_>, kind: Activation, x: &str) -> String {
    match kind {
        Activation::GeluTanh => {
            // 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))
            let three = graph.scalar(3.0);
            let cubed = graph.op("Pow", &[x, &three], vec![]);
            let c = graph.scalar(0.044_715);
            let scaled_cube = graph.op("Mul", &[&cubed, &c], vec![]);
            let inner = graph.op("Add", &[x, &scaled_cube], vec![]);
            let root = graph.scalar((2.0 / std::f32::consts::PI).sqrt());
            let argument = graph.op("Mul", &[&inner, &root], vec![]);
            let tanh = graph.op("Tanh", &[&argument], vec![]);
            half_x_times_one_plus(graph, x, &tanh)
        }
        Activation::GeluErf => {
            // 0.5 · x · (1 + erf(x / √2))
            let root2 = graph.scalar(std::f32::consts::SQRT_2);
            let divided = graph.op("Div", &[x, &root2], vec![]);
            let erf = graph.op("Erf", &[&divided], vec![]);
            half_x_times_one_plus(graph, x, &erf)
        }
        Activation::Relu => graph.op("Relu", &[x], vec![]),
        Activation::Silu => {
            let sigmoid = graph.op("Sigmoid", &[x], vec![]);
            graph.op("Mul", &[x, &sigmoid], vec![])
        }
    }
}

/// `0.5 · x · (1 + f)`, how both GELUs end.
fn half_x_times_one_plus(graph: &mut Graph<'_>, x: &str, f: &str) -> String {
    let one = graph.scalar(1.0);
    let shifted = graph.op("Add", &[f, &one], vec![]);
    let half = graph.scalar(0.5);
    let half_x = graph.op("Mul", &[x, &half], vec![]);
    graph.op("Mul", &[&half_x, &shifted], vec![])
}
