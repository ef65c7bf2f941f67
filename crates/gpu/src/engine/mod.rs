//! The GPU engine: a GPT-2-family model and its dictionaries on wgpu, computing what
//! `glassbox_model::Gpt2` computes, with the same hook points and interventions.
//!
//! Weights go up once ([`GpuModel::new`]); each pass is recorded as a plan and sent as one
//! command buffer, and only what the caller asked for (kept hooks, logits or their top
//! k, each position's strongest features) is read back, in one readback.

mod attribution;
mod dictionary;
mod generate;
mod pass;
mod request;
mod weights;

use std::sync::{Arc, Mutex};

use candle_core::{Device, Tensor};
use glassbox_dict::Dictionary;
use glassbox_model::{Gpt2, Gpt2Config, HookPoint, Hooks};

use crate::kernels::Kernels;
use crate::plan::{PassCounts, PlanBuffers, Staged, execute};
use crate::{GpuContext, GpuError};
use dictionary::DeviceDictionary;
use pass::{KvBuffers, Layout, NONE, Recorder, Scratch};
use weights::DeviceWeights;

pub use attribution::GpuCarrier;
pub use generate::GpuGeneration;
pub use request::{
    ColumnRead, FeatureRead, FeatureSet, Logits, LogitsRead, PassOutput, PassRequest, Steering,
};

/// A model on the GPU, with the dictionaries attached to it.
#[derive(Debug)]
pub struct GpuModel {
    ctx: Arc<GpuContext>,
    config: Gpt2Config,
    weights: DeviceWeights,
    dictionaries: Vec<DeviceDictionary>,
    kernels: Kernels,
    scratch: Mutex<Scratch>,
    plan_buffers: Mutex<PlanBuffers>,
    counts: Mutex<PassCounts>,
    /// The transposed attention weights attribution carries gradients through, once
    /// a graph asked for them.
    transposed: Mutex<Option<attribution::TransposedWeights>>,
}

/// Keys and values of the positions run so far, on the device, for generation.
#[derive(Debug)]
pub struct GpuKvCache {
    keys: Vec<wgpu::Buffer>,
    values: Vec<wgpu::Buffer>,
    len: usize,
}

impl GpuKvCache {
    /// Positions held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been run yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl GpuModel {
    /// Compiles the kernels and uploads `model`'s weights (in f32).
    pub async fn new(ctx: Arc<GpuContext>, model: &Gpt2) -> Result<Self, GpuError> {
        let kernels = Kernels::new(&ctx).await?;
        let weights = ctx.scoped(|| DeviceWeights::upload(&ctx, model)).await?;
        Ok(Self {
            config: model.config().clone(),
            weights,
            dictionaries: Vec::new(),
            kernels,
            scratch: Mutex::new(Scratch::default()),
            plan_buffers: Mutex::new(PlanBuffers::default()),
            counts: Mutex::new(PassCounts::default()),
            transposed: Mutex::new(None),
            ctx,
        })
    }

