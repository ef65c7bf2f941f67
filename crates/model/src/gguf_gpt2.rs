//! GPT-2 in GGUF as llama.cpp names it (`general.architecture = gpt2`; `token_embd`,
//! `position_embd`, `blk.N.attn_qkv`, `attn_output`, `ffn_up`, `ffn_down`, their norms and
//! `output_norm`; linear weights stored `[out, in]`, where Hugging Face's `Conv1D` stores
//! `[in, out]`): read into a [`Gpt2`], and written from one with its tokenizer.

use candle_core::Tensor;

use crate::gguf::{Gguf, TensorType};
use crate::gguf_write::{GgufVocabulary, GgufWriter, MetaValue};
use crate::weights::{BlockWeights, Gpt2Weights, LayerNormWeights};
use crate::{Activation, Gpt2, Gpt2Config, ModelError, Result};

impl Gguf<'_> {
    /// The GPT-2 this file describes. llama.cpp's GPT-2 uses GELU's tanh approximation
    /// (Hugging Face's `gelu_new`); an absent `output.weight` means the unembedding is tied.
    pub fn gpt2(&self) -> Result<Gpt2> {
        let architecture = self.text("general.architecture")?;
        if architecture != "gpt2" {
            return Err(self.error(format!("architecture `{architecture}` is not gpt2")));
        }
        let n_embd = self.size("gpt2.embedding_length")?;
        let d_mlp = self.size("gpt2.feed_forward_length")?;
        let vocab_size = self
            .tensors()
            .get("token_embd.weight")
            .and_then(|t| t.shape.first().copied())
            .ok_or_else(|| self.error("tensor `token_embd.weight` is missing"))?;
        let config = Gpt2Config {
            n_layer: self.size("gpt2.block_count")?,
            n_head: self.size("gpt2.attention.head_count")?,
            n_embd,
            n_positions: self.size("gpt2.context_length")?,
            vocab_size,
            layer_norm_epsilon: self
                .number("gpt2.attention.layer_norm_epsilon")?
                .unwrap_or(1e-5),
            n_inner: (d_mlp != n_embd.saturating_mul(4)).then_some(d_mlp),
            activation_function: Activation::GeluTanh,
        };
        config.validate().map_err(|e| self.error(e))?;
        let weights = self.gpt2_weights(&config)?;
        Gpt2::new(config, weights)
    }

    fn gpt2_weights(&self, config: &Gpt2Config) -> Result<Gpt2Weights> {
        let (d, d_mlp) = (config.n_embd, config.d_mlp());
        let get = |name: &str, shape: &[usize]| -> Result<Tensor> {
            let info = self
                .tensors()
                .get(name)
                .ok_or_else(|| self.error(format!("tensor `{name}` is missing")))?;
            if info.shape != shape {
                return Err(ModelError::WeightShape {
                    name: format!("{}: {name}", self.name()),
                    expected: shape.to_vec(),
                    found: info.shape.clone(),
                });
            }
            self.tensor(name)?
                .ok_or_else(|| self.error(format!("tensor `{name}` is missing")))
        };
        // `[out, in]` in the file, `[in, out]` in Glassbox (as in Hugging Face's GPT-2).
        let linear = |name: &str, d_in: usize, d_out: usize| -> Result<Tensor> {
            Ok(get(name, &[d_out, d_in])?.t()?.contiguous()?)
        };
        let norm = |name: &str| -> Result<LayerNormWeights> {
            Ok(LayerNormWeights {
                weight: get(&format!("{name}.weight"), &[d])?,
                bias: get(&format!("{name}.bias"), &[d])?,
            })
        };
        let blocks = (0..config.n_layer)
            .map(|l| {
                let name = |part: &str| format!("blk.{l}.{part}");
                Ok(BlockWeights {
                    ln_1: norm(&name("attn_norm"))?,
                    qkv_weight: linear(&name("attn_qkv.weight"), d, 3 * d)?,
                    qkv_bias: get(&name("attn_qkv.bias"), &[3 * d])?,
                    attn_out_weight: linear(&name("attn_output.weight"), d, d)?,
                    attn_out_bias: get(&name("attn_output.bias"), &[d])?,
                    ln_2: norm(&name("ffn_norm"))?,
                    mlp_in_weight: linear(&name("ffn_up.weight"), d, d_mlp)?,
                    mlp_in_bias: get(&name("ffn_up.bias"), &[d_mlp])?,
                    mlp_out_weight: linear(&name("ffn_down.weight"), d_mlp, d)?,
                    mlp_out_bias: get(&name("ffn_down.bias"), &[d])?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let lm_head = if self.tensors().contains_key("output.weight") {
            Some(get("output.weight", &[config.vocab_size, d])?)
        } else {
            None
        };
        Ok(Gpt2Weights {
            token_embedding: get("token_embd.weight", &[config.vocab_size, d])?,
            position_embedding: get("position_embd.weight", &[config.n_positions, d])?,
            blocks,
            ln_final: norm("output_norm")?,
            lm_head,
        })
    }
}

/// `model` and its tokenizer as one GGUF file that llama.cpp and [`Gguf::gpt2`] read: its
/// matrices (embeddings included) encoded as `matrices` (f32, f16, `Q8_0`, `Q4_0` or
/// `Q4_1`), norms and
/// biases in f32. `name` becomes `general.name`. Only GELU's tanh approximation can be
/// said in GGUF's GPT-2, so a model with another activation is refused.
pub fn gpt2_to_gguf(
    model: &Gpt2,
    name: &str,
    vocabulary: &GgufVocabulary,
    matrices: TensorType,
) -> Result<Vec<u8>> {
    let c = model.config();
    if c.activation_function != Activation::GeluTanh {
        return Err(ModelError::Config(format!(
            "GGUF's GPT-2 computes GELU's tanh approximation, not {:?}",
            c.activation_function
        )));
    }
    let file_type = match matrices {
        TensorType::F32 => 0,
        TensorType::F16 => 1,
        TensorType::Q4_0 => 2,
        TensorType::Q4_1 => 3,
        TensorType::Q8_0 => 7,
        other => {
            return Err(ModelError::Weights(format!(
                "GPT-2 is written in f32, f16, Q8_0, Q4_0 or Q4_1, not {other:?}"
            )));
        }
    };
    let size = |n: usize| {
        u32::try_from(n).map_err(|_| ModelError::Config(format!("{n} does not fit GGUF's u32")))
    };
    let mut file = GgufWriter::new();
    file.meta("general.architecture", MetaValue::Text("gpt2".to_owned()))
        .meta("general.name", MetaValue::Text(name.to_owned()))
        .meta("general.file_type", MetaValue::U32(file_type))
        .meta("general.quantization_version", MetaValue::U32(2))
        .meta("gpt2.block_count", MetaValue::U32(size(c.n_layer)?))
        .meta("gpt2.context_length", MetaValue::U32(size(c.n_positions)?))
        .meta("gpt2.embedding_length", MetaValue::U32(size(c.n_embd)?))
        .meta("gpt2.feed_forward_length", MetaValue::U32(size(c.d_mlp())?))
        .meta("gpt2.attention.head_count", MetaValue::U32(size(c.n_head)?))
        .meta(
            "gpt2.attention.layer_norm_epsilon",
            MetaValue::F32(c.layer_norm_epsilon as f32),
        );
    vocabulary.write_into(&mut file);
    let w = model.weights();
    let f = &mut file;
    put(f, "token_embd.weight", &w.token_embedding, matrices)?;
    put(f, "position_embd.weight", &w.position_embedding, matrices)?;
    for (l, block) in w.blocks.iter().enumerate() {
        let name = |part: &str| format!("blk.{l}.{part}");
        let out_in = |t: &Tensor| -> Result<Tensor> { Ok(t.t()?.contiguous()?) };
        put_norm(f, &name("attn_norm"), &block.ln_1)?;
        put(
            f,
            &name("attn_qkv.weight"),
            &out_in(&block.qkv_weight)?,
            matrices,
        )?;
        put(f, &name("attn_qkv.bias"), &block.qkv_bias, TensorType::F32)?;
        put(
            f,
            &name("attn_output.weight"),
            &out_in(&block.attn_out_weight)?,
            matrices,
        )?;
        put(
            f,
            &name("attn_output.bias"),
            &block.attn_out_bias,
            TensorType::F32,
        )?;
        put_norm(f, &name("ffn_norm"), &block.ln_2)?;
        put(
            f,
            &name("ffn_up.weight"),
            &out_in(&block.mlp_in_weight)?,
            matrices,
        )?;
        put(f, &name("ffn_up.bias"), &block.mlp_in_bias, TensorType::F32)?;
        put(
            f,
            &name("ffn_down.weight"),
            &out_in(&block.mlp_out_weight)?,
            matrices,
        )?;
        put(
            f,
            &name("ffn_down.bias"),
            &block.mlp_out_bias,
            TensorType::F32,
        )?;
    }
    put_norm(f, "output_norm", &w.ln_final)?;
    if let Some(lm_head) = &w.lm_head {
        put(f, "output.weight", lm_head, matrices)?;
    }
    Ok(file.to_bytes())
}

fn put(file: &mut GgufWriter, name: &str, tensor: &Tensor, kind: TensorType) -> Result<()> {
    let values: Vec<f32> = tensor.flatten_all()?.to_vec1()?;
    file.tensor(name, tensor.dims(), &values, kind)?;
    Ok(())
}

fn put_norm(file: &mut GgufWriter, name: &str, norm: &LayerNormWeights) -> Result<()> {
    put(
        file,
        &format!("{name}.weight"),
        &norm.weight,
        TensorType::F32,
    )?;
    put(file, &format!("{name}.bias"), &norm.bias, TensorType::F32)
}
