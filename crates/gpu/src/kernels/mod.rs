//! The compiled compute pipelines of the engine, one per WGSL entry point, each with an
//! explicit bind-group layout so that a binding's kind is checked where it is declared.
//!
//! Each `.wgsl` file here holds one family of kernels and documents its bindings; the
//! [`KernelId`] table below must match them.

use crate::{GpuContext, GpuError};

/// What every kernel file may use (`common.wgsl`): activations, workgroup reductions and
/// thread and row numbering.
const COMMON: &str = include_str!("common.wgsl");

/// A kernel file's source with `common.wgsl` in front (WGSL has no includes).
pub(crate) fn with_common(source: &str) -> String {
    format!("{COMMON}\n{source}")
}

/// What a binding slot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// A uniform block of parameters.
    Uniform,
    /// A storage buffer the kernel only reads.
    Read,
    /// A storage buffer the kernel writes.
    Write,
}

use Slot::{Read, Uniform, Write};

/// Every kernel the engine dispatches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum KernelId {
    /// Tiled `c = act(a · b + bias)` (`matmul.wgsl`, `main`).
    MatmulTiled,
    /// The same for at most eight rows (`matmul.wgsl`, `gemv`).
    Gemv,
    /// Token and position embeddings (`embed.wgsl`).
    Embed,
    /// LayerNorm computing its scale (`layer_norm.wgsl`).
    LayerNorm,
    /// LayerNorm with a given scale (`layer_norm.wgsl`).
    LayerNormWithScale,
    /// Queries to their buffer, keys and values to the caches (`attention.wgsl`).
    SplitQkv,
    /// Attention scores, optionally with the softmax fused (`attention.wgsl`).
    Scores,
    /// Softmax of edited scores (`attention.wgsl`).
    Softmax,
    /// Pattern-weighted values (`attention.wgsl`).
    Values,
    /// `x += other` (`elementwise.wgsl`).
    Add,
    /// `x = act(x)` (`elementwise.wgsl`).
    Activate,
    /// JumpReLU against per-feature thresholds (`elementwise.wgsl`).
    JumpRelu,
    /// An intervention at some positions (`elementwise.wgsl`).
    Edit,
    /// One column of a matrix (`elementwise.wgsl`).
    GatherColumn,
    /// Each row segment's k largest entries (`topk.wgsl`).
    SegmentTopK,
    /// Each row's k largest among its segments' (`topk.wgsl`).
    MergeTopK,
    /// Each row's k largest entries, for large k (`topk.wgsl`).
    RowTopK,
    /// Zero all but each row's k largest (`topk.wgsl`).
    KeepTopK,
    /// Steering through a dictionary's decoder (`steer.wgsl`).
    Steer,
    /// Attribution: targets' directions at their positions (`attribution.wgsl`).
    AttributionSeed,
    /// Attribution: back through a frozen pattern (`attribution.wgsl`).
    AttentionBack,
    /// Attribution: back through a frozen `ln_1` and the residual (`attribution.wgsl`).
    NormBack,
    /// Attribution: gradients read off against source vectors (`attribution.wgsl`).
    ReadOff,
}

impl KernelId {
    const ALL: [Self; 23] = [
        Self::MatmulTiled,
        Self::Gemv,
        Self::Embed,
        Self::LayerNorm,
        Self::LayerNormWithScale,
        Self::SplitQkv,
        Self::Scores,
        Self::Softmax,
        Self::Values,
        Self::Add,
        Self::Activate,
        Self::JumpRelu,
        Self::Edit,
        Self::GatherColumn,
        Self::SegmentTopK,
        Self::MergeTopK,
        Self::RowTopK,
        Self::KeepTopK,
        Self::Steer,
        Self::AttributionSeed,
        Self::AttentionBack,
        Self::NormBack,
        Self::ReadOff,
    ];

    /// The WGSL source, its file name and the entry point.
    fn source(self) -> (&'static str, &'static str, &'static str) {
        const MATMUL: &str = include_str!("matmul.wgsl");
        const EMBED: &str = include_str!("embed.wgsl");
        const LAYER_NORM: &str = include_str!("layer_norm.wgsl");
        const ATTENTION: &str = include_str!("attention.wgsl");
        const ELEMENTWISE: &str = include_str!("elementwise.wgsl");
        const TOPK: &str = include_str!("topk.wgsl");
        const STEER: &str = include_str!("steer.wgsl");
        const ATTRIBUTION: &str = include_str!("attribution.wgsl");
        match self {
            Self::MatmulTiled => (MATMUL, "matmul.wgsl", "main"),
            Self::Gemv => (MATMUL, "matmul.wgsl", "gemv"),
            Self::Embed => (EMBED, "embed.wgsl", "embed"),
            Self::LayerNorm => (LAYER_NORM, "layer_norm.wgsl", "layer_norm"),
            Self::LayerNormWithScale => (LAYER_NORM, "layer_norm.wgsl", "layer_norm_with_scale"),
            Self::SplitQkv => (ATTENTION, "attention.wgsl", "split_qkv"),
            Self::Scores => (ATTENTION, "attention.wgsl", "scores_step"),
            Self::Softmax => (ATTENTION, "attention.wgsl", "softmax_step"),
            Self::Values => (ATTENTION, "attention.wgsl", "values_step"),
            Self::Add => (ELEMENTWISE, "elementwise.wgsl", "add"),
            Self::Activate => (ELEMENTWISE, "elementwise.wgsl", "activate"),
            Self::JumpRelu => (ELEMENTWISE, "elementwise.wgsl", "jump_relu"),
            Self::Edit => (ELEMENTWISE, "elementwise.wgsl", "edit"),
            Self::GatherColumn => (ELEMENTWISE, "elementwise.wgsl", "gather_column"),
            Self::SegmentTopK => (TOPK, "topk.wgsl", "segment_top_k"),
            Self::MergeTopK => (TOPK, "topk.wgsl", "merge_top_k"),
            Self::RowTopK => (TOPK, "topk.wgsl", "row_top_k"),
            Self::KeepTopK => (TOPK, "topk.wgsl", "keep_top_k"),
            Self::Steer => (STEER, "steer.wgsl", "steer"),
            Self::AttributionSeed => (ATTRIBUTION, "attribution.wgsl", "seed"),
            Self::AttentionBack => (ATTRIBUTION, "attribution.wgsl", "attention_back"),
            Self::NormBack => (ATTRIBUTION, "attribution.wgsl", "norm_back"),
            Self::ReadOff => (ATTRIBUTION, "attribution.wgsl", "read_off"),
        }
    }

