//! Where the lab runs the model: on the GPU engine once [`Lab::start_gpu`] succeeded, on
//! the CPU engine (candle-core) otherwise. Every computation the lab needs (a prompt's
//! features, one feature's column, kept activations, steered logits, a steered
//! continuation, an attribution graph) goes through the few functions here, so both
//! engines answer the same questions; a GPU error (a lost device, an out-of-memory) drops
//! back to the CPU for good, answers the request there, and is remembered so the app can
//! say what happened.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use candle_core::Tensor;
use glassbox_circuits::{
    AttributionOptions, CircuitError, Graph, Replacement, Setup, attribute, attribute_with,
};
use glassbox_gpu::{
    AdapterPreference, ColumnRead, FeatureRead, FeatureSet, GpuContext, GpuError, GpuGeneration,
    GpuModel, Logits, LogitsRead, PassRequest, Steering,
};
use glassbox_model::generate::{Generation, Sampling, generate};
use glassbox_model::{HookPoint, Hooks, Norm};
use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};
use crate::lab::Lab;
use crate::steer::{FeatureSteer, SteerMode};

/// Which engine answers, for the app to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineInfo {
    /// The GPU adapter in use, or `None` for the CPU engine.
    pub gpu: Option<String>,
    /// Why the GPU engine is not in use, when it was tried and failed or was lost.
    pub note: Option<String>,
}

/// The GPU engine, when one runs, and why it stopped, when it did.
#[derive(Debug, Default)]
pub(crate) struct EngineSlot {
    gpu: Mutex<Option<Arc<GpuModel>>>,
    note: Mutex<Option<String>>,
}

/// A prompt's last-position logits and, per block, per position, its strongest features.
pub(crate) struct PromptRun {
    pub(crate) last_logits: Vec<f32>,
    pub(crate) features: Vec<Vec<Vec<(u32, f32)>>>,
}

