//! GGUF files (llama.cpp's format: a header, typed metadata, tensor descriptions, then
//! aligned tensor data), read from bytes in memory.
//!
//! Everything a file claims is checked before it is believed: every length against the
//! bytes that remain, every tensor's extent against the data section (with checked
//! arithmetic), the alignment, the number of dimensions. A malformed file gets one line
//! naming the file and the problem; nothing a file says makes the reader allocate more
//! than the file's own size.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};

use crate::gguf_quants::ggml_type_name;
pub use crate::gguf_quants::{QuantizedMatrix, TensorType, dequantize, quantize};
use crate::llama::{LlamaConfig, LlamaWeights, TensorSource, rotary_dim};
use crate::rope::{Rope, RopeScaling};
use crate::{Activation, Llama, ModelError, Result};

const MAGIC: &[u8; 4] = b"GGUF";
const MAX_DIMS: usize = 4;
const MAX_DEPTH: usize = 4;

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Any unsigned integer type.
    Unsigned(u64),
    /// Any signed integer type.
    Signed(i64),
    /// `f32` or `f64`.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A UTF-8 string.
    Text(String),
    /// An array of values.
    Array(Vec<Value>),
}

/// Where one tensor is and how it is encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Shape, outermost first (as PyTorch and candle write it; GGUF stores it reversed).
    pub shape: Vec<usize>,
    /// The encoding.
    pub kind: TensorType,
    /// Start within the data section.
    pub offset: usize,
    /// Length in bytes.
    pub bytes: usize,
    /// Which file of a split model holds it (0 for a file on its own; see
    /// [`Gguf::parse_files`]).
    pub file: usize,
}

/// A parsed GGUF file (or the files of a split one), borrowing the bytes of its tensor
/// data.
#[derive(Debug)]
pub struct Gguf<'a> {
    pub(crate) name: String,
    pub(crate) metadata: BTreeMap<String, Value>,
    /// Each metadata entry's bytes as the file holds them (key, type, value), in order.
    pub(crate) raw_metadata: Vec<&'a [u8]>,
    pub(crate) tensors: BTreeMap<String, TensorInfo>,
    /// Each file's data section.
    pub(crate) data: Vec<&'a [u8]>,
}

/// Reads little-endian values from a byte slice, refusing to read past its end.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        if n > self.remaining() {
            return Err(format!(
                "truncated: {n} bytes needed at byte {}, {} left",
                self.at,
                self.remaining()
            ));
        }
        let slice = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u32(&mut self) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A count or length, which must fit in what remains at `min_size` bytes per item.
    fn count(&mut self, what: &str, min_size: usize) -> std::result::Result<usize, String> {
        let count = self.u64()?;
        let fits = usize::try_from(count)
            .ok()
            .filter(|c| c.saturating_mul(min_size.max(1)) <= self.remaining());
        fits.ok_or_else(|| {
            format!(
                "{what} claims {count} entries at byte {}, more than the {} bytes left can hold",
                self.at,
                self.remaining()
            )
        })
    }

    fn string(&mut self) -> std::result::Result<String, String> {
        let len = self.count("a string", 1)?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| format!("a string before byte {} is not UTF-8", self.at))
    }

    fn value(&mut self, kind: u32, depth: usize) -> std::result::Result<Value, String> {
        Ok(match kind {
            0 => Value::Unsigned(u64::from(self.array::<1>()?[0])),
            1 => Value::Signed(i64::from(i8::from_le_bytes(self.array()?))),
            2 => Value::Unsigned(u64::from(u16::from_le_bytes(self.array()?))),
            3 => Value::Signed(i64::from(i16::from_le_bytes(self.array()?))),
            4 => Value::Unsigned(u64::from(self.u32()?)),
            5 => Value::Signed(i64::from(i32::from_le_bytes(self.array()?))),
            6 => Value::Float(f64::from(f32::from_le_bytes(self.array()?))),
            7 => match self.array::<1>()?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                other => return Err(format!("a boolean is {other}")),
            },
            8 => Value::Text(self.string()?),
            9 => {
                if depth >= MAX_DEPTH {
                    return Err("arrays nested too deeply".to_owned());
                }
                let item = self.u32()?;
                let len = self.count("an array", min_value_size(item))?;
                let mut items = Vec::with_capacity(len);
                for _ in 0..len {
                    items.push(self.value(item, depth + 1)?);
                }
                Value::Array(items)
            }
            10 => Value::Unsigned(self.u64()?),
            11 => Value::Signed(i64::from_le_bytes(self.array()?)),
            12 => Value::Float(f64::from_le_bytes(self.array()?)),
            other => return Err(format!("unknown metadata value type {other}")),
        })
    }
}

