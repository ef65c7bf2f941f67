//! Records one forward pass into a [`Plan`]: the computation, hook points and
//! interventions of the CPU engine, on device buffers, sent later as one submit.
//!
//! The residual walk is shared (`block.rs`: the blocks' skeleton, the final norm, the
//! logits); each family (`gpt2.rs`, `llama.rs`) brings its embeddings, attention and MLP,
//! built from shared steps (`norm.rs`: LayerNorm and `RMSNorm`; `attention.rs`: scores,
//! pattern and values over the KV cache; `ops.rs`: products, embeddings, element-wise
//! steps). What happens at
//! each hook point (`sites.rs`: dictionaries, steering, interventions, kept activations),
//! what dictionaries compute (`dictionaries.rs`) and what the pass reads (`reads.rs`) is
//! the same for every family.

mod attention;
mod block;
mod dictionaries;
mod gpt2;
mod llama;
mod norm;
mod ops;
mod reads;
mod sites;

use std::collections::HashMap;

use glassbox_engine::{Attachment, LogitsRead, PassRequest};
use glassbox_model::{HookPoint, Hooks, Model, ModelDims};

use super::dictionary::DeviceDictionary;
use super::weights::DeviceWeights;
use crate::GpuError;
use crate::plan::{Buf, Plan, Staged};

pub(crate) use ops::product;

/// Activation buffers kept between passes, by role; each grows to the largest pass seen.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    buffers: HashMap<(&'static str, usize), wgpu::Buffer>,
    dummies: Vec<wgpu::Buffer>,
}

impl Scratch {
    /// The buffer for `role` (and `index`, e.g. a block) of at least `floats` values.
    pub(crate) fn get(
        &mut self,
        device: &wgpu::Device,
        role: &'static str,
        index: usize,
        floats: usize,
    ) -> wgpu::Buffer {
        let bytes = (floats.max(4) * 4) as u64;
        if let Some(buffer) = self
            .buffers
            .get(&(role, index))
            .filter(|b| b.size() >= bytes)
        {
            return buffer.clone();
        }
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(role),
            size: bytes.next_multiple_of(256),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.buffers.insert((role, index), buffer.clone());
        buffer
    }

    /// A small buffer for an unused writable slot; writable slots must not alias.
    fn dummy(&mut self, device: &wgpu::Device, index: usize) -> wgpu::Buffer {
        while self.dummies.len() <= index {
            self.dummies
                .push(device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("unused slot"),
                    size: 256,
                    usage: wgpu::BufferUsages::STORAGE,
                    mapped_at_creation: false,
                }));
        }
        self.dummies[index].clone()
    }
}

/// Where an activation lives: `count` values of `buffer` from element `base`, of
/// TransformerLens shape `dims`; element `i`'s position is `(i / inner) % len`.
#[derive(Debug, Clone)]
pub(crate) struct Site {
    buffer: wgpu::Buffer,
    base: usize,
    dims: Vec<usize>,
    inner: usize,
}

impl Site {
    /// `len` rows of `width` values from the start of `buffer`: `[1, len, width]`.
    fn rows(buffer: &wgpu::Buffer, len: usize, width: usize) -> Self {
        Self {
            buffer: buffer.clone(),
            base: 0,
            dims: vec![1, len, width],
            inner: width,
        }
    }

    /// `[1, len, heads, d_head]` from element `base` (queries, keys, values, `z`).
    fn heads(buffer: &wgpu::Buffer, base: usize, len: usize, heads: usize, d_head: usize) -> Self {
        Self {
            buffer: buffer.clone(),
            base,
            dims: vec![1, len, heads, d_head],
            inner: heads * d_head,
        }
    }

    /// `[1, heads, len, keys]` (scores, patterns).
    fn pattern(buffer: &wgpu::Buffer, len: usize, heads: usize, keys: usize) -> Self {
        Self {
            buffer: buffer.clone(),
            base: 0,
            dims: vec![1, heads, len, keys],
            inner: keys,
        }
    }

    fn count(&self) -> usize {
        self.dims.iter().product()
    }
}

/// What a recorded pass will find in its readback.
#[derive(Debug, Default)]
pub(crate) struct Layout {
    /// Kept activations: the hook, its shape, where it is.
    pub(crate) kept: Vec<(HookPoint, Vec<usize>, Staged)>,
    /// The logits read: values, and indices for a top-k read.
    pub(crate) logits: Option<(LogitsRead, Staged, Option<Staged>)>,
    /// Per feature read: its index in the request, features per position, values and
    /// indices.
    pub(crate) features: Vec<(usize, usize, Staged, Staged)>,
    /// Per column read: its index in the request and its values.
    pub(crate) columns: Vec<(usize, Staged)>,
}

/// The KV cache a pass writes its keys and values into.
pub(crate) struct KvBuffers<'a> {
    pub(crate) keys: &'a [wgpu::Buffer],
    pub(crate) values: &'a [wgpu::Buffer],
}

/// Records one pass.
pub(crate) struct Recorder<'a> {
    pub(crate) device: &'a wgpu::Device,
    pub(crate) model: &'a Model,
    pub(crate) dims: ModelDims,
    pub(crate) weights: &'a DeviceWeights,
    pub(crate) dictionaries: &'a [DeviceDictionary],
    pub(crate) attachments: &'a [Attachment],
    pub(crate) scratch: &'a mut Scratch,
    pub(crate) hooks: &'a Hooks,
    pub(crate) request: &'a PassRequest,
    pub(crate) kv: KvBuffers<'a>,
    /// Positions already in the KV cache.
    pub(crate) offset: usize,
    /// Positions in this pass.
    pub(crate) len: usize,
    /// Blocks to run: all of them, unless nothing after the last one is read.
    pub(crate) blocks: usize,
    pub(crate) plan: Plan,
    pub(crate) layout: Layout,
}

/// A device buffer as a kernel binds it.
pub(crate) fn dev(buffer: &wgpu::Buffer) -> Buf {
    Buf::Device(buffer.clone())
}

impl Recorder<'_> {
    /// Records the whole pass.
    pub(crate) fn record(self, ids: &[u32]) -> Result<(Plan, Layout), GpuError> {
        match self.model {
            Model::Gpt2(model) => self.record_gpt2(model, ids),
            Model::Llama(model) => self.record_llama(model, ids),
        }
    }

    fn d(&self) -> usize {
        self.dims.d_model
    }

    /// Positions the attention reads: those cached and this pass's.
    fn keys(&self) -> usize {
        self.offset + self.len
    }

    fn buffer(&mut self, role: &'static str, index: usize, floats: usize) -> wgpu::Buffer {
        self.scratch.get(self.device, role, index, floats)
    }
}
