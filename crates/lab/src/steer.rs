//! Steering with transcoder features ("model medicine"): set chosen features to a value,
//! or scale them (0 ablates), at every position while the model generates, and compare
//! with the same generation unsteered.
//!
//! The change is made where the feature writes: block `l`'s MLP output gets
//! `(new − old) × W_dec[f]` added, with `old` the feature's activation computed in the
//! same pass, so whatever the transcoder does not explain is kept.

use std::collections::BTreeMap;
use std::sync::Arc;

use candle_core::Tensor;
use glassbox_dict::Dictionary;
use glassbox_model::generate::Sampling;
use glassbox_model::{
    Edit, EditContext, HookPoint, Hooks, Intervention, ModelError, Norm, Result as ModelResult,
};
use serde::{Deserialize, Serialize};

use crate::analyze::Prediction;
use crate::error::{LabError, Result};
use crate::lab::Lab;

/// How a feature is changed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum SteerMode {
    /// Set to this activation at every position.
    Clamp(f32),
    /// Multiply by this (0 ablates).
    Scale(f32),
}

/// One steered feature.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FeatureSteer {
    /// The block.
    pub layer: usize,
    /// The feature.
    pub feature: usize,
    /// The change.
    pub mode: SteerMode,
}

/// A steering experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SteerRequest {
    /// The prompt.
    pub prompt: String,
    /// The features to change.
    pub features: Vec<FeatureSteer>,
    /// Tokens to generate.
    pub max_tokens: usize,
    /// 0 for greedy.
    pub temperature: f32,
    /// The sampling seed (both runs use it).
    pub seed: u64,
}

/// Steered and unsteered, side by side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SteerResult {
    /// The continuation without steering.
    pub baseline: String,
    /// The continuation with steering.
    pub steered: String,
    /// Next-token predictions after the prompt, unsteered.
    pub baseline_predictions: Vec<Prediction>,
    /// The same, steered.
    pub steered_predictions: Vec<Prediction>,
    /// The tokens whose logit after the prompt rose most, `(token, change)`.
    pub raised: Vec<(String, f32)>,
    /// The tokens whose logit fell most.
    pub lowered: Vec<(String, f32)>,
}

/// The most tokens one steering request may generate.
pub const MAX_STEER_TOKENS: usize = 64;

impl Lab {
    /// Hooks that apply `features` (all must exist).
    pub fn steering_hooks(&self, features: &[FeatureSteer]) -> Result<Hooks> {
        self.steering_hooks_at(features, None)
    }

    /// Hooks that apply `features` at `positions` only (`None`: everywhere).
    pub fn steering_hooks_at(
        &self,
        features: &[FeatureSteer],
        positions: Option<&[usize]>,
    ) -> Result<Hooks> {
        let mut by_layer: BTreeMap<usize, Vec<(usize, SteerMode)>> = BTreeMap::new();
        for f in features {
            self.check_feature(f.layer, f.feature)?;
            let value = match f.mode {
                SteerMode::Clamp(v) | SteerMode::Scale(v) => v,
            };
            if !value.is_finite() {
                return Err(LabError::Request(format!(
                    "feature {}/{}: {value} is not a number to steer with",
                    f.layer, f.feature
                )));
            }
            by_layer
                .entry(f.layer)
                .or_default()
                .push((f.feature, f.mode));
        }
        let mut hooks = Hooks::none();
        for (layer, edits) in by_layer {
            let input = HookPoint::LnNormalized(layer, Norm::Ln2);
            let dictionary = Arc::clone(self.dictionary(layer)?);
            hooks = hooks.cache(input).intervene(Intervention {
                hook: HookPoint::MlpOut(layer),
                positions: positions.map(<[usize]>::to_vec),
                edit: Edit::Computed(Arc::new(move |x: &Tensor, context: EditContext<'_>| {
                    steer_mlp_out(x, context, input, &dictionary, &edits)
                })),
            });
        }
        Ok(hooks)
    }

    /// Generates from `request.prompt` with and without the steering.
    pub async fn steer(&self, request: &SteerRequest) -> Result<SteerResult> {
        if request.max_tokens == 0 || request.max_tokens > MAX_STEER_TOKENS {
            return Err(LabError::Request(format!(
                "generate 1 to {MAX_STEER_TOKENS} tokens, not {}",
                request.max_tokens
            )));
        }
        if !(0.0..=5.0).contains(&request.temperature) {
            return Err(LabError::Request(format!(
                "temperature {} is outside 0 to 5",
                request.temperature
            )));
        }
        let ids = self.prompt_ids(&request.prompt)?;
        let sampling = if request.temperature == 0.0 {
            Sampling::greedy(request.max_tokens)
        } else {
            Sampling {
                temperature: f64::from(request.temperature),
                seed: request.seed,
                top_k: Some(40),
                ..Sampling::greedy(request.max_tokens)
            }
        };
        for f in &request.features {
            self.check_feature(f.layer, f.feature)?;
        }
        let before = self.steered_logits(&ids, &[]).await?;
        let after = self.steered_logits(&ids, &request.features).await?;
        let change: Vec<f32> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
        let mut order: Vec<usize> = (0..change.len()).collect();
        order.sort_by(|&a, &b| change[b].total_cmp(&change[a]).then(a.cmp(&b)));
        let named = |i: &usize| (self.token_text(*i as u32), change[*i]);
        let baseline = self.continuation(&ids, &sampling, &[]).await?;
        let steered = self
            .continuation(&ids, &sampling, &request.features)
            .await?;
        Ok(SteerResult {
            baseline: self.tokenizer.decode(&baseline.tokens)?,
            steered: self.tokenizer.decode(&steered.tokens)?,
            baseline_predictions: self.top_predictions(&before, 5),
            steered_predictions: self.top_predictions(&after, 5),
            raised: order.iter().take(5).map(named).collect(),
            lowered: order.iter().rev().take(5).map(named).collect(),
        })
    }
}

/// `x` (block `l`'s MLP output for the positions of this step) plus, for each edit,
/// `(new − old) × W_dec[f]`, with `old` computed from the MLP's input in this pass.
fn steer_mlp_out(
    x: &Tensor,
    context: EditContext<'_>,
    input: HookPoint,
    dictionary: &Dictionary,
    edits: &[(usize, SteerMode)],
) -> ModelResult<Tensor> {
    let read = context
        .cached
        .get(&input)
        .ok_or_else(|| ModelError::Hook(format!("{input} was not kept for steering")))?;
    let (batch, len, width) = x.dims3()?;
    let read = read.narrow(1, read.dim(1)? - len, len)?;
    let rows = read.reshape((batch * len, read.dim(2)?))?;
    let acts = dictionary
        .encode(&rows)
        .map_err(|e| ModelError::Hook(e.to_string()))?;
    let mut out = x.reshape((batch * len, width))?;
    for &(feature, mode) in edits {
        let old = acts.narrow(1, feature, 1)?;
        let new = match mode {
            SteerMode::Clamp(v) => old.ones_like()?.affine(f64::from(v), 0.0)?,
            SteerMode::Scale(m) => old.affine(f64::from(m), 0.0)?,
        };
        let direction = dictionary.w_dec.narrow(0, feature, 1)?;
        out = (out + (new - old)?.matmul(&direction)?)?;
    }
    Ok(out.reshape((batch, len, width))?)
}
