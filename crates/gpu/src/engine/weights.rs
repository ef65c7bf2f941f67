//! The model's weights on the device, uploaded once: in f32, or, for a GGUF file's
//! `Q8_0`, `Q4_0` and `Q4_1` linear layers when asked ([`QuantizedWeights::AsStored`]),
//! in their blocks, which the kernels dequantize as they read them.
//!
//! The token embedding is stored transposed, `[d, vocab]`, because the unembedding (the
//! largest product of a pass) reads it that way; the embedding gathers its columns. A
//! table larger than one storage binding allows (GPT-2's 50257 × 768 on a device with
//! WebGPU's default 128 MiB) is split into column chunks.

use candle_core::Tensor;
use glassbox_model::gguf::{QuantizedMatrix, TensorType};
use glassbox_model::llama::Linear;
use glassbox_model::{Gpt2, LayerNormWeights, Llama, Model};
use wgpu::util::DeviceExt;

use crate::kernels::params::QuantFormat;
use crate::{GpuContext, GpuError};

/// Columns `start .. start + cols` of a `[rows, columns]` matrix, as its own `[rows, cols]`.
#[derive(Debug, Clone)]
pub(crate) struct ColumnChunk {
    pub(crate) buffer: wgpu::Buffer,
    pub(crate) start: usize,
    pub(crate) cols: usize,
}

/// A LayerNorm's gain and bias, or an `RMSNorm`'s gain (no bias).
#[derive(Debug, Clone)]
pub(crate) struct DeviceLayerNorm {
    pub(crate) weight: wgpu::Buffer,
    pub(crate) bias: Option<wgpu::Buffer>,
}

/// How a model's quantized weights go to the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QuantizedWeights {
    /// Dequantized to f32 as they are uploaded.
    #[default]
    Dequantized,
    /// Kept in their blocks (`Q8_0`, `Q4_0`, `Q4_1` linear layers), dequantized by the
    /// kernels as they read them: a quarter to an eighth of the memory.
    AsStored,
}

/// A linear layer: `[in, out]` f32 weight (or `[out, in]` blocks) and an optional `[out]`
/// bias.
#[derive(Debug, Clone)]
pub(crate) struct DeviceLinear {
    pub(crate) weight: wgpu::Buffer,
    pub(crate) bias: Option<wgpu::Buffer>,
    pub(crate) inputs: usize,
    pub(crate) outputs: usize,
    /// The blocks' format and bytes per row, when `weight` holds blocks.
    pub(crate) quantized: Option<(QuantFormat, usize)>,
}

/// One GPT-2 block's weights.
#[derive(Debug, Clone)]
pub(crate) struct Gpt2Block {
    pub(crate) ln_1: DeviceLayerNorm,
    pub(crate) qkv: DeviceLinear,
    pub(crate) attn_out: DeviceLinear,
    pub(crate) ln_2: DeviceLayerNorm,
    pub(crate) mlp_in: DeviceLinear,
    pub(crate) mlp_out: DeviceLinear,
}

/// One Llama block's weights.
#[derive(Debug, Clone)]
pub(crate) struct LlamaBlock {
    pub(crate) ln_1: DeviceLayerNorm,
    pub(crate) q: DeviceLinear,
    pub(crate) k: DeviceLinear,
    pub(crate) v: DeviceLinear,
    pub(crate) o: DeviceLinear,
    pub(crate) ln_2: DeviceLayerNorm,
    pub(crate) gate: DeviceLinear,
    pub(crate) up: DeviceLinear,
    pub(crate) down: DeviceLinear,
}

/// The blocks, as their family has them.
#[derive(Debug, Clone)]
pub(crate) enum DeviceBlocks {
    Gpt2(Vec<Gpt2Block>),
    Llama(Vec<LlamaBlock>),
}

