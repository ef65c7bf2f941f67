//! The model families Glassbox runs, and [`Model`]: one of them, behind the interface
//! engines and views use (dimensions, a forward pass with hooks, the logit lens).

use std::fmt;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::attention::KvCache;
use crate::gguf::Gguf;
use crate::hooks::{HookPoint, Hooks};
use crate::{Gpt2, Llama, ModelDims, ModelError, Result, Tokenizer};

/// An architecture: which blocks a model is made of, and so which hooks it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// GPT-2: learned positions, LayerNorm, GELU MLP.
    Gpt2,
    /// Llama: rotary positions, `RMSNorm`, gated `SiLU` MLP, grouped-query attention.
    Llama,
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Gpt2 => "GPT-2",
            Self::Llama => "Llama",
        })
    }
}

/// A model of any supported family, on the CPU.
#[derive(Debug, Clone)]
pub enum Model {
    /// A GPT-2.
    Gpt2(Gpt2),
    /// A Llama.
    Llama(Llama),
}

impl From<Gpt2> for Model {
    fn from(model: Gpt2) -> Self {
        Self::Gpt2(model)
    }
}

/// A copy that shares the weights (candle tensors are reference-counted).
impl From<&Gpt2> for Model {
    fn from(model: &Gpt2) -> Self {
        Self::Gpt2(model.clone())
    }
}

/// A copy that shares the weights.
impl From<&Llama> for Model {
    fn from(model: &Llama) -> Self {
        Self::Llama(model.clone())
    }
}

impl From<Llama> for Model {
    fn from(model: Llama) -> Self {
        Self::Llama(model)
    }
}

impl Model {
    /// A model from a Hugging Face checkpoint: `config.json` (its `model_type` picks the
    /// family) and the safetensors shards as `(file name, bytes)`.
    pub fn from_hf(config_json: &str, shards: &[(&str, &[u8])]) -> Result<Self> {
        #[derive(Deserialize)]
        struct Kind {
            model_type: Option<String>,
        }
        let kind: Kind =
            serde_json::from_str(config_json).map_err(|e| ModelError::Config(e.to_string()))?;
        match kind.model_type.as_deref() {
            Some("gpt2") | None => match shards {
                [(_, bytes)] => Ok(Gpt2::load(config_json, bytes)?.into()),
                _ => Err(ModelError::Weights(
                    "a GPT-2 checkpoint is one model.safetensors".to_owned(),
                )),
            },
            Some("llama") => Ok(Llama::from_hf(config_json, shards)?.into()),
            Some(other) => Err(ModelError::Config(format!(
                "model_type `{other}` is not supported (Glassbox runs gpt2 and llama)"
            ))),
        }
    }

    /// A model and its tokenizer from a GGUF file's bytes; `name` appears in errors.
    pub fn from_gguf(name: &str, bytes: &[u8]) -> Result<(Self, Tokenizer)> {
        Self::from_gguf_files(&[(name, bytes)])
    }

    /// A model and its tokenizer from GGUF files (name, bytes): one file, or every file
    /// of a model split over several ([`Gguf::parse_files`]).
    pub fn from_gguf_files(files: &[(&str, &[u8])]) -> Result<(Self, Tokenizer)> {
        Self::from_parsed_gguf(&Gguf::parse_files(files)?)
    }

    /// The model of the blocks the first files of a split GGUF model hold, from block 0
    /// ([`Gguf::parse_first_files`]), and the tokenizer: what those blocks compute is what
    /// the whole model computes there; its logits are not the whole model's.
    pub fn from_first_gguf_files(files: &[(&str, &[u8])]) -> Result<(Self, Tokenizer)> {
        Self::from_parsed_gguf(&Gguf::parse_first_files(files)?)
    }

    fn from_parsed_gguf(file: &Gguf<'_>) -> Result<(Self, Tokenizer)> {
        let name = file.name();
        let model: Self = match file.text("general.architecture")? {
            "gpt2" => file.gpt2()?.into(),
            _ => file.llama()?.into(),
        };
        let tokenizer = file.tokenizer()?;
        let vocab_size = model.dims().vocab_size;
        if tokenizer.vocab_size() > vocab_size {
            return Err(ModelError::Tokenizer(format!(
                "{name}: the tokenizer has {} tokens, the model only {vocab_size}",
                tokenizer.vocab_size(),
            )));
        }
        Ok((model, tokenizer))
    }

    /// The family.
    #[must_use]
    pub fn family(&self) -> Family {
        match self {
            Self::Gpt2(_) => Family::Gpt2,
            Self::Llama(_) => Family::Llama,
        }
    }