/// The fewest bytes a value of type `kind` takes (so that a claimed array length can be
/// checked against the bytes left before anything is allocated).
fn min_value_size(kind: u32) -> usize {
    match kind {
        2 | 3 => 2,
        4..=6 => 4,
        8 | 10..=12 => 8,
        9 => 12,
        _ => 1,
    }
}

impl<'a> Gguf<'a> {
    /// Parses the header, metadata and tensor descriptions of `bytes`, a GGUF file called
    /// `name` (which every error names).
    pub fn parse(name: &str, bytes: &'a [u8]) -> Result<Self> {
        Self::parse_inner(name, bytes)
            .map_err(|problem| ModelError::Weights(format!("{name}: {problem}")))
    }

    fn parse_inner(name: &str, bytes: &'a [u8]) -> std::result::Result<Self, String> {
        let mut cursor = Cursor { bytes, at: 0 };
        if cursor.take(4).ok() != Some(MAGIC.as_slice()) {
            return Err("not a GGUF file (it does not start with `GGUF`)".to_owned());
        }
        let version = cursor.u32()?;
        if !(2..=3).contains(&version) {
            return Err(format!(
                "GGUF version {version}; Glassbox reads versions 2 and 3"
            ));
        }
        let tensor_count = cursor.count("the tensor count", 24)?;
        let metadata_count = cursor.count("the metadata count", 13)?;
        let mut metadata = BTreeMap::new();
        let mut raw_metadata = Vec::with_capacity(metadata_count);
        for _ in 0..metadata_count {
            let start = cursor.at;
            let key = cursor.string()?;
            let kind = cursor.u32()?;
            let value = cursor
                .value(kind, 0)
                .map_err(|e| format!("metadata `{key}`: {e}"))?;
            raw_metadata.push(&bytes[start..cursor.at]);
            metadata.insert(key, value);
        }
        let mut described = Vec::with_capacity(tensor_count);
        for _ in 0..tensor_count {
            let tensor = cursor.string()?;
            let rank = cursor.u32()? as usize;
            if rank == 0 || rank > MAX_DIMS {
                return Err(format!(
                    "tensor `{tensor}` has {rank} dimensions (1 to {MAX_DIMS})"
                ));
            }
            let mut shape = Vec::with_capacity(rank);
            for _ in 0..rank {
                shape.push(cursor.u64()?);
            }
            shape.reverse();
            let id = cursor.u32()?;
            let kind = TensorType::from_id(id).ok_or_else(|| {
                format!(
                    "tensor `{tensor}` has tensor type {id} ({}), which Glassbox does not \
                     read; it reads F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and Q2_K to \
                     Q6_K",
                    ggml_type_name(id)
                )
            })?;
            let offset = cursor.u64()?;
            described.push((tensor, shape, kind, offset));
        }
        let alignment = match metadata.get("general.alignment") {
            None => 32,
            Some(Value::Unsigned(a)) if a.is_power_of_two() && *a <= 1 << 16 => *a as usize,
            Some(other) => {
                return Err(format!(
                    "general.alignment is {other:?}, not a power of two"
                ));
            }
        };
        let data_start = cursor.at.div_ceil(alignment) * alignment;
        let data = bytes.get(data_start..).unwrap_or_default();
        let mut tensors = BTreeMap::new();
        for (tensor, shape, kind, offset) in described {
            let info = checked_extent(&tensor, &shape, kind, offset, alignment, data.len())?;
            if tensors.insert(tensor.clone(), info).is_some() {
                return Err(format!("tensor `{tensor}` is described twice"));
            }
        }
        Ok(Self {
            name: name.to_owned(),
            metadata,
            raw_metadata,
            tensors,
            data: vec![data],
        })
    }