impl Lab {
    /// Moves the model and its dictionaries to a GPU; afterwards every request runs there.
    /// A software adapter (a GPU emulated on the CPU, slower than the CPU engine) is only
    /// taken if `accept_software`. On failure the CPU engine stays in use and the reason
    /// is returned (and kept for [`Self::engine_info`]).
    #[allow(
        clippy::arc_with_non_send_sync,
        reason = "natively the GPU types are Send and Sync; in the browser nothing is, and everything runs on the worker's one thread"
    )]
    pub async fn start_gpu(
        &self,
        preference: AdapterPreference,
        accept_software: bool,
    ) -> Result<EngineInfo> {
        match self.build_gpu(preference, accept_software).await {
            Ok(gpu) => {
                let adapter = gpu.context().adapter().to_string();
                *lock(&self.engine.gpu) = Some(Arc::new(gpu));
                *lock(&self.engine.note) = None;
                Ok(EngineInfo {
                    gpu: Some(adapter),
                    note: None,
                })
            }
            Err(StartError::Software(adapter)) => {
                let reason = format!(
                    "this browser's WebGPU adapter, {adapter}, is a software renderer, slower \
                     than the CPU engine; switch to compare"
                );
                *lock(&self.engine.note) = Some(reason.clone());
                Err(LabError::Request(reason))
            }
            Err(StartError::Gpu(error)) => {
                let reason = format!("the GPU engine could not start: {error}");
                *lock(&self.engine.note) = Some(reason.clone());
                Err(LabError::Request(reason))
            }
        }
    }

    #[allow(
        clippy::arc_with_non_send_sync,
        reason = "natively the GPU types are Send and Sync; in the browser nothing is, and everything runs on the worker's one thread"
    )]
    async fn build_gpu(
        &self,
        preference: AdapterPreference,
        accept_software: bool,
    ) -> std::result::Result<GpuModel, StartError> {
        let ctx = Arc::new(GpuContext::new(preference).await?);
        if ctx.adapter().is_software() && !accept_software {
            return Err(StartError::Software(ctx.adapter().to_string()));
        }
        let mut gpu = GpuModel::new(ctx, &self.model).await?;
        for (layer, dictionary) in self.dictionaries.iter().enumerate() {
            let (input, output) = transcoder_hooks(layer);
            gpu.attach(dictionary, input, output).await?;
        }
        Ok(gpu)
    }

    /// Goes back to the CPU engine (the person chose it).
    pub fn stop_gpu(&self) {
        *lock(&self.engine.gpu) = None;
        *lock(&self.engine.note) = None;
    }

    /// Which engine answers now.
    #[must_use]
    pub fn engine_info(&self) -> EngineInfo {
        EngineInfo {
            gpu: self.gpu().map(|g| g.context().adapter().to_string()),
            note: lock(&self.engine.note).clone(),
        }
    }

    /// The GPU engine, when one runs (for benchmarks and tests).
    #[must_use]
    pub fn gpu_model(&self) -> Option<Arc<GpuModel>> {
        lock(&self.engine.gpu).clone()
    }

    fn gpu(&self) -> Option<Arc<GpuModel>> {
        self.gpu_model()
    }

    /// Drops the GPU engine after `error`; the request is answered on the CPU.
    fn fall_back(&self, error: &dyn std::fmt::Display) {
        *lock(&self.engine.gpu) = None;
        *lock(&self.engine.note) = Some(format!(
            "the GPU engine failed and the CPU engine took over: {error}"
        ));
    }

    /// The last position's logits and each position's `top` strongest features per block.
    pub(crate) async fn run_prompt(&self, ids: &[u32], top: usize) -> Result<PromptRun> {
        if let Some(gpu) = self.gpu() {
            let request = PassRequest {
                logits: LogitsRead::Last,
                features: (0..self.dictionaries.len())
                    .map(|dictionary| FeatureRead {
                        dictionary,
                        top: self.most_active(dictionary, top),
                    })
                    .collect(),
                columns: Vec::new(),
                steering: Vec::new(),
            };
            match gpu.pass(ids, &request, &mut Hooks::none()).await {
                Ok(output) => {
                    if let Some(Logits::Rows { values, .. }) = output.logits {
                        return Ok(PromptRun {
                            last_logits: values,
                            features: output.features,
                        });
                    }
                }
                Err(error) => self.fall_back(&error),
            }
        }
        let mut hooks = Hooks::none();
        for l in 0..self.dictionaries.len() {
            hooks = hooks.cache(transcoder_hooks(l).0);
        }
        let logits = self.model.forward_ids(ids, &mut hooks)?;
        let cache = hooks.take_cache();
        let last_logits = logits.get(ids.len() - 1)?.to_vec1()?;
        let mut features = Vec::with_capacity(self.dictionaries.len());
        for (layer, dictionary) in self.dictionaries.iter().enumerate() {
            let input = cache[&transcoder_hooks(layer).0].squeeze(0)?;
            let acts: Vec<Vec<f32>> = dictionary.encode(&input)?.to_vec2()?;
            features.push(acts.iter().map(|row| strongest(row, top)).collect());
        }
        Ok(PromptRun {
            last_logits,
            features,
        })
    }

    /// Features that can be active at once in `dictionary`, at most `top`.
    fn most_active(&self, dictionary: usize, top: usize) -> usize {
        let config = &self.dictionaries[dictionary].config;
        top.min(config.d_sae).min(config.k.unwrap_or(config.d_sae))
    }

    /// Feature `feature` of block `layer` at every position of `ids`.
    pub(crate) async fn feature_column(
        &self,
        ids: &[u32],
        layer: usize,
        feature: usize,
    ) -> Result<Vec<f32>> {
        if let Some(gpu) = self.gpu() {
            let request = PassRequest {
                columns: vec![ColumnRead {
                    dictionary: layer,
                    feature,
                }],
                ..PassRequest::logits(LogitsRead::None)
            };
            match gpu.pass(ids, &request, &mut Hooks::none()).await {
                Ok(mut output) => return Ok(output.columns.swap_remove(0)),
                Err(error) => self.fall_back(&error),
            }
        }
        let hook = transcoder_hooks(layer).0;
        let mut hooks = Hooks::none().cache(hook);
        self.model.forward_ids(ids, &mut hooks)?;
        let input = hooks.take_cache()[&hook].squeeze(0)?;
        let acts = self.dictionary(layer)?.encode(&input)?;
        Ok(acts.narrow(1, feature, 1)?.squeeze(1)?.to_vec1()?)
    }

    /// The last position's logits with `steering` applied (none: the plain model).
    pub(crate) async fn steered_logits(
        &self,
        ids: &[u32],
        steering: &[FeatureSteer],
    ) -> Result<Vec<f32>> {
        if let Some(gpu) = self.gpu() {
            let request = PassRequest {
                steering: gpu_steering(steering),
                ..PassRequest::logits(LogitsRead::Last)
            };
            match gpu.pass(ids, &request, &mut Hooks::none()).await {
                Ok(output) => {
                    if let Some(Logits::Rows { values, .. }) = output.logits {
                        return Ok(values);
                    }
                }
                Err(error) => self.fall_back(&error),
            }
        }
        let logits: Tensor = self
            .model
            .forward_ids(ids, &mut self.steering_hooks(steering)?)?;
        Ok(logits.get(ids.len() - 1)?.to_vec1()?)
    }

    /// The activations at `points` of a pass over `ids`, each `[1, …]` as the CPU
    /// engine keeps them.
    pub(crate) async fn activations(
        &self,
        ids: &[u32],
        points: &[HookPoint],
    ) -> Result<BTreeMap<HookPoint, Tensor>> {
        let keep = || points.iter().fold(Hooks::none(), |h, &p| h.cache(p));
        if let Some(gpu) = self.gpu() {
            let mut hooks = keep();
            match gpu
                .pass(ids, &PassRequest::logits(LogitsRead::None), &mut hooks)
                .await
            {
                Ok(_) => return Ok(hooks.take_cache()),
                Err(error) => self.fall_back(&error),
            }
        }
        let mut hooks = keep();
        self.model.forward_ids(ids, &mut hooks)?;
        Ok(hooks.take_cache())
    }

    /// The attribution graph of `replacement`'s prompt.
    pub(crate) async fn attribution_graph(
        &self,
        replacement: &Replacement,
        options: &AttributionOptions,
    ) -> Result<Graph> {
        if let Some(gpu) = self.gpu() {
            let setup = Setup::new(
                &self.model,
                replacement,
                options.logit_probability,
                options.max_logits,
            )?;
            let graph = match gpu.attribution(&self.model, &setup, replacement).await {
                Ok(carrier) => attribute_with(&setup, replacement, &carrier, options).await,
                Err(error) => Err(error),
            };
            match graph {
                Ok(graph) => return Ok(graph),
                Err(CircuitError::Engine(reason)) => self.fall_back(&reason),
                Err(other) => return Err(other.into()),
            }
        }
        Ok(attribute(&self.model, replacement, options)?)
    }

    /// Continues `ids` with `steering` applied at every step.
    pub(crate) async fn continuation(
        &self,
        ids: &[u32],
        sampling: &Sampling,
        steering: &[FeatureSteer],
    ) -> Result<Generation> {
        if let Some(gpu) = self.gpu() {
            let settings = GpuGeneration {
                sampling: sampling.clone(),
                steering: gpu_steering(steering),
            };
            match gpu.generate(ids, &settings, &mut Hooks::none()).await {
                Ok(generation) => return Ok(generation),
                Err(error) => self.fall_back(&error),
            }
        }
        Ok(generate(
            &self.model,
            ids,
            sampling,
            &mut self.steering_hooks(steering)?,
        )?)
    }
}

