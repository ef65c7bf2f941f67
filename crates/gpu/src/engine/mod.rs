//! The GPU engine: a model of any family (GPT-2, Llama) and its dictionaries on wgpu,
//! computing what the CPU engine computes, with the same hook points, interventions and
//! requests ([`glassbox_engine::Engine`]).
//!
//! Weights go up once ([`GpuModel::new`]); each pass is recorded as a plan and sent as one
//! command buffer, and only what the caller asked for (kept hooks, logits or their top
//! k, each position's strongest features) is read back, in one readback.

mod attribution;
mod dictionary;
mod pass;
mod readout;
mod weights;

use std::future::Future;
use std::sync::{Arc, Mutex};

use glassbox_dict::Dictionary;
use glassbox_engine::{
    Attach, Attachment, Engine, EngineError, LogitsRead, PassOutput, PassRequest, check_attachment,
    check_pass, lock,
};
use glassbox_model::{HookPoint, Hooks, Model, ModelDims};

use crate::kernels::Kernels;
use crate::plan::{PassCounts, PlanBuffers, execute};
use crate::{GpuContext, GpuError};
use dictionary::DeviceDictionary;
use pass::{KvBuffers, Layout, Recorder, Scratch};
use weights::DeviceWeights;

pub use attribution::GpuCarrier;
pub use weights::QuantizedWeights;

/// A model on the GPU, with the dictionaries attached to it.
#[derive(Debug)]
pub struct GpuModel {
    ctx: Arc<GpuContext>,
    /// The CPU model it was made from (its weights are shared, not copied): the walk reads
    /// its configuration, attribution its attention weights.
    model: Model,
    weights: DeviceWeights,
    dictionaries: Vec<DeviceDictionary>,
    attachments: Vec<Attachment>,
    kernels: Kernels,
    scratch: Mutex<Scratch>,
    plan_buffers: Mutex<PlanBuffers>,
    counts: Mutex<PassCounts>,
    /// The transposed attention weights attribution carries gradients through, once
    /// a graph asked for them.
    transposed: Mutex<Option<attribution::TransposedWeights>>,
    /// What attribution reads of the model's weights (any family), made once a graph
    /// asked for it.
    frozen: Mutex<Option<Arc<glassbox_circuits::FrozenWeights>>>,
}

/// Keys and values of the positions run so far, on the device, for generation; room for
/// `capacity` positions, grown (up to the model's context) when a pass needs more.
#[derive(Debug)]
pub struct GpuKvCache {
    keys: Vec<wgpu::Buffer>,
    values: Vec<wgpu::Buffer>,
    len: usize,
    capacity: usize,
}

/// Positions a new KV cache has room for, at most: a long context grows on demand.
const INITIAL_CACHE_POSITIONS: usize = 1024;

impl GpuModel {
    /// Compiles the kernels and uploads `model`'s weights, quantized ones as
    /// [`QuantizedWeights::default`] says.
    pub async fn new(ctx: Arc<GpuContext>, model: impl Into<Model>) -> Result<Self, GpuError> {
        Self::with_weights(ctx, model, QuantizedWeights::default()).await
    }

    /// [`Self::new`], with quantized weights uploaded as `quantized` says.
    pub async fn with_weights(
        ctx: Arc<GpuContext>,
        model: impl Into<Model>,
        quantized: QuantizedWeights,
    ) -> Result<Self, GpuError> {
        let model = model.into();
        let kernels = Kernels::new(&ctx).await?;
        let weights = ctx
            .scoped(|| DeviceWeights::upload(&ctx, &model, quantized))
            .await?;
        Ok(Self {
            model,
            weights,
            dictionaries: Vec::new(),
            attachments: Vec::new(),
            kernels,
            scratch: Mutex::new(Scratch::default()),
            plan_buffers: Mutex::new(PlanBuffers::default()),
            counts: Mutex::new(PassCounts::default()),
            transposed: Mutex::new(None),
            frozen: Mutex::new(None),
            ctx,
        })
    }

