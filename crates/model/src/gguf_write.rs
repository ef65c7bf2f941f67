//! Writing GGUF files (version 3): typed metadata, tensor descriptions, then the tensor
//! data aligned to 32 bytes, as llama.cpp writes them; and the byte-level BPE vocabulary
//! of a Hugging Face `tokenizer.json` as GGUF's `tokenizer.ggml.*` keys.

use serde_json::Value as Json;

use crate::gguf::{TensorType, quantize};
use crate::{ModelError, Result};

/// The alignment of the data section and of each tensor in it (GGUF's default).
const ALIGNMENT: usize = 32;

/// A metadata value to write.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    /// `UINT16`.
    U16(u16),
    /// `UINT32`.
    U32(u32),
    /// `INT32`.
    I32(i32),
    /// `FLOAT32`.
    F32(f32),
    /// `BOOL`.
    Bool(bool),
    /// `STRING`.
    Text(String),
    /// An array of `STRING`.
    Texts(Vec<String>),
    /// An array of `INT32`.
    I32s(Vec<i32>),
}

/// A GGUF file being assembled: metadata and tensors, in the order they are added.
#[derive(Debug, Default)]
pub struct GgufWriter {
    /// Each metadata entry as the file holds it (key, type, value).
    metadata: Vec<Vec<u8>>,
    tensors: Vec<(String, Vec<usize>, TensorType, Vec<u8>)>,
}

impl GgufWriter {
    /// An empty file.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the metadata `key`.
    #[allow(
        clippy::needless_pass_by_value,
        reason = "callers build the value in the call; a reference would only add `&`s"
    )]
    pub fn meta(&mut self, key: &str, value: MetaValue) -> &mut Self {
        let mut entry = Vec::new();
        string(&mut entry, key);
        value.write(&mut entry);
        self.metadata.push(entry);
        self
    }

    /// Adds a metadata entry as another GGUF file holds it (key, type, value: one of
    /// [`crate::gguf::Gguf`]'s raw entries).
    pub(crate) fn raw_meta(&mut self, entry: &[u8]) -> &mut Self {
        self.metadata.push(entry.to_vec());
        self
    }

    /// Adds a tensor already encoded as `kind` (`bytes` as another GGUF file holds them).
    pub(crate) fn raw_tensor(
        &mut self,
        name: &str,
        shape: &[usize],
        kind: TensorType,
        bytes: &[u8],
    ) -> &mut Self {
        self.tensors
            .push((name.to_owned(), shape.to_vec(), kind, bytes.to_vec()));
        self
    }

    /// How many tensors it holds.
    pub(crate) fn tensor_count(&self) -> usize {
        self.tensors.len()
    }

    /// Adds `values` (row-major, `shape` outermost first) as the tensor `name` encoded as
    /// `kind` (f32, f16, or a block type [`quantize`] writes, whose rows must be whole
    /// blocks).
    pub fn tensor(
        &mut self,
        name: &str,
        shape: &[usize],
        values: &[f32],
        kind: TensorType,
    ) -> Result<&mut Self> {
        if shape.iter().product::<usize>() != values.len() {
            return Err(ModelError::Weights(format!(
                "`{name}`: {} values for the shape {shape:?}",
                values.len()
            )));
        }
        let bytes = match kind {
            TensorType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            TensorType::F16 => values
                .iter()
                .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                .collect(),
            _ => shape
                .last()
                .filter(|row| row.is_multiple_of(kind.block_size()))
                .and_then(|_| quantize(kind, values))
                .ok_or_else(|| {
                    ModelError::Weights(format!(
                        "`{name}` ({shape:?}) cannot be written as {kind:?}"
                    ))
                })?,
        };
        self.tensors
            .push((name.to_owned(), shape.to_vec(), kind, bytes));
        Ok(self)
    }

    /// The file's bytes.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(3_u32.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        out.extend((self.metadata.len() as u64).to_le_bytes());
        for entry in &self.metadata {
            out.extend(entry);
        }
        let mut offset = 0;
        for (name, shape, kind, bytes) in &self.tensors {
            string(&mut out, name);
            out.extend((shape.len() as u32).to_le_bytes());
            for dim in shape.iter().rev() {
                out.extend((*dim as u64).to_le_bytes());
            }
            out.extend(kind.id().to_le_bytes());
            out.extend((offset as u64).to_le_bytes());
            offset += bytes.len().next_multiple_of(ALIGNMENT);
        }
        out.resize(out.len().next_multiple_of(ALIGNMENT), 0);
        for (_, _, _, bytes) in &self.tensors {
            out.extend(bytes);
            out.resize(out.len().next_multiple_of(ALIGNMENT), 0);
        }
        out
    }
}

impl MetaValue {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Self::U16(v) => {
                out.extend(2_u32.to_le_bytes());
                out.extend(v.to_le_bytes());
            }
            Self::U32(v) => {
                out.extend(4_u32.to_le_bytes());
                out.extend(v.to_le_bytes());
            }
            Self::I32(v) => {
                out.extend(5_u32.to_le_bytes());
                out.extend(v.to_le_bytes());
            }
            Self::F32(v) => {
                out.extend(6_u32.to_le_bytes());
                out.extend(v.to_le_bytes());
            }
            Self::Bool(v) => {
                out.extend(7_u32.to_le_bytes());
                out.push(u8::from(*v));
            }
            Self::Text(v) => {
                out.extend(8_u32.to_le_bytes());
                string(out, v);
            }
            Self::Texts(items) => {
                out.extend(9_u32.to_le_bytes());
                out.extend(8_u32.to_le_bytes());
                out.extend((items.len() as u64).to_le_bytes());
                for item in items {
                    string(out, item);
                }
            }
            Self::I32s(items) => {
                out.extend(9_u32.to_le_bytes());
                out.extend(5_u32.to_le_bytes());
                out.extend((items.len() as u64).to_le_bytes());
                for item in items {
                    out.extend(item.to_le_bytes());
                }
            }
        }
    }
}

