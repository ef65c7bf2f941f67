//! GPT-2 weights from Hugging Face-layout safetensors, checked against the config.

use candle_core::{DType, Device, Tensor};
use safetensors::SafeTensors;

use crate::rng::SplitMix64;
use crate::{Gpt2Config, ModelError, Result};

/// A LayerNorm's learned gain and bias, each `[d_model]`.
#[derive(Debug, Clone)]
pub struct LayerNormWeights {
    /// The gain, `w`.
    pub weight: Tensor,
    /// The bias, `b`.
    pub bias: Tensor,
}

/// One transformer block. Linear weights are stored `[in, out]`, as HF's `Conv1D` does.
#[derive(Debug, Clone)]
pub struct BlockWeights {
    /// `ln_1`.
    pub ln_1: LayerNormWeights,
    /// `attn.c_attn.weight`, `[d, 3d]`: queries, keys and values side by side.
    pub qkv_weight: Tensor,
    /// `attn.c_attn.bias`, `[3d]`.
    pub qkv_bias: Tensor,
    /// `attn.c_proj.weight`, `[d, d]`: `W_O` of all heads.
    pub attn_out_weight: Tensor,
    /// `attn.c_proj.bias`, `[d]`.
    pub attn_out_bias: Tensor,
    /// `ln_2`.
    pub ln_2: LayerNormWeights,
    /// `mlp.c_fc.weight`, `[d, d_mlp]`.
    pub mlp_in_weight: Tensor,
    /// `mlp.c_fc.bias`, `[d_mlp]`.
    pub mlp_in_bias: Tensor,
    /// `mlp.c_proj.weight`, `[d_mlp, d]`.
    pub mlp_out_weight: Tensor,
    /// `mlp.c_proj.bias`, `[d]`.
    pub mlp_out_bias: Tensor,
}

/// Every weight of a GPT-2, in f32 on the CPU.
#[derive(Debug, Clone)]
pub struct Gpt2Weights {
    /// `wte.weight`, `[vocab, d]`: token embeddings, also the unembedding when tied.
    pub token_embedding: Tensor,
    /// `wpe.weight`, `[n_positions, d]`.
    pub position_embedding: Tensor,
    /// The blocks, in order.
    pub blocks: Vec<BlockWeights>,
    /// `ln_f`.
    pub ln_final: LayerNormWeights,
    /// `lm_head.weight`, `[vocab, d]`, when it is not tied to the token embeddings.
    pub lm_head: Option<Tensor>,
}

