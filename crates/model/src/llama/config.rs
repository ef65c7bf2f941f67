//! A Llama-family configuration, from a Hugging Face `config.json` (transformers 4's
//! `rope_theta`/`rope_scaling` or transformers 5's `rope_parameters`) or from a GGUF
//! file's metadata.

use serde::Deserialize;
use serde_json::Value;

use crate::rope::{Rope, RopeScaling};
use crate::{Activation, Family, ModelDims, ModelError, Result};

/// What defines a Llama model's computation.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// Transformer blocks.
    pub n_layer: usize,
    /// Query heads per block.
    pub n_head: usize,
    /// Key/value heads per block (fewer than `n_head` for grouped-query attention).
    pub n_kv_head: usize,
    /// Width of one head.
    pub d_head: usize,
    /// Width of the residual stream.
    pub d_model: usize,
    /// Width of the gated MLP's hidden layer.
    pub d_mlp: usize,
    /// Context length.
    pub n_positions: usize,
    /// Tokens in the vocabulary.
    pub vocab_size: usize,
    /// `RMSNorm`'s epsilon.
    pub rms_norm_eps: f64,
    /// The gate's non-linearity (`SiLU` for Llama).
    pub activation: Activation,
    /// The rotary embedding.
    pub rope: Rope,
    /// Whether the unembedding is the token embedding.
    pub tie_word_embeddings: bool,
    /// Whether `q_proj`, `k_proj`, `v_proj` and `o_proj` have biases.
    pub attention_bias: bool,
    /// Whether the MLP's projections have biases.
    pub mlp_bias: bool,
}

/// The fields of HF's `LlamaConfig` that matter here, in either transformers style.
#[derive(Deserialize)]
struct HfLlamaConfig {
    model_type: Option<String>,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    max_position_embeddings: usize,
    vocab_size: usize,
    #[serde(default = "default_rms_eps")]
    rms_norm_eps: f64,
    #[serde(default = "default_activation")]
    hidden_act: Activation,
    /// transformers 4.
    rope_theta: Option<f64>,
    /// transformers 4.
    rope_scaling: Option<Value>,
    /// transformers 5: `{rope_type, rope_theta, partial_rotary_factor, factor, …}`.
    rope_parameters: Option<Value>,
    partial_rotary_factor: Option<f64>,
    #[serde(default)]
    tie_word_embeddings: bool,
    #[serde(default)]
    attention_bias: bool,
    #[serde(default)]
    mlp_bias: bool,
}

fn default_rms_eps() -> f64 {
    1e-6
}

fn default_activation() -> Activation {
    Activation::Silu
}

impl LlamaConfig {
    /// Parses and checks a Hugging Face `config.json` of `model_type` `llama`.
    pub fn from_json(json: &str) -> Result<Self> {
        let hf: HfLlamaConfig =
            serde_json::from_str(json).map_err(|e| ModelError::Config(e.to_string()))?;
        if let Some(kind) = hf.model_type.as_deref().filter(|k| *k != "llama") {
            return Err(ModelError::Config(format!(
                "model_type `{kind}` is not a Llama model"
            )));
        }
        if hf.num_attention_heads == 0 {
            return Err(ModelError::Config(
                "num_attention_heads must be positive".into(),
            ));
        }
        let d_head = hf
            .head_dim
            .unwrap_or(hf.hidden_size / hf.num_attention_heads);
        let parameters = hf.rope_parameters.as_ref();
        let number = |key: &str| -> Option<f64> {
            parameters.and_then(|p| p.get(key)).and_then(Value::as_f64)
        };
        let theta = number("rope_theta").or(hf.rope_theta).unwrap_or(10_000.0);
        let partial = number("partial_rotary_factor")
            .or(hf.partial_rotary_factor)
            .unwrap_or(1.0);
        let scaling = rope_scaling(
            parameters.or(hf.rope_scaling.as_ref()),
            hf.max_position_embeddings,
        )?;
        let config = Self {
            n_layer: hf.num_hidden_layers,
            n_head: hf.num_attention_heads,
            n_kv_head: hf.num_key_value_heads.unwrap_or(hf.num_attention_heads),
            d_head,
            d_model: hf.hidden_size,
            d_mlp: hf.intermediate_size,
            n_positions: hf.max_position_embeddings,
            vocab_size: hf.vocab_size,
            rms_norm_eps: hf.rms_norm_eps,
            activation: hf.hidden_act,
            rope: Rope {
                theta,
                rotary_dim: rotary_dim(d_head, partial)?,
                scaling,
            },
            tie_word_embeddings: hf.tie_word_embeddings,
            attention_bias: hf.attention_bias,
            mlp_bias: hf.mlp_bias,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks that the numbers describe a model that can exist, within what Glassbox
    /// supports (a lying config must not make it allocate absurd tensors).
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("num_hidden_layers", self.n_layer),
            ("num_attention_heads", self.n_head),
            ("num_key_value_heads", self.n_kv_head),
            ("head_dim", self.d_head),
            ("hidden_size", self.d_model),
            ("intermediate_size", self.d_mlp),
            ("max_position_embeddings", self.n_positions),
            ("vocab_size", self.vocab_size),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(ModelError::Config(format!("{name} must be positive")));
        }
        if !self.n_head.is_multiple_of(self.n_kv_head) {
            return Err(ModelError::Config(format!(
                "num_key_value_heads = {} does not divide num_attention_heads = {}",
                self.n_kv_head, self.n_head
            )));
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0) {
            return Err(ModelError::Config(format!(
                "rms_norm_eps must be a positive number, got {}",
                self.rms_norm_eps
            )));
        }
        if !(self.rope.theta.is_finite() && self.rope.theta > 1.0) {
            return Err(ModelError::Config(format!(
                "rope_theta must be a number above 1, got {}",
                self.rope.theta
            )));
        }
        let limits = [
            ("num_hidden_layers", self.n_layer, 1 << 10),
            ("num_attention_heads", self.n_head, 1 << 10),
            ("head_dim", self.d_head, 1 << 12),
            ("hidden_size", self.d_model, 1 << 16),
            ("intermediate_size", self.d_mlp, 1 << 18),
            ("max_position_embeddings", self.n_positions, 1 << 24),
            ("vocab_size", self.vocab_size, 1 << 22),
        ];
        if let Some((name, value, limit)) = limits.iter().find(|(_, v, l)| v > l) {
            return Err(ModelError::Config(format!(
                "{name} = {value} is beyond what Glassbox supports ({limit})"
            )));
        }
        Ok(())
    }