    /// The metadata, by key.
    #[must_use]
    pub fn metadata(&self) -> &BTreeMap<String, Value> {
        &self.metadata
    }

    /// The tensors, by name.
    #[must_use]
    pub fn tensors(&self) -> &BTreeMap<String, TensorInfo> {
        &self.tensors
    }

    /// How many bytes the tensors take as f32 (what loading the model allocates).
    #[must_use]
    pub fn f32_bytes(&self) -> u64 {
        self.tensors
            .values()
            .map(|t| t.shape.iter().map(|&d| d as u64).product::<u64>() * 4)
            .sum()
    }

    /// The file's name, as errors give it.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn error(&self, problem: impl std::fmt::Display) -> ModelError {
        ModelError::Weights(format!("{}: {problem}", self.name))
    }

    /// A metadata value, or an error naming the missing key.
    pub(crate) fn get(&self, key: &str) -> Result<&Value> {
        self.metadata
            .get(key)
            .ok_or_else(|| self.error(format!("metadata `{key}` is missing")))
    }

    /// A metadata value as a count or size.
    pub(crate) fn size(&self, key: &str) -> Result<usize> {
        match self.get(key)? {
            Value::Unsigned(v) => usize::try_from(*v).ok(),
            Value::Signed(v) => usize::try_from(*v).ok(),
            _ => None,
        }
        .ok_or_else(|| self.error(format!("metadata `{key}` is not a size")))
    }

    pub(crate) fn number(&self, key: &str) -> Result<Option<f64>> {
        match self.metadata.get(key) {
            None => Ok(None),
            Some(Value::Float(v)) => Ok(Some(*v)),
            Some(Value::Unsigned(v)) => Ok(Some(*v as f64)),
            Some(Value::Signed(v)) => Ok(Some(*v as f64)),
            Some(_) => Err(self.error(format!("metadata `{key}` is not a number"))),
        }
    }

    pub(crate) fn text(&self, key: &str) -> Result<&str> {
        match self.get(key)? {
            Value::Text(text) => Ok(text),
            _ => Err(self.error(format!("metadata `{key}` is not a string"))),
        }
    }

    /// The tensor `name` as f32 with the given shape, dequantized.
    pub fn tensor(&self, name: &str) -> Result<Option<Tensor>> {
        let Some(info) = self.tensors.get(name) else {
            return Ok(None);
        };
        let raw = &self.data[info.file][info.offset..info.offset + info.bytes];
        let values = dequantize(info.kind, raw);
        Ok(Some(Tensor::from_vec(
            values,
            info.shape.as_slice(),
            &Device::Cpu,
        )?))
    }

    /// The Llama model this file describes.
    pub fn llama(&self) -> Result<Llama> {
        let architecture = self.text("general.architecture")?;
        if architecture != "llama" {
            return Err(self.error(format!(
                "architecture `{architecture}` is not supported (Glassbox reads llama and gpt2 GGUF files)"
            )));
        }
        let config = self.llama_config()?;
        let weights = LlamaWeights::read(self, &config).map_err(|e| match e {
            ModelError::Weights(problem) => self.error(problem),
            other => other,
        })?;
        Llama::new(config, weights)
    }

    fn llama_config(&self) -> Result<LlamaConfig> {
        let n_head = self.size("llama.attention.head_count")?;
        let d_model = self.size("llama.embedding_length")?;
        if n_head == 0 {
            return Err(self.error("llama.attention.head_count is 0"));
        }
        let d_head = match self.metadata.get("llama.attention.key_length") {
            Some(_) => self.size("llama.attention.key_length")?,
            None => d_model / n_head,
        };
        let rotary = match self.metadata.get("llama.rope.dimension_count") {
            Some(_) => self.size("llama.rope.dimension_count")?,
            None => d_head,
        };
        let vocab_size = match self.tensors.get("token_embd.weight") {
            Some(info) => info.shape[0],
            None => return Err(self.error("tensor `token_embd.weight` is missing")),
        };
        let scaling = match self.metadata.get("llama.rope.scaling.type") {
            None => RopeScaling::None,
            Some(Value::Text(kind)) if kind == "none" => RopeScaling::None,
            Some(Value::Text(kind)) if kind == "linear" => RopeScaling::Linear {
                factor: self.number("llama.rope.scaling.factor")?.unwrap_or(1.0),
            },
            Some(other) => {
                return Err(self.error(format!("rope scaling {other:?} is not supported")));
            }
        };
        let has = |name: &str| self.tensors.contains_key(name);
        let config = LlamaConfig {
            n_layer: self.size("llama.block_count")?,
            n_head,
            n_kv_head: match self.metadata.get("llama.attention.head_count_kv") {
                Some(_) => self.size("llama.attention.head_count_kv")?,
                None => n_head,
            },
            d_head,
            d_model,
            d_mlp: self.size("llama.feed_forward_length")?,
            n_positions: self.size("llama.context_length")?,
            vocab_size,
            rms_norm_eps: self
                .number("llama.attention.layer_norm_rms_epsilon")?
                .unwrap_or(1e-5),
            activation: Activation::Silu,
            rope: Rope {
                theta: self.number("llama.rope.freq_base")?.unwrap_or(10_000.0),
                rotary_dim: if d_head == 0 {
                    0
                } else {
                    rotary_dim(d_head, rotary as f64 / d_head as f64)?
                },
                scaling,
            },
            tie_word_embeddings: !has("output.weight"),
            attention_bias: has("blk.0.attn_q.bias"),
            mlp_bias: has("blk.0.ffn_up.bias"),
        };
        config.validate().map_err(|e| self.error(e))?;
        Ok(config)
    }
}

