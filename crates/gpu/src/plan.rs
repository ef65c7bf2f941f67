//! One forward pass as a list of operations, run as one command buffer: every kernel's
//! parameters go up in one uniform buffer, every host input (token ids, intervention
//! values, position masks, steering edits) in one storage buffer, everything the caller
//! asked to see is copied into one staging buffer, and that buffer is read back once.

use std::sync::Mutex;

use glassbox_engine::lock;

use crate::kernels::params::Params;
use crate::kernels::{KernelId, Kernels, Slot};
use crate::readback::read_bytes;
use crate::{GpuContext, GpuError};

/// Bytes between two parameter blocks: WebGPU's largest required uniform offset alignment.
const PARAMS_STRIDE: usize = 256;
/// Alignment of each host input in the upload buffer (a `FeatureEdit` is 16 bytes).
const UPLOAD_ALIGN: usize = 16;

/// A buffer a kernel binds.
#[derive(Debug, Clone)]
pub(crate) enum Buf {
    /// A device buffer: weights or activations.
    Device(wgpu::Buffer),
    /// The host inputs of this plan (bind it whole; kernels get element offsets).
    Uploads,
}

/// Where a staged region of the readback came from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Staged {
    /// Byte offset in the staging buffer.
    pub(crate) offset: usize,
    /// Length in bytes.
    pub(crate) bytes: usize,
}

#[derive(Debug)]
enum Op {
    Dispatch {
        kernel: KernelId,
        params: usize,
        buffers: Vec<Buf>,
        groups: (u32, u32),
    },
    Stage {
        source: wgpu::Buffer,
        source_offset: u64,
        staged: Staged,
    },
    Copy {
        source: wgpu::Buffer,
        target: wgpu::Buffer,
        bytes: u64,
    },
}

/// The operations of one pass, recorded before anything is sent to the device.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    ops: Vec<Op>,
    params: Vec<u8>,
    uploads: Vec<u8>,
    staged_bytes: usize,
}

impl Plan {
    /// Adds a dispatch of `kernel` over `groups` workgroups; `params` is its family's
    /// uniform block and `buffers` fill its other slots in order.
    pub(crate) fn dispatch<P: Params>(
        &mut self,
        kernel: KernelId,
        params: &P,
        buffers: Vec<Buf>,
        groups: (u32, u32),
    ) {
        debug_assert_eq!(
            P::FAMILY,
            kernel.family(),
            "{kernel:?} takes other parameters"
        );
        debug_assert_eq!(
            kernel
                .slots()
                .iter()
                .filter(|s| **s != Slot::Uniform)
                .count(),
            buffers.len(),
            "{kernel:?} binds a different number of buffers"
        );
        let index = self.params.len() / PARAMS_STRIDE;
        let mut block = bytemuck::bytes_of(params).to_vec();
        block.resize(PARAMS_STRIDE, 0);
        self.params.extend_from_slice(&block);
        if groups.0 > 0 && groups.1 > 0 {
            self.ops.push(Op::Dispatch {
                kernel,
                params: index,
                buffers,
                groups,
            });
        }
    }

    /// Adds host data to the upload buffer; returns its offset in 4-byte elements.
    pub(crate) fn upload(&mut self, bytes: &[u8]) -> u32 {
        let start = self.uploads.len();
        self.uploads.extend_from_slice(bytes);
        let padded = self.uploads.len().next_multiple_of(UPLOAD_ALIGN);
        self.uploads.resize(padded, 0);
        (start / 4) as u32
    }

    /// Copies `bytes` of `source` from `offset` into the readback.
    pub(crate) fn stage(&mut self, source: &wgpu::Buffer, offset: u64, bytes: usize) -> Staged {
        let staged = Staged {
            offset: self.staged_bytes,
            bytes,
        };
        self.staged_bytes += bytes;
        if bytes > 0 {
            self.ops.push(Op::Stage {
                source: source.clone(),
                source_offset: offset,
                staged,
            });
        }
        staged
    }

    /// Copies the first `bytes` of `source` to `target`.
    pub(crate) fn copy(&mut self, source: &wgpu::Buffer, target: &wgpu::Buffer, bytes: u64) {
        if bytes > 0 {
            self.ops.push(Op::Copy {
                source: source.clone(),
                target: target.clone(),
                bytes,
            });
        }
    }

    /// Dispatches recorded so far.
    pub(crate) fn dispatches(&self) -> usize {
        self.ops
            .iter()
            .filter(|op| matches!(op, Op::Dispatch { .. }))
            .count()
    }
}

/// Buffers a plan reuses from one pass to the next.
#[derive(Debug, Default)]
pub(crate) struct PlanBuffers {
    params: Option<wgpu::Buffer>,
    uploads: Option<wgpu::Buffer>,
    /// Staging buffers not in use; one is taken per pass and given back after reading.
    staging: Mutex<Vec<wgpu::Buffer>>,
}

/// A buffer of at least `bytes` with `usage`: `slot`'s if large enough, else a new one
/// (twice as large as needed, so that growing passes do not reallocate every time).
fn at_least(
    device: &wgpu::Device,
    slot: &mut Option<wgpu::Buffer>,
    bytes: usize,
    usage: wgpu::BufferUsages,
    label: &'static str,
) -> wgpu::Buffer {
    let bytes = bytes.max(16) as u64;
    if let Some(buffer) = slot.as_ref().filter(|b| b.size() >= bytes) {
        return buffer.clone();
    }
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: (bytes * 2).next_multiple_of(256),
        usage,
        mapped_at_creation: false,
    });
    *slot = Some(buffer.clone());
    buffer
}