    /// The dimensions engines and views need.
    #[must_use]
    pub fn dims(&self) -> ModelDims {
        ModelDims {
            family: Family::Llama,
            n_layer: self.n_layer,
            n_head: self.n_head,
            d_model: self.d_model,
            n_positions: self.n_positions,
            vocab_size: self.vocab_size,
        }
    }
}

/// The rotating dimensions for a head of `d_head` with `partial_rotary_factor` `partial`.
pub(crate) fn rotary_dim(d_head: usize, partial: f64) -> Result<usize> {
    if !(partial > 0.0 && partial <= 1.0) {
        return Err(ModelError::Config(format!(
            "partial_rotary_factor must be in (0, 1], got {partial}"
        )));
    }
    let dim = (d_head as f64 * partial) as usize;
    if dim == 0 || !dim.is_multiple_of(2) {
        return Err(ModelError::Config(format!(
            "{dim} rotary dimensions (head_dim {d_head} × {partial}): must be even and positive"
        )));
    }
    Ok(dim)
}

/// The scaling named in `rope_scaling` (transformers 4) or `rope_parameters` (5).
fn rope_scaling(parameters: Option<&Value>, context: usize) -> Result<RopeScaling> {
    let Some(parameters) = parameters.filter(|p| !p.is_null()) else {
        return Ok(RopeScaling::None);
    };
    let text = |key: &str| parameters.get(key).and_then(Value::as_str);
    let number = |key: &str| -> Result<f64> {
        parameters
            .get(key)
            .and_then(Value::as_f64)
            .ok_or_else(|| ModelError::Config(format!("the rope scaling needs a number `{key}`")))
    };
    let kind = text("rope_type").or(text("type")).unwrap_or("default");
    match kind {
        "default" => Ok(RopeScaling::None),
        "linear" => Ok(RopeScaling::Linear {
            factor: positive(number("factor")?, "factor")?,
        }),
        "llama3" => {
            let low_freq_factor = positive(number("low_freq_factor")?, "low_freq_factor")?;
            let high_freq_factor = positive(number("high_freq_factor")?, "high_freq_factor")?;
            if high_freq_factor <= low_freq_factor {
                return Err(ModelError::Config(
                    "llama3 rope scaling needs high_freq_factor > low_freq_factor".into(),
                ));
            }
            Ok(RopeScaling::Llama3 {
                factor: positive(number("factor")?, "factor")?,
                low_freq_factor,
                high_freq_factor,
                original_context: number("original_max_position_embeddings")
                    .unwrap_or(context as f64),
            })
        }
        other => Err(ModelError::Config(format!(
            "rope scaling `{other}` is not supported (Glassbox knows default, linear and llama3)"
        ))),
    }
}

fn positive(value: f64, name: &str) -> Result<f64> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(ModelError::Config(format!(
            "{name} must be positive, got {value}"
        )))
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp, reason = "these values are exact in f32")]
mod tests {
    use super::*;

    const SMOLLM2: &str = r#"{"architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
        "num_attention_heads": 9, "num_key_value_heads": 3, "max_position_embeddings": 8192,
        "vocab_size": 49152, "rms_norm_eps": 1e-05, "rope_theta": 100000,
        "tie_word_embeddings": true, "hidden_act": "silu", "rope_scaling": null}"#;

    #[test]
    fn reads_both_transformers_styles() {
        let four = LlamaConfig::from_json(SMOLLM2).unwrap();
        assert_eq!(
            (four.d_head, four.n_kv_head, four.rope.rotary_dim),
            (64, 3, 64)
        );
        assert_eq!(four.rope.theta, 100_000.0);
        let five = SMOLLM2.replace(
            r#""rope_theta": 100000"#,
            r#""rope_parameters": {"rope_type": "default", "rope_theta": 100000.0, "partial_rotary_factor": 0.5}"#,
        );
        let five = LlamaConfig::from_json(&five).unwrap();
        assert_eq!((five.rope.theta, five.rope.rotary_dim), (100_000.0, 32));
    }

    #[test]
    fn refuses_what_cannot_be_computed() {
        for (from, to, expect) in [
            (
                r#""num_key_value_heads": 3"#,
                r#""num_key_value_heads": 4"#,
                "does not divide",
            ),
            (
                r#""rope_scaling": null"#,
                r#""rope_scaling": {"rope_type": "yarn", "factor": 4}"#,
                "yarn",
            ),
            (
                r#""vocab_size": 49152"#,
                r#""vocab_size": 999999999"#,
                "vocab_size",
            ),
            (
                r#""model_type": "llama""#,
                r#""model_type": "gpt2""#,
                "not a Llama",
            ),
            (
                r#""rms_norm_eps": 1e-05"#,
                r#""rms_norm_eps": -1"#,
                "rms_norm_eps",
            ),
        ] {
            let error = LlamaConfig::from_json(&SMOLLM2.replace(from, to))
                .unwrap_err()
                .to_string();
            assert!(error.contains(expect), "{to}: {error}");
        }
    }
}
