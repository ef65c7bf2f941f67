//! `cfg.json`: what kind of dictionary, its sizes, and where in the model it reads and writes.

use serde::{Deserialize, Serialize};

/// How feature activations are computed from the encoder's pre-activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// ReLU.
    Standard,
    /// Keep the `k` largest pre-activations (after ReLU), zero the rest.
    TopK,
    /// Keep pre-activations above a per-feature `threshold`.
    JumpReLU,
    /// A ReLU transcoder: reads one hook and predicts another.
    Transcoder,
}

/// The fields of SAELens's `cfg.json` that define the computation. Unknown fields are kept
/// out of the way (SAELens writes many training settings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DictConfig {
    /// The activation rule.
    pub architecture: Architecture,
    /// Width of the input activation.
    pub d_in: usize,
    /// Number of features.
    pub d_sae: usize,
    /// Width of the output (a transcoder's target); `d_in` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d_out: Option<usize>,
    /// Features kept per token, for `topk`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
    /// Whether `b_dec` is subtracted from the input before encoding.
    #[serde(default)]
    pub apply_b_dec_to_input: bool,
    /// Where it reads and writes.
    #[serde(default)]
    pub metadata: DictMetadata,
}

/// SAELens's `metadata` block: the hooks (TransformerLens names) and the model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DictMetadata {
    /// The hook the dictionary reads, e.g. `blocks.0.ln2.hook_normalized`.
    #[serde(default)]
    pub hook_name: String,
    /// The hook a transcoder predicts, e.g. `blocks.0.hook_mlp_out`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_name_out: Option<String>,
    /// The model it was trained on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
}

impl DictConfig {
    /// Width of the decoder's output.
    #[must_use]
    pub fn d_out(&self) -> usize {
        self.d_out.unwrap_or(self.d_in)
    }
}