    /// The binding slots, in binding order from 0 (as the WGSL declares them).
    pub(crate) fn slots(self) -> &'static [Slot] {
        match self {
            Self::MatmulTiled | Self::Gemv => &[Read, Read, Write, Uniform, Read],
            Self::Embed => &[Uniform, Read, Read, Read, Write],
            Self::LayerNorm | Self::LayerNormWithScale => {
                &[Uniform, Read, Read, Read, Write, Write]
            }
            Self::SplitQkv | Self::Scores | Self::Softmax | Self::Values => {
                &[Uniform, Read, Write, Write, Write, Write, Write, Write]
            }
            Self::Add | Self::Activate | Self::JumpRelu | Self::Edit | Self::GatherColumn => {
                &[Uniform, Write, Read, Read]
            }
            Self::SegmentTopK | Self::MergeTopK | Self::RowTopK | Self::KeepTopK => {
                &[Uniform, Write, Write, Write, Write, Write]
            }
            Self::Steer => &[Uniform, Write, Read, Read, Read],
            Self::AttributionSeed | Self::AttentionBack | Self::NormBack | Self::ReadOff => {
                &[Uniform, Read, Read, Read, Write]
            }
        }
    }
}

/// One compiled entry point and its bind-group layout.
#[derive(Debug)]
pub(crate) struct Kernel {
    pub(crate) pipeline: wgpu::ComputePipeline,
    pub(crate) layout: wgpu::BindGroupLayout,
}

/// Every kernel, compiled once per device.
#[derive(Debug)]
pub(crate) struct Kernels {
    kernels: Vec<Kernel>,
}

impl Kernels {
    /// Compiles every kernel; a shader the device rejects is an error naming it.
    pub(crate) async fn new(ctx: &GpuContext) -> Result<Self, GpuError> {
        let device = ctx.device();
        ctx.scoped(|| {
            let mut modules: Vec<(&'static str, wgpu::ShaderModule)> = Vec::new();
            let mut kernels = Vec::with_capacity(KernelId::ALL.len());
            for id in KernelId::ALL {
                let (source, file, entry) = id.source();
                if !modules.iter().any(|(name, _)| *name == file) {
                    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(file),
                        source: wgpu::ShaderSource::Wgsl(with_common(source).into()),
                    });
                    modules.push((file, module));
                }
                let module = modules
                    .iter()
                    .find(|(name, _)| *name == file)
                    .map(|(_, m)| m)
                    .ok_or_else(|| GpuError::Validation(format!("{file} did not compile")))?;
                let entries: Vec<wgpu::BindGroupLayoutEntry> = id
                    .slots()
                    .iter()
                    .enumerate()
                    .map(|(i, slot)| wgpu::BindGroupLayoutEntry {
                        binding: i as u32,
                        visibility: wgpu::ShaderStages::COMPUTE,
                        ty: wgpu::BindingType::Buffer {
                            ty: match slot {
                                Uniform => wgpu::BufferBindingType::Uniform,
                                Read => wgpu::BufferBindingType::Storage { read_only: true },
                                Write => wgpu::BufferBindingType::Storage { read_only: false },
                            },
                            has_dynamic_offset: false,
                            min_binding_size: None,
                        },
                        count: None,
                    })
                    .collect();
                let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some(entry),
                    entries: &entries,
                });
                let pipeline_layout =
                    device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                        label: Some(entry),
                        bind_group_layouts: &[Some(&layout)],
                        immediate_size: 0,
                    });
                let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(entry),
                    layout: Some(&pipeline_layout),
                    module,
                    entry_point: Some(entry),
                    compilation_options: wgpu::PipelineCompilationOptions::default(),
                    cache: None,
                });
                kernels.push(Kernel { pipeline, layout });
            }
            Ok(Self { kernels })
        })
        .await
    }

    /// The kernel `id`.
    pub(crate) fn get(&self, id: KernelId) -> &Kernel {
        &self.kernels[id as usize]
    }
}

/// Workgroups for `count` threads of 256 as `(x, y)`: x at most 65535, so that the
/// shaders' `linear_index` numbers every thread once.
pub(crate) fn linear_groups(count: usize) -> (u32, u32) {
    let groups = count.div_ceil(256).max(1);
    if groups <= 65535 {
        (groups as u32, 1)
    } else {
        (65535, groups.div_ceil(65535) as u32)
    }
}

/// One workgroup per row, rows beyond 65535 on the second axis (the shaders'
/// `row_index`).
pub(crate) fn row_groups(rows: usize) -> (u32, u32) {
    if rows <= 65535 {
        (rows as u32, 1)
    } else {
        (65535, rows.div_ceil(65535) as u32)
    }
}