    /// The same model on the same device, to attach more dictionaries to: its weights,
    /// kernels, the dictionaries attached so far and what attribution made of the weights
    /// are shared (wgpu handles), not copied or uploaded again; this one is left as it is.
    #[must_use]
    pub fn sharing_weights(&self) -> Self {
        Self {
            ctx: Arc::clone(&self.ctx),
            model: self.model.clone(),
            weights: self.weights.clone(),
            dictionaries: self.dictionaries.clone(),
            attachments: self.attachments.clone(),
            kernels: self.kernels.clone(),
            scratch: Mutex::new(Scratch::default()),
            plan_buffers: Mutex::new(PlanBuffers::default()),
            counts: Mutex::new(PassCounts::default()),
            transposed: Mutex::new(lock(&self.transposed).clone()),
            frozen: Mutex::new(lock(&self.frozen).clone()),
        }
    }

    /// The model it runs.
    #[must_use]
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Query heads, key/value heads, and the width of a head.
    pub(crate) fn head_shape(&self) -> (usize, usize, usize) {
        match &self.model {
            Model::Gpt2(m) => {
                let c = m.config();
                (c.n_head, c.n_head, c.n_embd / c.n_head)
            }
            Model::Llama(m) => {
                let c = m.config();
                (c.n_head, c.n_kv_head, c.d_head)
            }
        }
    }

    /// Values in one position's row of the key (or value) cache.
    fn kv_width(&self) -> usize {
        let (_, kv_heads, d_head) = self.head_shape();
        kv_heads * d_head
    }

    /// The device this model runs on.
    #[must_use]
    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// Bytes of weights (model and dictionaries) on the device.
    #[must_use]
    pub fn weight_bytes(&self) -> u64 {
        self.weights.bytes + self.dictionaries.iter().map(|d| d.bytes).sum::<u64>()
    }

    /// Submits, readbacks and dispatches of every pass so far.
    #[must_use]
    pub fn counts(&self) -> PassCounts {
        *lock(&self.counts)
    }

    /// Uploads `dictionary`, which reads the activation at `input` and whose decoder writes
    /// where `output` is (for a transcoder of block `l`: `blocks.l.ln2.hook_normalized` and
    /// `blocks.l.hook_mlp_out`). Returns its number for requests.
    pub async fn attach_dictionary(
        &mut self,
        dictionary: &Dictionary,
        input: HookPoint,
        output: HookPoint,
    ) -> Result<usize, GpuError> {
        check_attachment(&self.dims(), input, output)
            .map_err(|e| GpuError::Shape(e.to_string()))?;
        let device = self
            .ctx
            .scoped(|| DeviceDictionary::upload(&self.ctx, dictionary))
            .await?;
        self.dictionaries.push(device);
        self.attachments
            .push(Attachment::new(dictionary, input, output));
        Ok(self.dictionaries.len() - 1)
    }

    /// An empty KV cache.
    pub fn kv_cache(&self) -> GpuKvCache {
        let capacity = self.dims().n_positions.min(INITIAL_CACHE_POSITIONS);
        let n_layer = self.dims().n_layer;
        GpuKvCache {
            keys: (0..n_layer)
                .map(|_| self.cache_buffer("key cache", capacity))
                .collect(),
            values: (0..n_layer)
                .map(|_| self.cache_buffer("value cache", capacity))
                .collect(),
            len: 0,
            capacity,
        }
    }

    fn cache_buffer(&self, label: &'static str, positions: usize) -> wgpu::Buffer {
        self.ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: (positions.max(1) * self.kv_width() * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Gives `cache` room for `needed` positions (checked against the context before),
    /// copying what it holds into larger buffers.
    fn reserve(&self, cache: &mut GpuKvCache, needed: usize) {
        if needed <= cache.capacity {
            return;
        }
        let capacity = needed
            .max(cache.capacity * 2)
            .min(self.dims().n_positions)
            .max(needed);
        let held = (cache.len * self.kv_width() * 4) as u64;
        let device = self.ctx.device();
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("grow KV cache"),
        });
        for (buffers, label) in [
            (&mut cache.keys, "key cache"),
            (&mut cache.values, "value cache"),
        ] {
            for buffer in buffers.iter_mut() {
                let grown = self.cache_buffer(label, capacity);
                if held > 0 {
                    encoder.copy_buffer_to_buffer(buffer, 0, &grown, 0, held);
                }
                *buffer = grown;
            }
        }
        self.ctx.queue().submit([encoder.finish()]);
        cache.capacity = capacity;
    }

