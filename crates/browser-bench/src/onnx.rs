//! An ONNX model written from scratch: a graph of standard operators (opset 17) whose
//! weights are initializers, encoded as `onnx.proto`'s `ModelProto`. Field numbers are
//! those of `onnx.proto`; only what a transformer's forward pass needs is here.

use candle_core::{DType, Tensor};

use crate::BenchError;
use crate::protobuf::Message;

/// The IR version of ONNX 1.12, the first to hold opset 17.
const IR_VERSION: i64 = 8;
/// The default domain's operator set the graph is written in.
pub(crate) const OPSET: i64 = 17;

/// `TensorProto.DataType`.
#[derive(Clone, Copy)]
pub(crate) enum ElemType {
    Float = 1,
    Int64 = 7,
}

/// One dimension of a graph input's or output's shape.
pub(crate) enum Dim<'s> {
    /// A fixed size.
    Fixed(usize),
    /// A size given at run time, by name.
    Named(&'s str),
}

/// An operator's attribute.
pub(crate) enum Attr<'a> {
    Int(i64),
    Float(f32),
    Ints(Vec<i64>),
    Tensor(Message<'a>),
}

/// A graph being written: its nodes, initializers, inputs and outputs.
#[derive(Default)]
pub(crate) struct Graph<'a> {
    nodes: Vec<Message<'a>>,
    initializers: Vec<Message<'a>>,
    inputs: Vec<Message<'a>>,
    outputs: Vec<Message<'a>>,
    values: usize,
}

impl<'a> Graph<'a> {
    /// Adds a node of `op` on `inputs` with one output, named for it; returns that name.
    pub(crate) fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<(&str, Attr<'a>)>) -> String {
        self.op_n(op, inputs, 1, attrs).remove(0)
    }

    /// Adds a node of `op` with `outputs` outputs; returns their names.
    pub(crate) fn op_n(
        &mut self,
        op: &str,
        inputs: &[&str],
        outputs: usize,
        attrs: Vec<(&str, Attr<'a>)>,
    ) -> Vec<String> {
        let index = self.nodes.len();
        let names: Vec<String> = (0..outputs).map(|o| format!("{op}_{index}_{o}")).collect();
        self.node(op, inputs, &names, attrs);
        names
    }

    /// Adds a node of `op` whose one output is named `output` (a graph output's name).
    pub(crate) fn op_to(
        &mut self,
        op: &str,
        inputs: &[&str],
        output: &str,
        attrs: Vec<(&str, Attr<'a>)>,
    ) {
        self.node(op, inputs, &[output.to_owned()], attrs);
    }

    fn node(&mut self, op: &str, inputs: &[&str], names: &[String], attrs: Vec<(&str, Attr<'a>)>) {
        let index = self.nodes.len();
        let mut node = Message::new();
        for input in inputs {
            node = node.string(1, input);
        }
        for name in names {
            node = node.string(2, name);
        }
        node = node.string(3, &format!("{op}_{index}")).string(4, op);
        for (name, attr) in attrs {
            node = node.message(5, attribute(name, attr));
        }
        self.nodes.push(node);
    }

    /// Adds a float tensor of the model's weights as an initializer named `name`.
    pub(crate) fn weight(&mut self, name: &str, tensor: &'a Tensor) -> Result<String, BenchError> {
        if tensor.dtype() != DType::F32 {
            return Err(BenchError::Export(format!(
                "{name}: {:?} weights, f32 expected",
                tensor.dtype()
            )));
        }
        let len = tensor.elem_count() * 4;
        let dims: Vec<i64> = tensor.dims().iter().map(|&d| dim(d)).collect();
        let proto = tensor_header(name, ElemType::Float, &dims).payload(9, len, move |out| {
            let values = tensor.flatten_all()?.to_vec1::<f32>()?;
            for value in values {
                out.extend_from_slice(&value.to_le_bytes());
            }
            Ok(())
        });
        self.initializers.push(proto);
        Ok(name.to_owned())
    }

    /// Adds a constant int64 tensor of shape `dims`; returns its name.
    pub(crate) fn ints(&mut self, dims: &[i64], values: &[i64]) -> String {
        let name = self.fresh("ints");
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers
            .push(tensor_header(&name, ElemType::Int64, dims).bytes(9, raw));
        name
    }

    /// Adds a constant float scalar; returns its name.
    pub(crate) fn scalar(&mut self, value: f32) -> String {
        let name = self.fresh("scalar");
        self.initializers.push(float_tensor(&name, &[], value));
        name
    }

    /// Declares a graph input.
    pub(crate) fn input(&mut self, name: &str, elem: ElemType, shape: &[Dim<'_>]) {
        self.inputs.push(value_info(name, elem, shape));
    }

    /// Declares a graph output (a node's output of that name: [`Self::op_to`]).
    pub(crate) fn output(&mut self, name: &str, elem: ElemType, shape: &[Dim<'_>]) {
        self.outputs.push(value_info(name, elem, shape));
    }

    /// The model holding this graph.
    pub(crate) fn into_model(self, name: &str) -> Message<'a> {
        let mut graph = Message::new();
        for node in self.nodes {
            graph = graph.message(1, node);
        }
        graph = graph.string(2, name);
        for initializer in self.initializers {
            graph = graph.message(5, initializer);
        }
        for input in self.inputs {
            graph = graph.message(11, input);
        }
        for output in self.outputs {
            graph = graph.message(12, output);
        }
        Message::new()
            .int(1, IR_VERSION)
            .string(2, "glassbox")
            .message(7, graph)
            .message(8, Message::new().string(1, "").int(2, OPSET))
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.values += 1;
        format!("{prefix}_{}", self.values)
    }
}

/// A size as ONNX writes it (int64).
pub(crate) fn dim(size: usize) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}

/// A float tensor of one repeated value (`dims` empty: a scalar), as an attribute's or an
/// initializer's `TensorProto`.
pub(crate) fn float_tensor<'a>(name: &str, dims: &[i64], value: f32) -> Message<'a> {
    let count: i64 = dims.iter().product();
    let raw = (0..count).flat_map(|_| value.to_le_bytes()).collect();
    tensor_header(name, ElemType::Float, dims).bytes(9, raw)
}

fn tensor_header<'a>(name: &str, elem: ElemType, dims: &[i64]) -> Message<'a> {
    let mut proto = Message::new();
    for &dim in dims {
        proto = proto.int(1, dim);
    }
    proto.int(2, elem as i64).string(8, name)
}

fn attribute<'a>(name: &str, attr: Attr<'a>) -> Message<'a> {
    // `AttributeProto.AttributeType`: FLOAT 1, INT 2, TENSOR 4, INTS 7.
    let proto = Message::new().string(1, name);
    match attr {
        Attr::Float(value) => proto.float(2, value).int(20, 1),
        Attr::Int(value) => proto.int(3, value).int(20, 2),
        Attr::Tensor(tensor) => proto.message(5, tensor).int(20, 4),
        Attr::Ints(values) => values
            .into_iter()
            .fold(proto, |proto, value| proto.int(8, value))
            .int(20, 7),
    }
}

fn value_info<'a>(name: &str, elem: ElemType, shape: &[Dim<'_>]) -> Message<'a> {
    let mut dims = Message::new();
    for size in shape {
        dims = dims.message(
            1,
            match size {
                Dim::Fixed(size) => Message::new().int(1, dim(*size)),
                Dim::Named(name) => Message::new().string(2, name),
            },
        );
    }
    let tensor_type = Message::new().int(1, elem as i64).message(2, dims);
    Message::new()
        .string(1, name)
        .message(2, Message::new().message(1, tensor_type))
}