impl Gpt2Weights {
    /// Reads the weights of `config`'s model from a safetensors file's bytes. Keys may
    /// carry HF's `transformer.` prefix or not; f32, f16 and bf16 are accepted and
    /// converted to f32. Every shape is checked against the config.
    pub fn from_safetensors(bytes: &[u8], config: &Gpt2Config) -> Result<Self> {
        let file = SafeTensors::deserialize(bytes)
            .map_err(|e| ModelError::Weights(format!("not a valid safetensors file: {e}")))?;
        let reader = Reader { file: &file };
        let d = config.n_embd;
        let d_mlp = config.d_mlp();
        let layer_norm = |prefix: &str| -> Result<LayerNormWeights> {
            Ok(LayerNormWeights {
                weight: reader.get(&format!("{prefix}.weight"), &[d])?,
                bias: reader.get(&format!("{prefix}.bias"), &[d])?,
            })
        };
        let blocks = (0..config.n_layer)
            .map(|l| {
                let p = format!("h.{l}");
                Ok(BlockWeights {
                    ln_1: layer_norm(&format!("{p}.ln_1"))?,
                    qkv_weight: reader.get(&format!("{p}.attn.c_attn.weight"), &[d, 3 * d])?,
                    qkv_bias: reader.get(&format!("{p}.attn.c_attn.bias"), &[3 * d])?,
                    attn_out_weight: reader.get(&format!("{p}.attn.c_proj.weight"), &[d, d])?,
                    attn_out_bias: reader.get(&format!("{p}.attn.c_proj.bias"), &[d])?,
                    ln_2: layer_norm(&format!("{p}.ln_2"))?,
                    mlp_in_weight: reader.get(&format!("{p}.mlp.c_fc.weight"), &[d, d_mlp])?,
                    mlp_in_bias: reader.get(&format!("{p}.mlp.c_fc.bias"), &[d_mlp])?,
                    mlp_out_weight: reader.get(&format!("{p}.mlp.c_proj.weight"), &[d_mlp, d])?,
                    mlp_out_bias: reader.get(&format!("{p}.mlp.c_proj.bias"), &[d])?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let lm_head = if reader.has("lm_head.weight") {
            Some(reader.get_exact("lm_head.weight", &[config.vocab_size, d])?)
        } else {
            None
        };
        Ok(Self {
            token_embedding: reader.get("wte.weight", &[config.vocab_size, d])?,
            position_embedding: reader.get("wpe.weight", &[config.n_positions, d])?,
            blocks,
            ln_final: layer_norm("ln_f")?,
            lm_head,
        })
    }

    /// Fresh weights as GPT-2 initialises them: normal(0, 0.02), the residual output
    /// projections (`attn.c_proj`, `mlp.c_proj`) scaled by `1/sqrt(2·n_layer)`, LayerNorm
    /// gains 1 and all biases 0. The same seed gives the same weights on every platform.
    pub fn init(config: &Gpt2Config, seed: u64) -> Result<Self> {
        config.validate()?;
        let mut rng = SplitMix64::new(seed);
        let mut normal = |shape: &[usize], std: f64| -> Result<Tensor> {
            let count = shape.iter().product();
            let values: Vec<f32> = (0..count)
                .map(|_| (rng.next_normal() * std) as f32)
                .collect();
            Ok(Tensor::from_vec(values, shape, &Device::Cpu)?)
        };
        let zeros = |shape: &[usize]| Tensor::zeros(shape, DType::F32, &Device::Cpu);
        let layer_norm = |d: usize| -> Result<LayerNormWeights> {
            Ok(LayerNormWeights {
                weight: Tensor::ones(d, DType::F32, &Device::Cpu)?,
                bias: zeros(&[d])?,
            })
        };
        let d = config.n_embd;
        let d_mlp = config.d_mlp();
        let std = 0.02;
        let residual_std = std / (2.0 * config.n_layer as f64).sqrt();
        let token_embedding = normal(&[config.vocab_size, d], std)?;
        let position_embedding = normal(&[config.n_positions, d], 0.01)?;
        let mut blocks = Vec::with_capacity(config.n_layer);
        for _ in 0..config.n_layer {
            blocks.push(BlockWeights {
                ln_1: layer_norm(d)?,
                qkv_weight: normal(&[d, 3 * d], std)?,
                qkv_bias: zeros(&[3 * d])?,
                attn_out_weight: normal(&[d, d], residual_std)?,
                attn_out_bias: zeros(&[d])?,
                ln_2: layer_norm(d)?,
                mlp_in_weight: normal(&[d, d_mlp], std)?,
                mlp_in_bias: zeros(&[d_mlp])?,
                mlp_out_weight: normal(&[d_mlp, d], residual_std)?,
                mlp_out_bias: zeros(&[d])?,
            });
        }
        Ok(Self {
            token_embedding,
            position_embedding,
            blocks,
            ln_final: layer_norm(d)?,
            lm_head: None,
        })
    }

    /// Every tensor with its Hugging Face name (`transformer.h.0.attn.c_attn.weight`, …),
    /// the layout [`Self::from_safetensors`] reads and `transformers` loads.
    #[must_use]
    pub fn named(&self) -> Vec<(String, Tensor)> {
        let mut named = vec![
            (
                "transformer.wte.weight".to_owned(),
                self.token_embedding.clone(),
            ),
            (
                "transformer.wpe.weight".to_owned(),
                self.position_embedding.clone(),
            ),
            (
                "transformer.ln_f.weight".to_owned(),
                self.ln_final.weight.clone(),
            ),
            (
                "transformer.ln_f.bias".to_owned(),
                self.ln_final.bias.clone(),
            ),
        ];
        for (l, b) in self.blocks.iter().enumerate() {
            let p = format!("transformer.h.{l}");
            named.extend([
                (format!("{p}.ln_1.weight"), b.ln_1.weight.clone()),
                (format!("{p}.ln_1.bias"), b.ln_1.bias.clone()),
                (format!("{p}.attn.c_attn.weight"), b.qkv_weight.clone()),
                (format!("{p}.attn.c_attn.bias"), b.qkv_bias.clone()),
                (format!("{p}.attn.c_proj.weight"), b.attn_out_weight.clone()),
                (format!("{p}.attn.c_proj.bias"), b.attn_out_bias.clone()),
                (format!("{p}.ln_2.weight"), b.ln_2.weight.clone()),
                (format!("{p}.ln_2.bias"), b.ln_2.bias.clone()),
                (format!("{p}.mlp.c_fc.weight"), b.mlp_in_weight.clone()),
                (format!("{p}.mlp.c_fc.bias"), b.mlp_in_bias.clone()),
                (format!("{p}.mlp.c_proj.weight"), b.mlp_out_weight.clone()),
                (format!("{p}.mlp.c_proj.bias"), b.mlp_out_bias.clone()),
            ]);
        }
        if let Some(head) = &self.lm_head {
            named.push(("lm_head.weight".to_owned(), head.clone()));
        }
        named
    }

    /// Weights in the same layout whose tensors are `map` of these (e.g. wrapped as
    /// trainable variables).
    pub fn try_map(&self, mut map: impl FnMut(&str, &Tensor) -> Result<Tensor>) -> Result<Self> {
        let mut named = self.named().into_iter();
        let mut next = || -> Result<Tensor> {
            let (name, tensor) = named
                .next()
                .ok_or_else(|| ModelError::Weights("weights changed while mapping".to_owned()))?;
            map(&name, &tensor)
        };
        let token_embedding = next()?;
        let position_embedding = next()?;
        let ln_final = LayerNormWeights {
            weight: next()?,
            bias: next()?,
        };
        let mut blocks = Vec::with_capacity(self.blocks.len());
        for _ in &self.blocks {
            blocks.push(BlockWeights {
                ln_1: LayerNormWeights {
                    weight: next()?,
                    bias: next()?,
                },
                qkv_weight: next()?,
                qkv_bias: next()?,
                attn_out_weight: next()?,
                attn_out_bias: next()?,
                ln_2: LayerNormWeights {
                    weight: next()?,
                    bias: next()?,
                },
                mlp_in_weight: next()?,
                mlp_in_bias: next()?,
                mlp_out_weight: next()?,
                mlp_out_bias: next()?,
            });
        }
        let lm_head = match &self.lm_head {
            Some(_) => Some(next()?),
            None => None,
        };
        Ok(Self {
            token_embedding,
            position_embedding,
            blocks,
            ln_final,
            lm_head,
        })
    }

    /// The unembedding, `[vocab, d]`: `lm_head` if present, else the tied token embedding.
    #[must_use]
    pub fn unembedding(&self) -> &Tensor {
        self.lm_head.as_ref().unwrap_or(&self.token_embedding)
    }
}

struct Reader<'a> {
    file: &'a SafeTensors<'a>,
}

impl Reader<'_> {
    fn has(&self, name: &str) -> bool {
        self.file.tensor(name).is_ok()
    }

    /// `name` with or without the `transformer.` prefix.
    fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let prefixed = format!("transformer.{name}");
        if self.has(&prefixed) {
            self.get_exact(&prefixed, shape)
        } else {
            self.get_exact(name, shape)
        }
    }

    fn get_exact(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let view = self
            .file
            .tensor(name)
            .map_err(|_| ModelError::Weights(format!("missing tensor `{name}`")))?;
        if view.shape() != shape {
            return Err(ModelError::WeightShape {
                name: name.to_owned(),
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
                    "tensor `{name}` is {other:?}; Glassbox reads f32, f16 and bf16 weights"
                )));
            }
        };
        let tensor = Tensor::from_raw_buffer(view.data(), dtype, shape, &Device::Cpu)?;
        Ok(tensor.to_dtype(DType::F32)?)
    }
}