fn string(out: &mut Vec<u8>, text: &str) {
    out.extend((text.len() as u64).to_le_bytes());
    out.extend(text.as_bytes());
}

/// GGUF's token types (`tokenizer.ggml.token_type`).
const NORMAL: i32 = 1;
const CONTROL: i32 = 3;

/// A byte-level BPE vocabulary as GGUF stores it (`tokenizer.ggml.model = gpt2`).
#[derive(Debug, Clone, PartialEq)]
pub struct GgufVocabulary {
    /// Every token, by id.
    pub tokens: Vec<String>,
    /// Each token's type: normal, or control for special added tokens.
    pub types: Vec<i32>,
    /// The merges in order, each `"a b"`.
    pub merges: Vec<String>,
    /// llama.cpp's name for the pre-tokenizer (`tokenizer.ggml.pre`).
    pub pre: String,
    /// The end-of-text token: the first special added token, if there is one.
    pub eos: Option<u32>,
}

impl GgufVocabulary {
    /// The vocabulary of a GPT-2-style `tokenizer.json` (byte-level BPE with GPT-2's split
    /// and no prefix space); anything else is refused by name, since GGUF could not say it.
    pub fn from_tokenizer_json(json: &str) -> Result<Self> {
        let refuse = |problem: String| ModelError::Tokenizer(format!("tokenizer.json: {problem}"));
        let root: Json = serde_json::from_str(json).map_err(|e| refuse(e.to_string()))?;
        let pre = &root["pre_tokenizer"];
        if pre["type"] != "ByteLevel"
            || pre["add_prefix_space"] == true
            || pre["use_regex"] == false
        {
            return Err(refuse(format!(
                "its pre-tokenizer {pre} is not GPT-2's (byte-level, GPT-2's split, no prefix \
                 space), which is all a GGUF file written here can name"
            )));
        }
        let model = &root["model"];
        if model["type"] != "BPE" {
            return Err(refuse(format!("model type {} is not BPE", model["type"])));
        }
        let vocab = model["vocab"]
            .as_object()
            .ok_or_else(|| refuse("no model.vocab".to_owned()))?;
        let mut tokens = vec![None; vocab.len()];
        for (token, id) in vocab {
            let slot = id
                .as_u64()
                .and_then(|id| tokens.get_mut(usize::try_from(id).ok()?))
                .ok_or_else(|| refuse(format!("token `{token}` has the id {id}")))?;
            if slot.replace(token.clone()).is_some() {
                return Err(refuse(format!("two tokens have the id {id}")));
            }
        }
        let tokens: Vec<String> = tokens
            .into_iter()
            .collect::<Option<_>>()
            .ok_or_else(|| refuse("the ids are not 0 to the vocabulary's size".to_owned()))?;
        let merges = model["merges"]
            .as_array()
            .ok_or_else(|| refuse("no model.merges".to_owned()))?
            .iter()
            .map(|merge| match merge {
                Json::String(pair) => Some(pair.clone()),
                Json::Array(pair) => match pair.as_slice() {
                    [Json::String(a), Json::String(b)] => Some(format!("{a} {b}")),
                    _ => None,
                },
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| refuse("a merge is not a pair of strings".to_owned()))?;
        let mut types = vec![NORMAL; tokens.len()];
        let mut eos = None;
        for added in root["added_tokens"].as_array().into_iter().flatten() {
            let id = added["id"].as_u64().and_then(|id| u32::try_from(id).ok());
            let Some(slot) = id.and_then(|id| types.get_mut(id as usize)) else {
                return Err(refuse(format!(
                    "added token {added} is not in the vocabulary"
                )));
            };
            if added["special"] == true {
                *slot = CONTROL;
                eos = eos.or(id);
            }
        }
        Ok(Self {
            tokens,
            types,
            merges,
            pre: "gpt-2".to_owned(),
            eos,
        })
    }

    /// Adds the `tokenizer.ggml.*` keys to `file`.
    pub fn write_into(&self, file: &mut GgufWriter) {
        file.meta("tokenizer.ggml.model", MetaValue::Text("gpt2".to_owned()))
            .meta("tokenizer.ggml.pre", MetaValue::Text(self.pre.clone()))
            .meta(
                "tokenizer.ggml.tokens",
                MetaValue::Texts(self.tokens.clone()),
            )
            .meta(
                "tokenizer.ggml.token_type",
                MetaValue::I32s(self.types.clone()),
            )
            .meta(
                "tokenizer.ggml.merges",
                MetaValue::Texts(self.merges.clone()),
            )
            .meta("tokenizer.ggml.add_bos_token", MetaValue::Bool(false));
        if let Some(eos) = self.eos {
            file.meta("tokenizer.ggml.bos_token_id", MetaValue::U32(eos))
                .meta("tokenizer.ggml.eos_token_id", MetaValue::U32(eos));
        }
    }
}
