//! Llama weights, read by their Hugging Face names from any [`TensorSource`]
//! (safetensors files, or a GGUF file through [`crate::gguf`]) and checked against the
//! config. Linear weights are stored `[in, out]`, as for GPT-2.

use candle_core::{DType, Device, Tensor};

use super::LlamaConfig;
use crate::gguf::{QuantizedMatrix, TensorType, dequantize, quantize};
use crate::rng::SplitMix64;
use crate::{ModelError, Result};

/// Where weights come from: each tensor by its Hugging Face name (`model.layers.0.
/// self_attn.q_proj.weight`, shape as `transformers` has it), converted to f32.
pub trait TensorSource {
    /// The tensor `name` with shape `shape`, or `None` when the source lacks it; a tensor
    /// present with another shape is an error naming both shapes.
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Option<Tensor>>;

    /// The matrix `name` (`shape` `[out, in]`) in its stored blocks, when the source keeps
    /// it quantized in a form an engine may compute on; `None` otherwise.
    fn quantized(&self, name: &str, shape: &[usize]) -> Result<Option<QuantizedMatrix>> {
        let _ = (name, shape);
        Ok(None)
    }
}

/// An `RMSNorm`'s gain, `[d_model]`.
pub type RmsNormWeights = Tensor;

/// A linear layer: weight `[in, out]` and an optional bias `[out]`.
#[derive(Debug, Clone)]
pub struct Linear {
    /// `[in, out]`.
    pub weight: Tensor,
    /// `[out]`.
    pub bias: Option<Tensor>,
    /// The weight's blocks as a GGUF file stored them, when they were quantized
    /// (`weight` is their dequantization).
    pub quantized: Option<QuantizedMatrix>,
}

impl Linear {
    /// Stores this layer in `kind`'s blocks (`Q8_0`, `Q4_0` or `Q4_1`), its f32 weight
    /// becoming their dequantization: a random model made quantized, for tests and
    /// benchmarks. Inputs must be a multiple of 32.
    pub fn quantize(&mut self, kind: TensorType) -> Result<()> {
        let stored = self.weight.t()?.contiguous()?;
        let (rows, cols) = stored.dims2()?;
        let bytes = quantize(kind, &stored.flatten_all()?.to_vec1::<f32>()?).ok_or_else(|| {
            ModelError::Weights(format!(
                "{kind:?} blocks of rows of {cols} are not written here"
            ))
        })?;
        let values = dequantize(kind, &bytes);
        self.weight = Tensor::from_vec(values, (rows, cols), &Device::Cpu)?
            .t()?
            .contiguous()?;
        self.quantized = Some(QuantizedMatrix {
            kind,
            rows,
            cols,
            bytes: bytes.into(),
        });
        Ok(())
    }
}

/// One Llama block.
#[derive(Debug, Clone)]
pub struct LlamaBlockWeights {
    /// `input_layernorm`.
    pub ln_1: RmsNormWeights,
    /// `self_attn.q_proj`, `[d_model, n_head · d_head]`.
    pub q: Linear,
    /// `self_attn.k_proj`, `[d_model, n_kv_head · d_head]`.
    pub k: Linear,
    /// `self_attn.v_proj`, `[d_model, n_kv_head · d_head]`.
    pub v: Linear,
    /// `self_attn.o_proj`, `[n_head · d_head, d_model]`.
    pub o: Linear,
    /// `post_attention_layernorm`.
    pub ln_2: RmsNormWeights,
    /// `mlp.gate_proj`, `[d_model, d_mlp]` (TransformerLens's `W_gate`).
    pub gate: Linear,
    /// `mlp.up_proj`, `[d_model, d_mlp]` (TransformerLens's `W_in`).
    pub up: Linear,
    /// `mlp.down_proj`, `[d_mlp, d_model]` (TransformerLens's `W_out`).
    pub down: Linear,
}

impl LlamaBlockWeights {
    /// Its linear layers: `q`, `k`, `v`, `o`, `gate`, `up`, `down`.
    pub fn linears_mut(&mut self) -> [&mut Linear; 7] {
        [
            &mut self.q,
            &mut self.k,
            &mut self.v,
            &mut self.o,
            &mut self.gate,
            &mut self.up,
            &mut self.down,
        ]
    }
}

/// Every weight of a Llama model, in f32 on the CPU.
#[derive(Debug, Clone)]
pub struct LlamaWeights {
    /// `model.embed_tokens.weight`, `[vocab, d_model]`.
    pub token_embedding: Tensor,
    /// The blocks, in order.
    pub blocks: Vec<LlamaBlockWeights>,
    /// `model.norm`.
    pub ln_final: RmsNormWeights,
    /// `lm_head.weight`, `[vocab, d_model]`, when not tied to the token embedding.
    pub lm_head: Option<Tensor>,
}

