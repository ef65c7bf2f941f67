//! The model's weights on the device, uploaded once, in f32.
//!
//! The token embedding is stored transposed, `[d, vocab]`, because the unembedding (the
//! largest product of a pass) reads it that way; the embedding gathers its columns. A
//! table larger than one storage binding allows (GPT-2's 50257 × 768 on a device with
//! WebGPU's default 128 MiB) is split into column chunks.

use candle_core::Tensor;
use glassbox_model::{Gpt2, LayerNormWeights};
use wgpu::util::DeviceExt;

use crate::{GpuContext, GpuError};

/// Columns `start .. start + cols` of a `[rows, columns]` matrix, as its own `[rows, cols]`.
#[derive(Debug, Clone)]
pub(crate) struct ColumnChunk {
    pub(crate) buffer: wgpu::Buffer,
    pub(crate) start: usize,
    pub(crate) cols: usize,
}

/// A LayerNorm's gain and bias.
#[derive(Debug, Clone)]
pub(crate) struct DeviceLayerNorm {
    pub(crate) weight: wgpu::Buffer,
    pub(crate) bias: wgpu::Buffer,
}

/// A linear layer: `[in, out]` weight and `[out]` bias.
#[derive(Debug, Clone)]
pub(crate) struct DeviceLinear {
    pub(crate) weight: wgpu::Buffer,
    pub(crate) bias: wgpu::Buffer,
    pub(crate) inputs: usize,
    pub(crate) outputs: usize,
}

/// One block's weights.
#[derive(Debug, Clone)]
pub(crate) struct DeviceBlock {
    pub(crate) ln_1: DeviceLayerNorm,
    pub(crate) qkv: DeviceLinear,
    pub(crate) attn_out: DeviceLinear,
    pub(crate) ln_2: DeviceLayerNorm,
    pub(crate) mlp_in: DeviceLinear,
    pub(crate) mlp_out: DeviceLinear,
}

/// Every weight of the model on the device.
#[derive(Debug, Clone)]
pub(crate) struct DeviceWeights {
    /// The token embedding, transposed and split: gathered from by the embedding.
    pub(crate) token_table: Vec<ColumnChunk>,
    /// The unembedding `[d, vocab]` in chunks: the token table itself when tied.
    pub(crate) unembedding: Vec<ColumnChunk>,
    pub(crate) positions: wgpu::Buffer,
    pub(crate) blocks: Vec<DeviceBlock>,
    pub(crate) ln_final: DeviceLayerNorm,
    /// Bytes of weights on the device.
    pub(crate) bytes: u64,
}

/// Uploads f32 tensors, checking each against the device's binding limit.
pub(crate) struct Uploader<'a> {
    ctx: &'a GpuContext,
    pub(crate) bytes: u64,
}

impl<'a> Uploader<'a> {
    pub(crate) fn new(ctx: &'a GpuContext) -> Self {
        Self { ctx, bytes: 0 }
    }

    /// The largest storage binding this device allows, in bytes.
    pub(crate) fn max_binding(&self) -> u64 {
        let limits = self.ctx.device().limits();
        limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size)
    }

    /// Uploads `values` as a read-only storage buffer.
    pub(crate) fn values(
        &mut self,
        what: &'static str,
        values: &[f32],
    ) -> Result<wgpu::Buffer, GpuError> {
        let needed = (values.len() as u64) * 4;
        if needed > self.max_binding() {
            return Err(GpuError::TooLarge {
                what,
                needed,
                allowed: self.max_binding(),
            });
        }
        self.bytes += needed;
        // An empty buffer cannot be bound: give it one element.
        let contents: &[f32] = if values.is_empty() { &[0.0] } else { values };
        Ok(self
            .ctx
            .device()
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(what),
                contents: bytemuck::cast_slice(contents),
                usage: wgpu::BufferUsages::STORAGE,
            }))
    }

    /// Uploads a tensor's values in row-major order.
    pub(crate) fn tensor(
        &mut self,
        what: &'static str,
        tensor: &Tensor,
    ) -> Result<wgpu::Buffer, GpuError> {
        let values = flat(tensor)?;
        self.values(what, &values)
    }

    /// Uploads `matrix` `[rows, columns]` as column chunks that each fit one binding.
    pub(crate) fn column_chunks(
        &mut self,
        what: &'static str,
        matrix: &Tensor,
    ) -> Result<Vec<ColumnChunk>, GpuError> {
        let (rows, columns) = matrix.dims2()?;
        let per_chunk = (self.max_binding() / (rows.max(1) as u64 * 4)).max(1) as usize;
        let mut chunks = Vec::new();
        let mut start = 0;
        while start < columns {
            let cols = per_chunk.min(columns - start);
            let part = matrix.narrow(1, start, cols)?;
            chunks.push(ColumnChunk {
                buffer: self.tensor(what, &part)?,
                start,
                cols,
            });
            start += cols;
        }
        Ok(chunks)
    }
}

/// A tensor's values in row-major order, as f32.
pub(crate) fn flat(tensor: &Tensor) -> Result<Vec<f32>, GpuError> {
    tensor
        .to_dtype(candle_core::DType::F32)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(GpuError::from)
}

impl DeviceWeights {
    /// Uploads every weight of `model`.
    pub(crate) fn upload(ctx: &GpuContext, model: &Gpt2) -> Result<Self, GpuError> {
        let w = model.weights();
        let mut up = Uploader::new(ctx);
        let transposed = |t: &Tensor| t.t().and_then(|t| t.contiguous());
        let token_table = up.column_chunks("token embedding", &transposed(&w.token_embedding)?)?;
        let unembedding = match &w.lm_head {
            Some(head) => up.column_chunks("unembedding", &transposed(head)?)?,
            None => token_table.clone(),
        };
        let positions = up.tensor("position embedding", &w.position_embedding)?;
        let layer_norm =
            |up: &mut Uploader<'_>, ln: &LayerNormWeights| -> Result<DeviceLayerNorm, GpuError> {
                Ok(DeviceLayerNorm {
                    weight: up.tensor("layer norm weight", &ln.weight)?,
                    bias: up.tensor("layer norm bias", &ln.bias)?,
                })
            };
        let linear = |up: &mut Uploader<'_>,
                      what,
                      weight: &Tensor,
                      bias: &Tensor|
         -> Result<DeviceLinear, GpuError> {
            let (inputs, outputs) = weight.dims2()?;
            Ok(DeviceLinear {
                weight: up.tensor(what, weight)?,
                bias: up.tensor(what, bias)?,
                inputs,
                outputs,
            })
        };
        let mut blocks = Vec::with_capacity(w.blocks.len());
        for b in &w.blocks {
            blocks.push(DeviceBlock {
                ln_1: layer_norm(&mut up, &b.ln_1)?,
                qkv: linear(&mut up, "attention qkv", &b.qkv_weight, &b.qkv_bias)?,
                attn_out: linear(
                    &mut up,
                    "attention output",
                    &b.attn_out_weight,
                    &b.attn_out_bias,
                )?,
                ln_2: layer_norm(&mut up, &b.ln_2)?,
                mlp_in: linear(&mut up, "MLP input", &b.mlp_in_weight, &b.mlp_in_bias)?,
                mlp_out: linear(&mut up, "MLP output", &b.mlp_out_weight, &b.mlp_out_bias)?,
            });
        }
        let ln_final = layer_norm(&mut up, &w.ln_final)?;
        Ok(Self {
            token_table,
            unembedding,
            positions,
            blocks,
            ln_final,
            bytes: up.bytes,
        })
    }
}
