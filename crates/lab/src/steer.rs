//! Steering with transcoder features ("model medicine"): set chosen features to a value,
//! or scale them (0 ablates), at every position while the model generates, and compare
//! with the same generation unsteered.
//!
//! The change is made where the feature writes: block `l`'s MLP output gets
//! `(new − old) × W_dec[f]` added, with `old` the feature's activation computed in the
//! same pass, so whatever the transcoder does not explain is kept (the engines do this
//! for a [`Steering`] request).

use std::collections::BTreeMap;

use glassbox_engine::{FeatureSet, LogitsRead, PassRequest, Steering};
use glassbox_model::Hooks;
use glassbox_model::sampling::Sampling;
use serde::{Deserialize, Serialize};

use crate::analyze::Prediction;
use crate::beside::{Alone, Beside};
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

/// The most features one steering request (or link) may change.
pub const MAX_STEERED_FEATURES: usize = 64;

impl Lab {
    /// `features` as the engines steer them: one [`Steering`] per block, at `positions`
    /// only (`None`: everywhere). Every feature must exist and every value be a number.
    pub fn steering(
        &self,
        features: &[FeatureSteer],
        positions: Option<&[usize]>,
    ) -> Result<Vec<Steering>> {
        if features.len() > MAX_STEERED_FEATURES {
            return Err(LabError::Request(format!(
                "{} features to steer; at most {MAX_STEERED_FEATURES} at once",
                features.len()
            )));
        }
        let mut by_layer: BTreeMap<usize, Vec<(usize, FeatureSet)>> = BTreeMap::new();
        for f in features {
            self.check_feature(f.layer, f.feature)?;
            let set = match f.mode {
                SteerMode::Clamp(v) => FeatureSet::Clamp(v),
                SteerMode::Scale(v) => FeatureSet::Scale(v),
            };
            let (FeatureSet::Clamp(value) | FeatureSet::Scale(value)) = set;
            if !value.is_finite() {
                return Err(LabError::Request(format!(
                    "feature {}/{}: {value} is not a number to steer with",
                    f.layer, f.feature
                )));
            }
            by_layer.entry(f.layer).or_default().push((f.feature, set));
        }
        Ok(by_layer
            .into_iter()
            .map(|(dictionary, features)| Steering {
                dictionary,
                features,
                positions: positions.map(<[usize]>::to_vec),
            })
            .collect())
    }

    /// Generates from `request.prompt` with and without the steering.
    pub async fn steer(&self, request: &SteerRequest) -> Result<SteerResult> {
        self.steer_with(request, &Alone).await
    }

    /// [`Lab::steer`], the unsteered text continued `beside` (another worker) meanwhile.
    pub async fn steer_with(
        &self,
        request: &SteerRequest,
        beside: &dyn Beside,
    ) -> Result<SteerResult> {
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
        let steering = self.steering(&request.features, None)?;
        self.compare_steered(&ids, &sampling, &steering, &Hooks::none(), beside)
            .await
    }

    /// `ids` continued by `sampling` with and without `steering` and the interventions
    /// of `hooks` (at absolute positions), with the next-token predictions of each and
    /// the logits that moved most; the unsteered continuation `beside` when it can.
    pub(crate) async fn compare_steered(
        &self,
        ids: &[u32],
        sampling: &Sampling,
        steering: &[Steering],
        hooks: &Hooks,
        beside: &dyn Beside,
    ) -> Result<SteerResult> {
        // Asked first, so the other worker continues while this one works.
        let elsewhere = beside.continuation(ids, sampling);
        let plain = PassRequest::logits(LogitsRead::Last);
        let before = self.pass(ids, &plain).await?.last_logits()?;
        let steered_request = PassRequest {
            steering: steering.to_vec(),
            ..plain
        };
        let after = self
            .pass_with(ids, &steered_request, hooks)
            .await?
            .0
            .last_logits()?;
        let change: Vec<f32> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
        let mut order: Vec<usize> = (0..change.len()).collect();
        order.sort_by(|&a, &b| change[b].total_cmp(&change[a]).then(a.cmp(&b)));
        let named = |i: &usize| (self.token_text(*i as u32), change[*i]);
        let steered = self.continuation(ids, sampling, steering, hooks).await?;
        let baseline = self.unsteered(ids, sampling, elsewhere).await?;
        Ok(SteerResult {
            baseline: self.tokenizer.decode(&baseline)?,
            steered: self.tokenizer.decode(&steered.tokens)?,
            baseline_predictions: self.top_predictions(&before, 5),
            steered_predictions: self.top_predictions(&after, 5),
            raised: order.iter().take(5).map(named).collect(),
            lowered: order.iter().rev().take(5).map(named).collect(),
        })
    }
}
