//! Tensors from one or more safetensors files (a Hugging Face checkpoint, sharded or
//! not), by name, converted to f32.

use candle_core::{DType, Device, Tensor};
use safetensors::SafeTensors;

use crate::llama::TensorSource;
use crate::{ModelError, Result};

/// The shards of one checkpoint, already parsed.
pub struct SafetensorsSource<'a> {
    shards: Vec<(String, SafeTensors<'a>)>,
}

impl<'a> SafetensorsSource<'a> {
    /// Parses each `(file name, bytes)`; the name appears in errors.
    pub fn new(files: &[(&str, &'a [u8])]) -> Result<Self> {
        let shards = files
            .iter()
            .map(|(name, bytes)| {
                SafeTensors::deserialize(bytes)
                    .map(|file| ((*name).to_owned(), file))
                    .map_err(|e| {
                        ModelError::Weights(format!("{name}: not a valid safetensors file: {e}"))
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        if shards.is_empty() {
            return Err(ModelError::Weights("no safetensors file given".to_owned()));
        }
        Ok(Self { shards })
    }

    fn find(&self, name: &str) -> Option<(&str, safetensors::tensor::TensorView<'_>)> {
        let bare = name.strip_prefix("model.");
        self.shards.iter().find_map(|(file, shard)| {
            shard
                .tensor(name)
                .ok()
                .or_else(|| bare.and_then(|b| shard.tensor(b).ok()))
                .map(|view| (file.as_str(), view))
        })
    }
}

impl TensorSource for SafetensorsSource<'_> {
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Option<Tensor>> {
        let Some((file, view)) = self.find(name) else {
            return Ok(None);
        };
        if view.shape() != shape {
            return Err(ModelError::WeightShape {
                name: format!("{file}: {name}"),
                expected: shape.to_vec(),
                found: view.shape().to_vec(),
            });
        }
        let dtype = match view.dtype() {
            safetensors::Dtype::F32 => DType::F32,
            safetensors::Dtype::F16 => DType::F16,
            safetensors::Dtype::BF16 => DType::BF16,
            other => {
                return Err(ModelError::Weights(format!(
                    "{file}: tensor `{name}` is {other:?}; Glassbox reads f32, f16 and bf16 weights"
                )));
            }
        };
        let tensor = Tensor::from_raw_buffer(view.data(), dtype, shape, &Device::Cpu)?;
        Ok(Some(tensor.to_dtype(DType::F32)?))
    }
}