    /// The blocks a pass must run: all, unless it reads only dictionary features (no
    /// logits, no hooks, no KV cache to fill), in which case the blocks up to the last
    /// dictionary read.
    fn blocks_needed(&self, request: &PassRequest, hooks: &Hooks, cached: bool) -> usize {
        let n_layer = self.dims().n_layer;
        let hooked = HookPoint::all(n_layer, self.model.family())
            .into_iter()
            .any(|h| hooks.touches(h));
        if cached || hooked || request.logits != LogitsRead::None || !request.steering.is_empty() {
            return n_layer;
        }
        request
            .dictionaries()
            .filter_map(|d| self.attachments.get(d))
            .map(|a| match a.input {
                HookPoint::Embed | HookPoint::PosEmbed => 0,
                hook => hook.layer().map_or(n_layer, |l| l + 1),
            })
            .max()
            .unwrap_or(n_layer)
    }

    /// One pass: recorded, sent as one submit, read back once.
    async fn run(
        &self,
        ids: &[u32],
        request: &PassRequest,
        hooks: &mut Hooks,
        cache: Option<&mut GpuKvCache>,
    ) -> Result<PassOutput, EngineError> {
        let offset = cache.as_ref().map_or(0, |c| c.len);
        let dims = self.dims();
        check_pass(&dims, &self.attachments, ids, offset, request, hooks)?;
        let len = ids.len();
        let mut cache = cache;
        if let Some(cache) = cache.as_deref_mut() {
            self.reserve(cache, offset + len);
        }
        let (plan, layout): (_, Layout) = {
            let mut scratch = lock(&self.scratch);
            let width = self.kv_width();
            let (keys, values): (Vec<_>, Vec<_>) = match cache.as_ref() {
                Some(c) => (c.keys.clone(), c.values.clone()),
                None => (0..dims.n_layer)
                    .map(|l| {
                        (
                            scratch.get(self.ctx.device(), "keys", l, len * width),
                            scratch.get(self.ctx.device(), "values", l, len * width),
                        )
                    })
                    .unzip(),
            };
            Recorder {
                device: self.ctx.device(),
                model: &self.model,
                dims,
                weights: &self.weights,
                dictionaries: &self.dictionaries,
                attachments: &self.attachments,
                scratch: &mut scratch,
                hooks,
                request,
                kv: KvBuffers {
                    keys: &keys,
                    values: &values,
                },
                offset,
                len,
                blocks: self.blocks_needed(request, hooks, cache.is_some()),
                plan: crate::plan::Plan::default(),
                layout: Layout::default(),
            }
            .record(ids)?
        };
        let bytes = execute(
            &self.ctx,
            &self.kernels,
            &self.plan_buffers,
            plan,
            &self.counts,
        )
        .await?;
        if let Some(cache) = cache {
            cache.len = offset + len;
        }
        Ok(readout::read_output(
            &bytes,
            layout,
            hooks,
            (offset, len),
            request,
        )?)
    }
}

impl From<GpuError> for EngineError {
    /// Shapes that do not fit are the request's fault; what the GPU cannot do can be done
    /// on the CPU; anything else is the GPU failing, and the CPU engine can take over.
    fn from(error: GpuError) -> Self {
        match error {
            GpuError::Shape(message) => Self::Request(message),
            GpuError::Unsupported(message) => Self::Unsupported(message),
            other => Self::Failed(other.to_string()),
        }
    }
}

impl Engine for GpuModel {
    type Cache = GpuKvCache;

    fn dims(&self) -> ModelDims {
        self.model.dims()
    }

    fn attachments(&self) -> &[Attachment] {
        &self.attachments
    }

    fn new_cache(&self) -> GpuKvCache {
        self.kv_cache()
    }

    fn cached_len(&self, cache: &GpuKvCache) -> usize {
        cache.len
    }

    fn pass(
        &self,
        ids: &[u32],
        request: &PassRequest,
        hooks: &mut Hooks,
        cache: Option<&mut GpuKvCache>,
    ) -> impl Future<Output = glassbox_engine::Result<PassOutput>> {
        self.run(ids, request, hooks, cache)
    }
}

impl Attach for GpuModel {
    async fn attach(
        &mut self,
        dictionary: &Arc<Dictionary>,
        input: HookPoint,
        output: HookPoint,
    ) -> glassbox_engine::Result<usize> {
        Ok(self.attach_dictionary(dictionary, input, output).await?)
    }
}