impl TensorSource for Gguf<'_> {
    /// Hugging Face names mapped to llama.cpp's; queries and keys un-permuted from
    /// llama.cpp's interleaved rotary layout back to Hugging Face's halves.
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Option<Tensor>> {
        let Some(gguf_name) = gguf_name(name) else {
            return Ok(None);
        };
        let Some(info) = self.tensors.get(&gguf_name) else {
            return Ok(None);
        };
        if info.shape != shape {
            return Err(ModelError::WeightShape {
                name: format!("{}: {gguf_name}", self.name),
                expected: shape.to_vec(),
                found: info.shape.clone(),
            });
        }
        let Some(tensor) = Gguf::tensor(self, &gguf_name)? else {
            return Ok(None);
        };
        Ok(Some(match self.rotary_heads(name)? {
            Some(heads) => unpermute(&tensor, heads)?,
            None => tensor,
        }))
    }

    /// `Q8_0`, `Q4_0` and `Q4_1` matrices as stored (rows un-permuted for queries and keys,
    /// as [`Self::tensor`] does).
    fn quantized(&self, name: &str, shape: &[usize]) -> Result<Option<QuantizedMatrix>> {
        let Some(info) = gguf_name(name).and_then(|n| self.tensors.get(&n)) else {
            return Ok(None);
        };
        let computable = matches!(
            info.kind,
            TensorType::Q8_0 | TensorType::Q4_0 | TensorType::Q4_1
        );
        let [rows, cols] = *shape else {
            return Ok(None);
        };
        if !computable || info.shape != shape {
            return Ok(None);
        }
        let stored = &self.data[info.file][info.offset..info.offset + info.bytes];
        let row_bytes = cols / info.kind.block_size() * info.kind.block_bytes();
        if row_bytes * rows != stored.len() {
            return Err(self.error(format!(
                "{name}: {} bytes for {rows} rows of {row_bytes}",
                stored.len()
            )));
        }
        let bytes = match self.rotary_heads(name)? {
            Some(heads) => unpermute_rows(stored, rows, row_bytes, heads)?.into(),
            None => std::sync::Arc::from(stored),
        };
        Ok(Some(QuantizedMatrix {
            kind: info.kind,
            rows,
            cols,
            bytes,
        }))
    }
}

