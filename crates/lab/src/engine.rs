//! Which engine answers the lab: the GPU engine once [`Lab::start_gpu`] succeeded, the
//! CPU engine otherwise. Every computation goes through [`Fallback::run`], so a GPU error
//! (a lost device, an out-of-memory) hands it to the CPU for good, and the reason is kept
//! for the app to show. The helpers here are the passes the lab's views make.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::Arc;

use candle_core::Tensor;
use glassbox_circuits::{
    AttributionEngine, AttributionOptions, FrozenWeights, Graph, Lanes, Replacement, Setup, Spread,
    attribute_on, attribute_with,
};
use glassbox_dict::Dictionary;
use glassbox_engine::{Active, Attach, Engine, PassOutput, PassRequest, Steering, generate};
use glassbox_gpu::{AdapterPreference, GpuContext, GpuError, GpuModel, QuantizedWeights};
use glassbox_model::sampling::{Generation, Sampling};
use glassbox_model::{HookPoint, Hooks};
use glassbox_pack::LabelIndex;
use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};
use crate::lab::Lab;

/// Which engine answers, for the app to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineInfo {
    /// The GPU adapter in use, or `None` for the CPU engine.
    pub gpu: Option<String>,
    /// Why the GPU engine is not in use, when it was tried and failed or was lost.
    pub note: Option<String>,
    /// Whether a second worker computes part of the CPU engine's products (the page's
    /// second core; set by the page's engine worker, never by the lab).
    #[serde(default)]
    pub helper_worker: bool,
}

/// Why the GPU engine did not start.
enum StartError {
    /// Only a software adapter was found, and it was not wanted.
    Software(String),
    /// The GPU failed.
    Gpu(String),
}

