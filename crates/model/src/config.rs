//! The model's hyper-parameters, read from a Hugging Face GPT-2 `config.json`.

use serde::{Deserialize, Serialize};

use crate::{Family, ModelError, Result};

/// The MLP's non-linearity, by its Hugging Face name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// GPT-2's GELU, tanh approximation (`gelu_new`, also `gelu_pytorch_tanh`, `gelu_fast`).
    #[serde(alias = "gelu_pytorch_tanh", alias = "gelu_fast")]
    #[serde(rename = "gelu_new")]
    GeluTanh,
    /// Exact GELU, with the error function.
    #[serde(rename = "gelu")]
    GeluErf,
    /// Rectified linear unit.
    #[serde(rename = "relu")]
    Relu,
    /// `x · sigmoid(x)`, Llama's gate (`silu`, also `swish`).
    #[serde(rename = "silu", alias = "swish")]
    Silu,
}

/// What every model family has, as engines and views see it: blocks, heads, widths,
/// context and vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelDims {
    /// The architecture, which decides the hooks there are.
    pub family: Family,
    /// Transformer blocks.
    pub n_layer: usize,
    /// Attention (query) heads per block.
    pub n_head: usize,
    /// Width of the residual stream.
    pub d_model: usize,
    /// Context length: the most positions the model reads.
    pub n_positions: usize,
    /// Tokens in the vocabulary.
    pub vocab_size: usize,
}

/// A GPT-2 configuration: the fields of HF's `GPT2Config` that define the computation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gpt2Config {
    /// Transformer blocks.
    pub n_layer: usize,
    /// Attention heads per block.
    pub n_head: usize,
    /// Width of the residual stream, `d_model`.
    pub n_embd: usize,
    /// Context length: the most positions the model reads.
    pub n_positions: usize,
    /// Tokens in the vocabulary.
    pub vocab_size: usize,
    /// LayerNorm's epsilon.
    #[serde(default = "default_epsilon")]
    pub layer_norm_epsilon: f64,
    /// Width of the MLP's hidden layer; `None` means `4 · n_embd`.
    #[serde(default)]
    pub n_inner: Option<usize>,
    /// The MLP's non-linearity.
    #[serde(default = "default_activation")]
    pub activation_function: Activation,
}

fn default_epsilon() -> f64 {
    1e-5
}

fn default_activation() -> Activation {
    Activation::GeluTanh
}

impl Gpt2Config {
    /// Parses and checks a `config.json`.
    pub fn from_json(json: &str) -> Result<Self> {
        let config: Self =
            serde_json::from_str(json).map_err(|e| ModelError::Config(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks that the numbers describe a model that can exist.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
            ("n_embd", self.n_embd),
            ("n_positions", self.n_positions),
            ("vocab_size", self.vocab_size),
            ("n_inner", self.d_mlp()),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(ModelError::Config(format!("{name} must be positive")));
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Err(ModelError::Config(format!(
                "n_head = {} does not divide n_embd = {}",
                self.n_head, self.n_embd
            )));
        }
        if !(self.layer_norm_epsilon.is_finite() && self.layer_norm_epsilon > 0.0) {
            return Err(ModelError::Config(format!(
                "layer_norm_epsilon must be a positive number, got {}",
                self.layer_norm_epsilon
            )));
        }
        // A lying config must not make us allocate absurd tensors: GPT-2 XL is far below these.
        let limits = [
            ("n_layer", self.n_layer, 1 << 10),
            ("n_embd", self.n_embd, 1 << 16),
            ("n_positions", self.n_positions, 1 << 20),
            ("vocab_size", self.vocab_size, 1 << 22),
            ("n_inner", self.d_mlp(), 1 << 18),
        ];
        if let Some((name, value, limit)) = limits.iter().find(|(_, v, l)| v > l) {
            return Err(ModelError::Config(format!(
                "{name} = {value} is beyond what Glassbox supports ({limit})"
            )));
        }
        Ok(())
    }

    /// The config as a Hugging Face `config.json` (with `model_type` and the
    /// architecture's name, so that `transformers` loads it too).
    #[must_use]
    pub fn to_hf_json(&self) -> String {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            map.insert("model_type".into(), "gpt2".into());
            map.insert(
                "architectures".into(),
                serde_json::json!(["GPT2LMHeadModel"]),
            );
            map.insert("n_ctx".into(), self.n_positions.into());
        }
        serde_json::to_string_pretty(&value).unwrap_or_default()
    }

    /// Width of the MLP's hidden layer.
    #[must_use]
    pub fn d_mlp(&self) -> usize {
        self.n_inner.unwrap_or(self.n_embd.saturating_mul(4))
    }

    /// Width of one attention head.
    #[must_use]
    pub fn d_head(&self) -> usize {
        self.n_embd / self.n_head
    }

    /// The dimensions engines and views need.
    #[must_use]
    pub fn dims(&self) -> ModelDims {
        ModelDims {
            family: Family::Gpt2,
            n_layer: self.n_layer,
            n_head: self.n_head,
            d_model: self.n_embd,
            n_positions: self.n_positions,
            vocab_size: self.vocab_size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GPT2_SMALL: &str = r#"{"activation_function": "gelu_new", "n_embd": 768, "n_head": 12,
        "n_layer": 12, "n_positions": 1024, "vocab_size": 50257, "layer_norm_epsilon": 1e-05,
        "n_inner": null, "model_type": "gpt2", "resid_pdrop": 0.1}"#;

    #[test]
    fn reads_gpt2_small() {
        let config = Gpt2Config::from_json(GPT2_SMALL).unwrap();
        assert_eq!(config.d_mlp(), 3072);
        assert_eq!(config.d_head(), 64);
        assert_eq!(config.activation_function, Activation::GeluTanh);
    }

    #[test]
    fn hf_json_round_trips() {
        let config = Gpt2Config::from_json(GPT2_SMALL).unwrap();
        let json = config.to_hf_json();
        assert!(
            json.contains("\"model_type\": \"gpt2\"") && json.contains("\"gelu_new\""),
            "{json}"
        );
        assert_eq!(Gpt2Config::from_json(&json).unwrap(), config);
    }

    #[test]
    fn rejects_heads_that_do_not_divide_the_width() {
        let json = GPT2_SMALL.replace("\"n_head\": 12", "\"n_head\": 7");
        let error = Gpt2Config::from_json(&json).unwrap_err().to_string();
        assert!(
            error.contains("n_head = 7 does not divide n_embd = 768"),
            "{error}"
        );
    }

    #[test]
    fn rejects_missing_fields_and_absurd_sizes() {
        let error = Gpt2Config::from_json(r#"{"n_layer": 2}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("missing field"), "{error}");
        let json = GPT2_SMALL.replace("50257", "999999999");
        let error = Gpt2Config::from_json(&json).unwrap_err().to_string();
        assert!(error.contains("vocab_size"), "{error}");
        let json = GPT2_SMALL.replace("gelu_new", "tanh");
        assert!(Gpt2Config::from_json(&json).is_err());
        // A width whose MLP (4 × n_embd) overflows is refused, never wrapped.
        let huge = (usize::MAX / 2).to_string();
        let json = GPT2_SMALL
            .replace("\"n_embd\": 768", &format!("\"n_embd\": {huge}"))
            .replace("\"n_head\": 12", "\"n_head\": 1");
        let error = Gpt2Config::from_json(&json).unwrap_err().to_string();
        assert!(
            error.contains("n_embd") && error.contains("beyond"),
            "{error}"
        );
    }
}