/// Every weight of the model on the device.
#[derive(Debug, Clone)]
pub(crate) struct DeviceWeights {
    /// The token embedding, transposed and split: gathered from by the embedding.
    pub(crate) token_table: Vec<ColumnChunk>,
    /// The unembedding `[d, vocab]` in chunks: the token table itself when tied.
    pub(crate) unembedding: Vec<ColumnChunk>,
    /// Learned position embeddings (GPT-2; a Llama rotates queries and keys instead).
    pub(crate) positions: Option<wgpu::Buffer>,
    pub(crate) blocks: DeviceBlocks,
    /// The final LayerNorm or `RMSNorm`.
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

    /// Counts `needed` bytes of `what`, refused when larger than one binding allows.
    fn count(&mut self, what: &'static str, needed: u64) -> Result<(), GpuError> {
        if needed > self.max_binding() {
            return Err(GpuError::TooLarge {
                what,
                needed,
                allowed: self.max_binding(),
            });
        }
        self.bytes += needed;
        Ok(())
    }

    /// Uploads `values` as a read-only storage buffer.
    pub(crate) fn values(
        &mut self,
        what: &'static str,
        values: &[f32],
    ) -> Result<wgpu::Buffer, GpuError> {
        self.count(what, (values.len() as u64) * 4)?;
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

impl Uploader<'_> {
    /// A linear layer: `weight` `[in, out]` and its optional bias.
    pub(crate) fn linear(
        &mut self,
        what: &'static str,
        weight: &Tensor,
        bias: Option<&Tensor>,
    ) -> Result<DeviceLinear, GpuError> {
        let (inputs, outputs) = weight.dims2()?;
        Ok(DeviceLinear {
            weight: self.tensor(what, weight)?,
            bias: bias.map(|b| self.tensor(what, b)).transpose()?,
            inputs,
            outputs,
            quantized: None,
        })
    }

    /// A linear layer kept in `matrix`'s blocks, or in f32 when the kernels do not read
    /// its format.
    fn quantized(
        &mut self,
        what: &'static str,
        matrix: &QuantizedMatrix,
        bias: Option<&Tensor>,
    ) -> Result<DeviceLinear, GpuError> {
        let format = match matrix.kind {
            TensorType::Q8_0 => QuantFormat::Q8_0,
            TensorType::Q4_0 => QuantFormat::Q4_0,
            TensorType::Q4_1 => QuantFormat::Q4_1,
            other => {
                return Err(GpuError::Unsupported(format!(
                    "{what}: the GPU kernels do not read {other:?} blocks"
                )));
            }
        };
        self.count(what, matrix.bytes.len() as u64)?;
        // Whole u32 words, as the kernels read them.
        let mut words = matrix.bytes.to_vec();
        words.resize(words.len().next_multiple_of(4).max(4), 0);
        let weight = self
            .ctx
            .device()
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(what),
                contents: &words,
                usage: wgpu::BufferUsages::STORAGE,
            });
        Ok(DeviceLinear {
            weight,
            bias: bias.map(|b| self.tensor(what, b)).transpose()?,
            inputs: matrix.cols,
            outputs: matrix.rows,
            quantized: Some((format, matrix.row_bytes())),
        })
    }

    /// The token table `[d, vocab]` in chunks, and the unembedding: `lm_head`'s when the
    /// model has one (`[vocab, d]`, transposed here), else the token table itself.
    fn embedding_tables(
        &mut self,
        token_embedding: &Tensor,
        lm_head: Option<&Tensor>,
    ) -> Result<(Vec<ColumnChunk>, Vec<ColumnChunk>), GpuError> {
        let transposed = |t: &Tensor| t.t().and_then(|t| t.contiguous());
        let token_table = self.column_chunks("token embedding", &transposed(token_embedding)?)?;
        let unembedding = match lm_head {
            Some(head) => self.column_chunks("unembedding", &transposed(head)?)?,
            None => token_table.clone(),
        };
        Ok((token_table, unembedding))
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
    pub(crate) fn upload(
        ctx: &GpuContext,
        model: &Model,
        quantized: QuantizedWeights,
    ) -> Result<Self, GpuError> {
        match model {
            Model::Gpt2(m) => Self::upload_gpt2(ctx, m),
            Model::Llama(m) => Self::upload_llama(ctx, m, quantized),
        }
    }

    fn upload_gpt2(ctx: &GpuContext, model: &Gpt2) -> Result<Self, GpuError> {
        let w = model.weights();
        let mut up = Uploader::new(ctx);
        let (token_table, unembedding) =
            up.embedding_tables(&w.token_embedding, w.lm_head.as_ref())?;
        let positions = up.tensor("position embedding", &w.position_embedding)?;
        let layer_norm =
            |up: &mut Uploader<'_>, ln: &LayerNormWeights| -> Result<DeviceLayerNorm, GpuError> {
                Ok(DeviceLayerNorm {
                    weight: up.tensor("layer norm weight", &ln.weight)?,
                    bias: Some(up.tensor("layer norm bias", &ln.bias)?),
                })
            };
        let mut blocks = Vec::with_capacity(w.blocks.len());
        for b in &w.blocks {
            blocks.push(Gpt2Block {
                ln_1: layer_norm(&mut up, &b.ln_1)?,
                qkv: up.linear("attention qkv", &b.qkv_weight, Some(&b.qkv_bias))?,
                attn_out: up.linear(
                    "attention output",
                    &b.attn_out_weight,
                    Some(&b.attn_out_bias),
                )?,
                ln_2: layer_norm(&mut up, &b.ln_2)?,
                mlp_in: up.linear("MLP input", &b.mlp_in_weight, Some(&b.mlp_in_bias))?,
                mlp_out: up.linear("MLP output", &b.mlp_out_weight, Some(&b.mlp_out_bias))?,
            });
        }
        let ln_final = layer_norm(&mut up, &w.ln_final)?;
        Ok(Self {
            token_table,
            unembedding,
            positions: Some(positions),
            blocks: DeviceBlocks::Gpt2(blocks),
            ln_final,
            bytes: up.bytes,
        })
    }

    fn upload_llama(
        ctx: &GpuContext,
        model: &Llama,
        quantized: QuantizedWeights,
    ) -> Result<Self, GpuError> {
        let w = model.weights();
        let mut up = Uploader::new(ctx);
        let (token_table, unembedding) =
            up.embedding_tables(&w.token_embedding, w.lm_head.as_ref())?;
        let rms_norm =
            |up: &mut Uploader<'_>, gain: &Tensor| -> Result<DeviceLayerNorm, GpuError> {
                Ok(DeviceLayerNorm {
                    weight: up.tensor("RMSNorm gain", gain)?,
                    bias: None,
                })
            };
        let linear =
            |up: &mut Uploader<'_>, what, layer: &Linear| match (quantized, &layer.quantized) {
                (QuantizedWeights::AsStored, Some(matrix)) => {
                    up.quantized(what, matrix, layer.bias.as_ref())
                }
                _ => up.linear(what, &layer.weight, layer.bias.as_ref()),
            };
        let mut blocks = Vec::with_capacity(w.blocks.len());
        for b in &w.blocks {
            blocks.push(LlamaBlock {
                ln_1: rms_norm(&mut up, &b.ln_1)?,
                q: linear(&mut up, "attention query", &b.q)?,
                k: linear(&mut up, "attention key", &b.k)?,
                v: linear(&mut up, "attention value", &b.v)?,
                o: linear(&mut up, "attention output", &b.o)?,
                ln_2: rms_norm(&mut up, &b.ln_2)?,
                gate: linear(&mut up, "MLP gate", &b.gate)?,
                up: linear(&mut up, "MLP up", &b.up)?,
                down: linear(&mut up, "MLP down", &b.down)?,
            });
        }
        let ln_final = rms_norm(&mut up, &w.ln_final)?;
        Ok(Self {
            token_table,
            unembedding,
            positions: None,
            blocks: DeviceBlocks::Llama(blocks),
            ln_final,
            bytes: up.bytes,
        })
    }
}