impl Gguf<'_> {
    /// The heads whose rotary rows llama.cpp interleaved in `name` (queries and keys).
    fn rotary_heads(&self, name: &str) -> Result<Option<usize>> {
        Ok(
            if name.ends_with("q_proj.weight") || name.ends_with("q_proj.bias") {
                Some(self.size("llama.attention.head_count")?)
            } else if name.ends_with("k_proj.weight") || name.ends_with("k_proj.bias") {
                Some(match self.metadata.get("llama.attention.head_count_kv") {
                    Some(_) => self.size("llama.attention.head_count_kv")?,
                    None => self.size("llama.attention.head_count")?,
                })
            } else {
                None
            },
        )
    }
}

/// Hugging Face's order of a query/key matrix's `rows` as llama.cpp stores them: entry `r`
/// is the file's row for row `r` (row (h, pair, i) of the file is row (h, i, pair) in
/// Hugging Face's order: llama.cpp interleaves each head's rotary halves).
fn rotary_row_order(rows: usize, heads: usize) -> Result<Vec<usize>> {
    if heads == 0 || !rows.is_multiple_of(2 * heads) {
        return Err(ModelError::Weights(format!(
            "{rows} query/key rows cannot be split into {heads} heads of rotary pairs"
        )));
    }
    let half = rows / heads / 2;
    Ok((0..heads)
        .flat_map(|h| {
            (0..2).flat_map(move |i| (0..half).map(move |pair| (h * half + pair) * 2 + i))
        })
        .collect())
}

/// [`unpermute`] on whole rows of bytes (a quantized matrix's).
fn unpermute_rows(bytes: &[u8], rows: usize, row_bytes: usize, heads: usize) -> Result<Vec<u8>> {
    Ok(rotary_row_order(rows, heads)?
        .into_iter()
        .flat_map(|row| &bytes[row * row_bytes..(row + 1) * row_bytes])
        .copied()
        .collect())
}