    /// The model's configuration.
    #[must_use]
    pub fn config(&self) -> &Gpt2Config {
        &self.config
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
        *self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Uploads `dictionary`, which reads the activation at `input` and whose decoder writes
    /// where `output` is (for a transcoder of block `l`: `blocks.l.ln2.hook_normalized` and
    /// `blocks.l.hook_mlp_out`). Returns its number for [`FeatureRead`] and [`Steering`].
    pub async fn attach(
        &mut self,
        dictionary: &Dictionary,
        input: HookPoint,
        output: HookPoint,
    ) -> Result<usize, GpuError> {
        let n_layer = self.config.n_layer;
        let order = HookPoint::all(n_layer);
        let place = |hook: HookPoint| {
            order.iter().position(|h| *h == hook).ok_or_else(|| {
                GpuError::Shape(format!(
                    "{hook} does not exist: the model has {n_layer} blocks"
                ))
            })
        };
        if place(input)? >= place(output)? {
            return Err(GpuError::Shape(format!(
                "a dictionary reading {input} cannot write at {output}, which comes first"
            )));
        }
        let device = self
            .ctx
            .scoped(|| DeviceDictionary::upload(&self.ctx, dictionary, input, output))
            .await?;
        self.dictionaries.push(device);
        Ok(self.dictionaries.len() - 1)
    }

    /// A KV cache for [`Self::pass_cached`], with room for the model's whole context.
    pub fn kv_cache(&self) -> GpuKvCache {
        let rows = self.config.n_positions * self.config.n_embd;
        let make = |label| {
            (0..self.config.n_layer)
                .map(|_| {
                    self.ctx.device().create_buffer(&wgpu::BufferDescriptor {
                        label: Some(label),
                        size: (rows * 4) as u64,
                        usage: wgpu::BufferUsages::STORAGE
                            | wgpu::BufferUsages::COPY_SRC
                            | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    })
                })
                .collect()
        };
        GpuKvCache {
            keys: make("key cache"),
            values: make("value cache"),
            len: 0,
        }
    }

    /// Runs `ids` through the model: one submit, at most one readback. Activations that
    /// `hooks` keeps are stored in it (as the CPU engine stores them); its interventions
    /// apply, except computed ones, which are an error here.
    pub async fn pass(
        &self,
        ids: &[u32],
        request: &PassRequest,
        hooks: &mut Hooks,
    ) -> Result<PassOutput, GpuError> {
        self.run(ids, request, hooks, None).await
    }

    /// Like [`Self::pass`], for the positions after those in `cache`, which it extends.
    pub async fn pass_cached(
        &self,
        ids: &[u32],
        request: &PassRequest,
        hooks: &mut Hooks,
        cache: &mut GpuKvCache,
    ) -> Result<PassOutput, GpuError> {
        self.run(ids, request, hooks, Some(cache)).await
    }

    fn check(
        &self,
        ids: &[u32],
        request: &PassRequest,
        hooks: &Hooks,
        offset: usize,
    ) -> Result<(), GpuError> {
        hooks
            .validate(self.config.n_layer)
            .map_err(|e| GpuError::Shape(e.to_string()))?;
        if ids.is_empty() {
            return Err(GpuError::Shape("no tokens to run".to_owned()));
        }
        if offset + ids.len() > self.config.n_positions {
            return Err(GpuError::Shape(format!(
                "{} tokens is more than the model's context of {} (n_positions)",
                offset + ids.len(),
                self.config.n_positions
            )));
        }
        if let Some(&id) = ids
            .iter()
            .find(|&&id| id as usize >= self.config.vocab_size)
        {
            return Err(GpuError::Shape(format!(
                "token id {id} is out of range: the vocabulary has {} tokens",
                self.config.vocab_size
            )));
        }
        let dictionaries = request
            .features
            .iter()
            .map(|r| r.dictionary)
            .chain(request.columns.iter().map(|c| c.dictionary))
            .chain(request.steering.iter().map(|s| s.dictionary));
        for index in dictionaries {
            let Some(dictionary) = self.dictionaries.get(index) else {
                return Err(GpuError::Shape(format!(
                    "dictionary {index} is not attached ({} are)",
                    self.dictionaries.len()
                )));
            };
            if let Some(read) = request
                .columns
                .iter()
                .find(|c| c.dictionary == index && c.feature >= dictionary.d_sae)
            {
                return Err(GpuError::Shape(format!(
                    "feature {} does not exist: dictionary {index} has {}",
                    read.feature, dictionary.d_sae
                )));
            }
            for steering in request.steering.iter().filter(|s| s.dictionary == index) {
                if let Some((feature, _)) = steering
                    .features
                    .iter()
                    .find(|(f, _)| *f >= dictionary.d_sae)
                {
                    return Err(GpuError::Shape(format!(
                        "feature {feature} does not exist: dictionary {index} has {}",
                        dictionary.d_sae
                    )));
                }
            }
        }
        Ok(())
    }

    /// The blocks a pass must run: all, unless it reads only dictionary features (no
    /// logits, no hooks, no KV cache to fill), in which case the blocks up to the last
    /// dictionary read.
    fn blocks_needed(&self, request: &PassRequest, hooks: &Hooks, cached: bool) -> usize {
        let n_layer = self.config.n_layer;
        let hooked = HookPoint::all(n_layer)
            .into_iter()
            .any(|h| hooks.touches(h));
        if cached || hooked || request.logits != LogitsRead::None {
            return n_layer;
        }
        request
            .features
            .iter()
            .map(|r| r.dictionary)
            .chain(request.columns.iter().map(|c| c.dictionary))
            .filter_map(|d| self.dictionaries.get(d))
            .map(|d| match d.input {
                HookPoint::Embed | HookPoint::PosEmbed => 0,
                hook => hook.layer().map_or(n_layer, |l| l + 1),
            })
            .max()
            .unwrap_or(n_layer)
    }

    async fn run(
        &self,
        ids: &[u32],
        request: &PassRequest,
        hooks: &mut Hooks,
        cache: Option<&mut GpuKvCache>,
    ) -> Result<PassOutput, GpuError> {
        let offset = cache.as_ref().map_or(0, |c| c.len);
        self.check(ids, request, hooks, offset)?;
        let len = ids.len();
        let (plan, layout) = {
            let mut scratch = self
                .scratch
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let d = self.config.n_embd;
            let (keys, values): (Vec<_>, Vec<_>) = match cache.as_ref() {
                Some(c) => (c.keys.clone(), c.values.clone()),
                None => (0..self.config.n_layer)
                    .map(|l| {
                        (
                            scratch.get(self.ctx.device(), "keys", l, len * d),
                            scratch.get(self.ctx.device(), "values", l, len * d),
                        )
                    })
                    .unzip(),
            };
            Recorder {
                device: self.ctx.device(),
                config: &self.config,
                weights: &self.weights,
                dictionaries: &self.dictionaries,
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
        read_output(
            &bytes,
            layout,
            hooks,
            offset,
            self.config.vocab_size,
            (request.features.len(), request.columns.len()),
        )
    }
}

fn floats(bytes: &[u8], staged: Staged) -> Vec<f32> {
    bytemuck::pod_collect_to_vec(&bytes[staged.offset..staged.offset + staged.bytes])
}

fn words(bytes: &[u8], staged: Staged) -> Vec<u32> {
    bytemuck::pod_collect_to_vec(&bytes[staged.offset..staged.offset + staged.bytes])
}

/// Sorts the readback into kept activations, logits and features.
fn read_output(
    bytes: &[u8],
    layout: Layout,
    hooks: &mut Hooks,
    offset: usize,
    vocab: usize,
    (reads, column_reads): (usize, usize),
) -> Result<PassOutput, GpuError> {
    let staged_end = layout
        .kept
        .iter()
        .map(|(_, _, s)| *s)
        .chain(layout.features.iter().flat_map(|(_, _, v, i)| [*v, *i]))
        .chain(layout.columns.iter().map(|(_, s)| *s))
        .chain(
            layout
                .logits
                .iter()
                .flat_map(|(_, v, i)| std::iter::once(*v).chain(*i)),
        )
        .map(|s| s.offset + s.bytes)
        .max()
        .unwrap_or(0);
    if bytes.len() < staged_end {
        return Err(GpuError::Readback(format!(
            "read {} bytes, expected {staged_end}",
            bytes.len()
        )));
    }
    for (hook, dims, staged) in layout.kept {
        let mut values = floats(bytes, staged);
        if matches!(hook, HookPoint::AttnScores(_)) {
            // The device marks masked scores with f32::MIN (WGSL has no infinities).
            for v in &mut values {
                if *v <= f32::MIN {
                    *v = f32::NEG_INFINITY;
                }
            }
        }
        let tensor = Tensor::from_vec(values, dims, &Device::Cpu)
            .map_err(|e| GpuError::Reference(e.to_string()))?;
        hooks
            .keep(hook, tensor, offset)
            .map_err(|e| GpuError::Reference(e.to_string()))?;
    }
    let logits = layout.logits.map(|(read, values, indices)| {
        let values = floats(bytes, values);
        match indices {
            Some(indices) => Logits::Top(
                words(bytes, indices)
                    .into_iter()
                    .zip(values)
                    .filter(|(id, _)| *id != NONE)
                    .collect(),
            ),
            None => Logits::Rows {
                rows: if read == LogitsRead::All {
                    values.len() / vocab
                } else {
                    1
                },
                values,
            },
        }
    });
    let mut features = vec![Vec::new(); reads];
    for (r, read, values, indices) in layout.features {
        let values = floats(bytes, values);
        let indices = words(bytes, indices);
        features[r] = values
            .chunks(read.top)
            .zip(indices.chunks(read.top))
            .map(|(v, i)| {
                i.iter()
                    .zip(v)
                    .filter(|(id, value)| **id != NONE && **value > 0.0)
                    .map(|(id, value)| (*id, *value))
                    .collect()
            })
            .collect();
    }
    let mut columns = vec![Vec::new(); column_reads];
    for (r, staged) in layout.columns {
        columns[r] = floats(bytes, staged);
    }
    Ok(PassOutput {
        logits,
        features,
        columns,
    })
}