impl PlanBuffers {
    fn take_staging(&self, device: &wgpu::Device, bytes: usize) -> wgpu::Buffer {
        let bytes = bytes.max(16) as u64;
        let mut pool = lock(&self.staging);
        if let Some(i) = pool.iter().position(|b| b.size() >= bytes) {
            return pool.swap_remove(i);
        }
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes.next_multiple_of(256),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    fn give_back(&self, buffer: wgpu::Buffer) {
        let mut pool = lock(&self.staging);
        pool.push(buffer);
        // Keep the two largest; the rest were for unusually large reads.
        pool.sort_by_key(|b| std::cmp::Reverse(b.size()));
        pool.truncate(2);
    }
}

/// Counts of what passes sent to the device, for the benchmark and the tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassCounts {
    /// Command buffers submitted.
    pub submits: u64,
    /// Buffers mapped and read back.
    pub readbacks: u64,
    /// Compute dispatches recorded.
    pub dispatches: u64,
}

/// Submits `plan` as one command buffer and, if it staged anything, reads the staging
/// buffer back once.
pub(crate) async fn execute(
    ctx: &GpuContext,
    kernels: &Kernels,
    buffers: &Mutex<PlanBuffers>,
    plan: Plan,
    counts: &Mutex<PassCounts>,
) -> Result<Vec<u8>, GpuError> {
    let device = ctx.device();
    let staged_bytes = plan.staged_bytes;
    let dispatches = plan.dispatches() as u64;
    let staging = ctx
        .scoped(|| {
            let mut pool = lock(buffers);
            let params = at_least(
                device,
                &mut pool.params,
                plan.params.len(),
                wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                "parameters",
            );
            let uploads = at_least(
                device,
                &mut pool.uploads,
                plan.uploads.len(),
                wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                "host inputs",
            );
            let staging = (staged_bytes > 0).then(|| pool.take_staging(device, staged_bytes));
            drop(pool);
            if !plan.params.is_empty() {
                ctx.queue().write_buffer(&params, 0, &plan.params);
            }
            if !plan.uploads.is_empty() {
                ctx.queue().write_buffer(&uploads, 0, &plan.uploads);
            }
            let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("forward"),
            });
            // Consecutive dispatches share one compute pass (each dispatch still sees the
            // writes of the one before); a copy ends the pass.
            let mut ops = plan.ops.iter().peekable();
            while let Some(op) = ops.next() {
                if let Op::Dispatch { .. } = op {
                    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                        label: Some("kernels"),
                        timestamp_writes: None,
                    });
                    dispatch(device, kernels, &mut pass, op, &params, &uploads);
                    while let Some(next) = ops.next_if(|o| matches!(o, Op::Dispatch { .. })) {
                        dispatch(device, kernels, &mut pass, next, &params, &uploads);
                    }
                } else {
                    copy(&mut encoder, op, staging.as_ref());
                }
            }
            ctx.queue().submit([encoder.finish()]);
            Ok(staging)
        })
        .await?;
    {
        let mut counts = lock(counts);
        counts.submits += 1;
        counts.dispatches += dispatches;
        if staging.is_some() {
            counts.readbacks += 1;
        }
    }
    let Some(staging) = staging else {
        return Ok(Vec::new());
    };
    let bytes = read_bytes(ctx, &staging, staged_bytes).await;
    lock(buffers).give_back(staging);
    bytes
}

/// Records a dispatch op into `pass`.
fn dispatch(
    device: &wgpu::Device,
    kernels: &Kernels,
    pass: &mut wgpu::ComputePass<'_>,
    op: &Op,
    params: &wgpu::Buffer,
    uploads: &wgpu::Buffer,
) {
    if let Op::Dispatch {
        kernel,
        params: index,
        buffers,
        groups,
    } = op
    {
        let compiled = kernels.get(*kernel);
        let mut storage = buffers.iter();
        let entries: Vec<wgpu::BindGroupEntry<'_>> = kernel
            .slots()
            .iter()
            .enumerate()
            .map(|(i, slot)| {
                let resource = if *slot == Slot::Uniform {
                    wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: params,
                        offset: (index * PARAMS_STRIDE) as u64,
                        size: wgpu::BufferSize::new(PARAMS_STRIDE as u64),
                    })
                } else {
                    match storage.next() {
                        Some(Buf::Device(buffer)) => buffer.as_entire_binding(),
                        Some(Buf::Uploads) | None => uploads.as_entire_binding(),
                    }
                };
                wgpu::BindGroupEntry {
                    binding: i as u32,
                    resource,
                }
            })
            .collect();
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &compiled.layout,
            entries: &entries,
        });
        pass.set_pipeline(&compiled.pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(groups.0, groups.1, 1);
    }
}

/// Records a copy op into `encoder`.
fn copy(encoder: &mut wgpu::CommandEncoder, op: &Op, staging: Option<&wgpu::Buffer>) {
    match op {
        Op::Dispatch { .. } => {}
        Op::Stage {
            source,
            source_offset,
            staged,
        } => {
            if let Some(staging) = staging {
                encoder.copy_buffer_to_buffer(
                    source,
                    *source_offset,
                    staging,
                    staged.offset as u64,
                    staged.bytes as u64,
                );
            }
        }
        Op::Copy {
            source,
            target,
            bytes,
        } => encoder.copy_buffer_to_buffer(source, 0, target, 0, *bytes),
    }
}