impl LlamaWeights {
    /// Reads `config`'s weights from `source`, checking every shape.
    pub fn read(source: &dyn TensorSource, config: &LlamaConfig) -> Result<Self> {
        let need = |name: &str, shape: &[usize]| -> Result<Tensor> {
            source
                .tensor(name, shape)?
                .ok_or_else(|| ModelError::Weights(format!("missing tensor `{name}`")))
        };
        let linear = |name: &str, input: usize, output: usize, bias: bool| -> Result<Linear> {
            let weight_name = format!("{name}.weight");
            let weight = need(&weight_name, &[output, input])?.t()?.contiguous()?;
            let quantized = source.quantized(&weight_name, &[output, input])?;
            let bias_name = format!("{name}.bias");
            let bias = if bias {
                Some(need(&bias_name, &[output])?)
            } else {
                source.tensor(&bias_name, &[output])?
            };
            Ok(Linear {
                weight,
                bias,
                quantized,
            })
        };
        let (d, d_mlp) = (config.d_model, config.d_mlp);
        let (q_width, kv_width) = (
            config.n_head * config.d_head,
            config.n_kv_head * config.d_head,
        );
        let blocks = (0..config.n_layer)
            .map(|l| {
                let p = format!("model.layers.{l}");
                let attn = |name: &str, i, o| {
                    linear(
                        &format!("{p}.self_attn.{name}"),
                        i,
                        o,
                        config.attention_bias,
                    )
                };
                let mlp =
                    |name: &str, i, o| linear(&format!("{p}.mlp.{name}"), i, o, config.mlp_bias);
                Ok(LlamaBlockWeights {
                    ln_1: need(&format!("{p}.input_layernorm.weight"), &[d])?,
                    q: attn("q_proj", d, q_width)?,
                    k: attn("k_proj", d, kv_width)?,
                    v: attn("v_proj", d, kv_width)?,
                    o: attn("o_proj", q_width, d)?,
                    ln_2: need(&format!("{p}.post_attention_layernorm.weight"), &[d])?,
                    gate: mlp("gate_proj", d, d_mlp)?,
                    up: mlp("up_proj", d, d_mlp)?,
                    down: mlp("down_proj", d_mlp, d)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let vocab = config.vocab_size;
        // A tied model's file may still carry a copy of the embedding as lm_head.
        let lm_head = if config.tie_word_embeddings {
            None
        } else {
            Some(need("lm_head.weight", &[vocab, d])?)
        };
        Ok(Self {
            token_embedding: need("model.embed_tokens.weight", &[vocab, d])?,
            blocks,
            ln_final: need("model.norm.weight", &[d])?,
            lm_head,
        })
    }

    /// Random weights for `config` from `seed` (normal, std 0.02; gains 1, biases 0), as
    /// benchmarks and tests of shapes with no checkpoint use them.
    pub fn init(config: &LlamaConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        let mut rng = SplitMix64::new(seed);
        let mut normal = |shape: &[usize]| -> Result<Tensor> {
            let count = shape.iter().product();
            let values: Vec<f32> = (0..count)
                .map(|_| (rng.next_normal() * 0.02) as f32)
                .collect();
            Ok(Tensor::from_vec(values, shape, &Device::Cpu)?)
        };
        let ones = |d: usize| Tensor::ones(d, DType::F32, &Device::Cpu);
        let bias = |wanted: bool, d: usize| -> Result<Option<Tensor>> {
            Ok(wanted
                .then(|| Tensor::zeros(d, DType::F32, &Device::Cpu))
                .transpose()?)
        };
        let (d, d_mlp) = (config.d_model, config.d_mlp);
        let (q_width, kv_width) = (
            config.n_head * config.d_head,
            config.n_kv_head * config.d_head,
        );
        let mut blocks = Vec::with_capacity(config.n_layer);
        for _ in 0..config.n_layer {
            let mut linear = |input: usize, output: usize, has_bias: bool| -> Result<Linear> {
                Ok(Linear {
                    weight: normal(&[input, output])?,
                    bias: bias(has_bias, output)?,
                    quantized: None,
                })
            };
            let attention = config.attention_bias;
            blocks.push(LlamaBlockWeights {
                ln_1: ones(d)?,
                q: linear(d, q_width, attention)?,
                k: linear(d, kv_width, attention)?,
                v: linear(d, kv_width, attention)?,
                o: linear(q_width, d, attention)?,
                ln_2: ones(d)?,
                gate: linear(d, d_mlp, config.mlp_bias)?,
                up: linear(d, d_mlp, config.mlp_bias)?,
                down: linear(d_mlp, d, config.mlp_bias)?,
            });
        }
        let token_embedding = normal(&[config.vocab_size, d])?;
        let lm_head = if config.tie_word_embeddings {
            None
        } else {
            Some(normal(&[config.vocab_size, d])?)
        };
        Ok(Self {
            token_embedding,
            blocks,
            ln_final: ones(d)?,
            lm_head,
        })
    }

    /// The unembedding, `[vocab, d_model]`: `lm_head` if present, else the tied embedding.
    #[must_use]
    pub fn unembedding(&self) -> &Tensor {
        self.lm_head.as_ref().unwrap_or(&self.token_embedding)
    }
}