/// Why the GPU engine did not start.
enum StartError {
    /// Only a software adapter was found, and it was not wanted.
    Software(String),
    /// The GPU failed.
    Gpu(GpuError),
}

impl From<GpuError> for StartError {
    fn from(error: GpuError) -> Self {
        Self::Gpu(error)
    }
}

/// Where block `layer`'s transcoder reads and writes.
pub(crate) fn transcoder_hooks(layer: usize) -> (HookPoint, HookPoint) {
    (
        HookPoint::LnNormalized(layer, Norm::Ln2),
        HookPoint::MlpOut(layer),
    )
}

/// The lab's steering as the GPU engine takes it: one entry per block (dictionary).
fn gpu_steering(features: &[FeatureSteer]) -> Vec<Steering> {
    let mut steering: Vec<Steering> = Vec::new();
    for f in features {
        let set = match f.mode {
            SteerMode::Clamp(v) => FeatureSet::Clamp(v),
            SteerMode::Scale(v) => FeatureSet::Scale(v),
        };
        match steering.iter_mut().find(|s| s.dictionary == f.layer) {
            Some(s) => s.features.push((f.feature, set)),
            None => steering.push(Steering {
                dictionary: f.layer,
                features: vec![(f.feature, set)],
            }),
        }
    }
    steering
}

/// The `n` strongest positive entries of `row`, strongest first, ties to the lower index.
fn strongest(row: &[f32], n: usize) -> Vec<(u32, f32)> {
    let mut active: Vec<usize> = (0..row.len()).filter(|&f| row[f] > 0.0).collect();
    active.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
    active
        .into_iter()
        .take(n)
        .map(|f| (f as u32, row[f]))
        .collect()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