/// llama.cpp's name for a Hugging Face Llama tensor.
fn gguf_name(hf: &str) -> Option<String> {
    let fixed = match hf {
        "model.embed_tokens.weight" => Some("token_embd.weight"),
        "model.norm.weight" => Some("output_norm.weight"),
        "lm_head.weight" => Some("output.weight"),
        _ => None,
    };
    if let Some(name) = fixed {
        return Some(name.to_owned());
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (layer, part) = rest.split_once('.')?;
    let (module, kind) = part.rsplit_once('.')?;
    let module = match module {
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" => "ffn_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        _ => return None,
    };
    Some(format!("blk.{layer}.{module}.{kind}"))
}

/// Undoes llama.cpp's reordering of each head's rows (`[out, …]`, `heads` heads) from
/// interleaved rotary pairs `(0, 1), (2, 3), …` to Hugging Face's halves.
fn unpermute(tensor: &Tensor, heads: usize) -> Result<Tensor> {
    let order: Vec<u32> = rotary_row_order(tensor.dim(0)?, heads)?
        .into_iter()
        .map(|row| row as u32)
        .collect();
    let order = Tensor::from_vec(order, tensor.dim(0)?, tensor.device())?;
    Ok(tensor.index_select(&order, 0)?)
}

/// Checks a tensor's shape and extent (as the file states them, in u64 on every
/// platform) against its type and the data section.
fn checked_extent(
    tensor: &str,
    shape: &[u64],
    kind: TensorType,
    offset: u64,
    alignment: usize,
    data_len: usize,
) -> std::result::Result<TensorInfo, String> {
    let impossible = || format!("tensor `{tensor}` has an impossible shape {shape:?}");
    let elements = shape
        .iter()
        .try_fold(1_u64, |n, &d| n.checked_mul(d))
        .filter(|&n| n > 0)
        .ok_or_else(impossible)?;
    let row = *shape.last().unwrap_or(&0);
    if !row.is_multiple_of(kind.block_size() as u64) {
        return Err(format!(
            "tensor `{tensor}`: rows of {row} values do not split into {kind:?} blocks of {}",
            kind.block_size()
        ));
    }
    let bytes = (elements / kind.block_size() as u64)
        .checked_mul(kind.block_bytes() as u64)
        .ok_or_else(|| format!("tensor `{tensor}` is impossibly large"))?;
    if offset
        .checked_add(bytes)
        .is_none_or(|end| end > data_len as u64)
    {
        return Err(format!(
            "tensor `{tensor}` claims bytes {offset}..{} of a data section of {data_len} \
             (truncated, or a lying length)",
            offset.saturating_add(bytes)
        ));
    }
    if !offset.is_multiple_of(alignment as u64) {
        return Err(format!(
            "tensor `{tensor}` starts at {offset}, not aligned to {alignment}"
        ));
    }
    // Within the data section, so within memory: every number fits a usize.
    let shape = shape
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| impossible()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(TensorInfo {
        shape,
        kind,
        offset: offset as usize,
        bytes: bytes as usize,
        file: 0,
    })
}

#[cfg(test)]
#[allow(clippy::float_cmp, reason = "these values are exact in f32")]
mod tests {
    use super::*;

    #[test]
    fn quantized_blocks_decode_as_ggml_defines_them() {
        let scale = half::f16::from_f32(0.5).to_le_bytes();
        let min = half::f16::from_f32(-1.0).to_le_bytes();
        let mut q4_1 = vec![scale[0], scale[1], min[0], min[1]];
        q4_1.extend((0..16_u8).map(|i| i | ((15 - i) << 4)));
        let values = dequantize(TensorType::Q4_1, &q4_1);
        assert_eq!(values[0], -1.0);
        assert_eq!(values[15], 15.0 * 0.5 - 1.0);
        assert_eq!(values[16], 15.0 * 0.5 - 1.0);
        assert_eq!(values[31], -1.0);
        let mut q4_0 = vec![scale[0], scale[1]];
        q4_0.extend([0x8F_u8; 16]);
        let values = dequantize(TensorType::Q4_0, &q4_0);
        assert_eq!((values[0], values[16]), (3.5, 0.0));
        let mut q8_0 = vec![scale[0], scale[1]];
        q8_0.extend((0..32_i8).map(|i| (i - 16).cast_unsigned()));
        let values = dequantize(TensorType::Q8_0, &q8_0);
        assert_eq!((values[0], values[31]), (-8.0, 7.5));
    }

    #[test]
    fn names_map_to_llama_cpp() {
        assert_eq!(
            gguf_name("model.layers.12.self_attn.q_proj.weight").unwrap(),
            "blk.12.attn_q.weight"
        );
        assert_eq!(
            gguf_name("model.layers.0.mlp.down_proj.bias").unwrap(),
            "blk.0.ffn_down.bias"
        );
        assert_eq!(
            gguf_name("model.norm.weight").unwrap(),
            "output_norm.weight"
        );
        assert!(gguf_name("model.layers.0.rotary_emb.inv_freq").is_none());
    }

    #[test]
    fn unpermuting_inverts_llama_cpp_permutation() {
        // Two heads of four rows: llama.cpp stores rows (0, 2, 1, 3) of each head.
        let hf: Vec<f32> = (0..8).map(|r| r as f32).collect();
        let gguf = Tensor::new(&[0_f32, 2.0, 1.0, 3.0, 4.0, 6.0, 5.0, 7.0], &Device::Cpu)
            .unwrap()
            .reshape((8, 1))
            .unwrap();
        let back: Vec<f32> = unpermute(&gguf, 2)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(back, hf);
    }
}