impl From<GpuError> for StartError {
    fn from(error: GpuError) -> Self {
        Self::Gpu(error.to_string())
    }
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
                self.engines.start(Arc::new(gpu));
                Ok(self.engine_info())
            }
            Err(error) => {
                let reason = match error {
                    StartError::Software(adapter) => format!(
                        "this browser's WebGPU adapter, {adapter}, is a software renderer, \
                         slower than the CPU engine; switch to compare"
                    ),
                    StartError::Gpu(error) => format!("the GPU engine could not start: {error}"),
                };
                self.engines.stop(Some(reason.clone()));
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
        let model = self.model();
        let ctx = Arc::new(GpuContext::new(preference).await?);
        if ctx.adapter().is_software() && !accept_software {
            return Err(StartError::Software(ctx.adapter().to_string()));
        }
        // Weights too large for the device in f32 may fit in their blocks (a GGUF's
        // Q8_0/Q4_0/Q4_1 layers): dequantizing at load is faster where both fit.
        let mut gpu = match GpuModel::new(Arc::clone(&ctx), model.clone()).await {
            Err(GpuError::TooLarge { .. } | GpuError::OutOfMemory(_)) => {
                GpuModel::with_weights(ctx, model.clone(), QuantizedWeights::AsStored).await?
            }
            other => other?,
        };
        for (dictionary, &(input, output)) in self.dictionaries.iter().zip(&self.sites) {
            gpu.attach(dictionary, input, output)
                .await
                .map_err(|e| StartError::Gpu(e.to_string()))?;
        }
        Ok(gpu)
    }

    /// This lab (a pack's model loaded alone, [`Lab::from_model`]) with the pack's
    /// features: block `l`'s transcoder attached as dictionary `l`, and the labels (the
    /// corpus may follow, [`Lab::add_corpus`]). The engine in use stays in use: on the GPU, the model's weights are shared
    /// with this lab's, not uploaded again; if the GPU cannot take the transcoders, the
    /// CPU engine answers and the reason is kept.
    #[allow(
        clippy::arc_with_non_send_sync,
        reason = "natively the GPU types are Send and Sync; in the browser nothing is, and everything runs on the worker's one thread"
    )]
    pub async fn with_pack_features(
        &self,
        transcoders: Vec<Arc<Dictionary>>,
        labels: LabelIndex,
    ) -> Result<Self> {
        if !self.dictionaries.is_empty() {
            return Err(LabError::Request(
                "this lab has dictionaries already; the pack's come first".to_owned(),
            ));
        }
        let name = self.name.clone();
        let (model, tokenizer) = (self.model().clone(), self.tokenizer.clone());
        let lab = Self::new(name, model, tokenizer, transcoders, None, labels)?;
        if let Some(corpus) = self.corpus.get() {
            lab.corpus.get_or_init(|| Arc::clone(corpus));
        }
        let Some(gpu) = self.gpu_model() else {
            lab.engines.stop(self.engines.note());
            return Ok(lab);
        };
        let mut gpu = gpu.sharing_weights();
        for (dictionary, &(input, output)) in lab.dictionaries.iter().zip(&lab.sites) {
            if let Err(error) = gpu.attach(dictionary, input, output).await {
                let reason = format!("the GPU could not take the transcoders: {error}");
                lab.engines.stop(Some(reason));
                return Ok(lab);
            }
        }
        lab.engines.start(Arc::new(gpu));
        Ok(lab)
    }

    /// Goes back to the CPU engine (the person chose it).
    pub fn stop_gpu(&self) {
        self.engines.stop(None);
    }

    /// Which engine answers now.
    #[must_use]
    pub fn engine_info(&self) -> EngineInfo {
        EngineInfo {
            gpu: self.gpu_model().map(|g| g.context().adapter().to_string()),
            note: self.engines.note(),
            helper_worker: false,
        }
    }

    /// The GPU engine, when one runs (for benchmarks and tests).
    #[must_use]
    pub fn gpu_model(&self) -> Option<Arc<GpuModel>> {
        self.engines.primary()
    }

    /// One pass over `ids` on whichever engine answers: what `request` reads, and what
    /// `hooks` keeps (its interventions applied).
    pub async fn pass_with(
        &self,
        ids: &[u32],
        request: &PassRequest,
        hooks: &Hooks,
    ) -> Result<(PassOutput, BTreeMap<HookPoint, Tensor>)> {
        self.engines
            .run(async |engine| {
                let mut hooks = hooks.clone();
                let output = engine.pass(ids, request, &mut hooks, None).await?;
                Ok((output, hooks.take_cache()))
            })
            .await
    }

    /// One pass over `ids` reading what `request` asks.
    pub async fn pass(&self, ids: &[u32], request: &PassRequest) -> Result<PassOutput> {
        Ok(self.pass_with(ids, request, &Hooks::none()).await?.0)
    }

    /// The activations at `points` of a pass over `ids`, each `[1, …]`.
    pub(crate) async fn activations(
        &self,
        ids: &[u32],
        points: &[HookPoint],
    ) -> Result<BTreeMap<HookPoint, Tensor>> {
        let keep = points.iter().fold(Hooks::none(), |h, &p| h.cache(p));
        let request = PassRequest::logits(glassbox_engine::LogitsRead::None);
        Ok(self.pass_with(ids, &request, &keep).await?.1)
    }

    /// Continues `ids` with `steering` applied at every step.
    pub(crate) async fn continuation(
        &self,
        ids: &[u32],
        sampling: &Sampling,
        steering: &[Steering],
        hooks: &Hooks,
    ) -> Result<Generation> {
        self.engines
            .run(async |engine| {
                Ok(generate(&engine, ids, sampling, steering, &mut hooks.clone()).await?)
            })
            .await
    }

    /// The attribution graph of `replacement`'s prompt.
    pub(crate) async fn attribution_graph(
        &self,
        replacement: &Replacement,
        options: &AttributionOptions,
    ) -> Result<Graph> {
        Ok(self
            .attribution_graph_over(replacement, options, None)
            .await?
            .0)
    }

    /// The attribution graph of `replacement`'s prompt; on the CPU engine with `spread`,
    /// batches go to those lanes too (other workers, given the prompt's ids), and the
    /// batches each worker carried (this one first) come back with the graph. (The GPU
    /// engine carries every batch itself.)
    pub(crate) async fn attribution_graph_over(
        &self,
        replacement: &Replacement,
        options: &AttributionOptions,
        spread: Option<(&dyn Lanes, &[u32])>,
    ) -> Result<(Graph, Option<Vec<usize>>)> {
        let setup = Setup::of(&FrozenWeights::of(self.model())?, replacement, options)?;
        let carried = Cell::new(None);
        let graph = self
            .engines
            .run(async |engine| match (engine, spread) {
                (Active::Secondary(cpu), Some((lanes, ids))) => {
                    let local = cpu.carrier(&setup, replacement).await?;
                    let spread = Spread::new(local, lanes, ids);
                    let graph = attribute_with(&setup, replacement, &spread, options).await?;
                    carried.set(Some(spread.carried()));
                    Ok::<_, LabError>(graph)
                }
                (engine, _) => Ok(attribute_on(&engine, &setup, replacement, options).await?),
            })
            .await?;
        Ok((graph, carried.take()))
    }
}
