//! A safetensors writer for seeds: an 8-byte little-endian header length, the JSON header
//! (padded with spaces to 8 bytes), then each tensor's bytes in order.

/// The encodings written.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Dtype {
    F32,
    /// bfloat16: an f32's upper half.
    Bf16,
}

/// A safetensors file of `tensors` (name, shape, values).
pub(crate) fn write(tensors: &[(&str, Vec<usize>, Vec<f32>)], dtype: Dtype) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, shape, values) in tensors {
        let start = data.len();
        for v in values {
            match dtype {
                Dtype::F32 => data.extend(v.to_le_bytes()),
                Dtype::Bf16 => data.extend(&v.to_le_bytes()[2..]),
            }
        }
        let dtype = match dtype {
            Dtype::F32 => "F32",
            Dtype::Bf16 => "BF16",
        };
        header.insert(
            (*name).to_owned(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let mut header = serde_json::Value::Object(header).to_string().into_bytes();
    header.resize(header.len().div_ceil(8) * 8, b' ');
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend(header);
    out.extend(data);
    out
}
