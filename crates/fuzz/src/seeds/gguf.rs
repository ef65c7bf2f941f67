//! A GGUF (version 3) writer for seeds, as llama.cpp lays a file out: the header, typed
//! metadata, tensor descriptions (shape innermost first), then the data, each tensor
//! aligned to 32 bytes.

/// A metadata value.
pub(crate) enum Meta {
    U32(u32),
    F32(f32),
    Text(&'static str),
    Texts(Vec<String>),
    U32s(Vec<u32>),
}

/// A tensor: name, shape (outermost first), GGUF type id, bytes.
pub(crate) struct Tensor {
    pub(crate) name: String,
    pub(crate) shape: Vec<usize>,
    pub(crate) kind: u32,
    pub(crate) bytes: Vec<u8>,
}

const ALIGNMENT: usize = 32;

fn string(out: &mut Vec<u8>, text: &str) {
    out.extend((text.len() as u64).to_le_bytes());
    out.extend(text.as_bytes());
}

/// A GGUF file of `metadata` and `tensors`.
pub(crate) fn write(metadata: &[(&str, Meta)], tensors: &[Tensor]) -> Vec<u8> {
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
            Meta::U32s(items) => {
                out.extend(9_u32.to_le_bytes());
                out.extend(4_u32.to_le_bytes());
                out.extend((items.len() as u64).to_le_bytes());
                for item in items {
                    out.extend(item.to_le_bytes());
                }
            }
        }
    }
    let mut offset = 0;
    for tensor in tensors {
        string(&mut out, &tensor.name);
        out.extend((tensor.shape.len() as u32).to_le_bytes());
        for dim in tensor.shape.iter().rev() {
            out.extend((*dim as u64).to_le_bytes());
        }
        out.extend(tensor.kind.to_le_bytes());
        out.extend((offset as u64).to_le_bytes());
        offset += tensor.bytes.len().div_ceil(ALIGNMENT) * ALIGNMENT;
    }
    for tensor in tensors {
        out.resize(out.len().div_ceil(ALIGNMENT) * ALIGNMENT, 0);
        out.extend(&tensor.bytes);
    }
    out
}