    /// The dimensions engines and views need.
    #[must_use]
    pub fn dims(&self) -> ModelDims {
        match self {
            Self::Gpt2(m) => m.config().dims(),
            Self::Llama(m) => m.config().dims(),
        }
    }

    /// Every hook point, in the order a forward pass reaches them.
    #[must_use]
    pub fn hook_points(&self) -> Vec<HookPoint> {
        HookPoint::all(self.dims().n_layer, self.family())
    }

    /// Every matrix the model's products read, in an order fixed by the family and the
    /// shapes: each block's linear layers' weights `[in, out]`, then the unembedding
    /// `[vocab, d_model]`. Two copies of one model list the same weights in the same
    /// places, as a helper that shares the products needs (`column_split::WeightTable`).
    #[must_use]
    pub fn product_weights(&self) -> Vec<Tensor> {
        match self {
            Self::Gpt2(m) => {
                let w = m.weights();
                let blocks = w.blocks.iter().flat_map(|b| {
                    [
                        &b.qkv_weight,
                        &b.attn_out_weight,
                        &b.mlp_in_weight,
                        &b.mlp_out_weight,
                    ]
                });
                blocks.chain([w.unembedding()]).cloned().collect()
            }
            Self::Llama(m) => {
                let w = m.weights();
                let blocks = w.blocks.iter().flat_map(|b| {
                    [&b.q, &b.k, &b.v, &b.o, &b.gate, &b.up, &b.down].map(|l| &l.weight)
                });
                blocks.chain([w.unembedding()]).cloned().collect()
            }
        }
    }

    /// The GPT-2, when this is one.
    #[must_use]
    pub fn as_gpt2(&self) -> Option<&Gpt2> {
        match self {
            Self::Gpt2(m) => Some(m),
            Self::Llama(_) => None,
        }
    }

    /// Logits `[positions, vocab]` for one sequence of token ids.
    pub fn forward_ids(&self, ids: &[u32], hooks: &mut Hooks) -> Result<Tensor> {
        let tokens = Tensor::new(ids, &Device::Cpu)?.unsqueeze(0)?;
        Ok(self.forward(&tokens, hooks)?.squeeze(0)?)
    }

    /// Logits `[batch, positions, vocab]` for a `[batch, positions]` tensor of u32 ids.
    pub fn forward(&self, tokens: &Tensor, hooks: &mut Hooks) -> Result<Tensor> {
        match self {
            Self::Gpt2(m) => m.forward(tokens, hooks),
            Self::Llama(m) => m.run(tokens, None, hooks),
        }
    }

    /// The residual stream after the last block, `[batch, positions, d]`, for a
    /// `[batch, positions]` tensor of u32 ids: [`Self::forward`] without reading out the
    /// logits, for passes that only need activations.
    pub fn residual(&self, tokens: &Tensor, hooks: &mut Hooks) -> Result<Tensor> {
        match self {
            Self::Gpt2(m) => m.residual(tokens, hooks),
            Self::Llama(m) => m.residual(tokens, hooks),
        }
    }

    /// Like [`Self::forward`], for the positions after those in `cache`, which it extends.
    pub fn forward_cached(
        &self,
        tokens: &Tensor,
        cache: &mut KvCache,
        hooks: &mut Hooks,
    ) -> Result<Tensor> {
        match self {
            Self::Gpt2(m) => m.forward_cached(tokens, cache, hooks),
            Self::Llama(m) => m.run(tokens, Some(cache), hooks),
        }
    }

    /// The logits the model reads off a residual stream `[batch, positions, d]` (the
    /// logit lens).
    pub fn read_out(&self, residual: &Tensor) -> Result<Tensor> {
        match self {
            Self::Gpt2(m) => m.read_out(residual),
            Self::Llama(m) => m.read_out(residual),
        }
    }

    /// The direct logit effects of directions `[rows, d]` written to the residual stream:
    /// each scaled by the final norm's gain, through the unembedding, `[rows, vocab]` (the
    /// final norm's division by its scale, the same for every token, left out).
    pub fn direct_logit_effects(&self, directions: &Tensor) -> Result<Tensor> {
        let (gain, unembedding) = match self {
            Self::Gpt2(m) => (&m.weights().ln_final.weight, m.weights().unembedding()),
            Self::Llama(m) => (&m.weights().ln_final, m.weights().unembedding()),
        };
        Ok(directions.broadcast_mul(gain)?.matmul(&unembedding.t()?)?)
    }
}
