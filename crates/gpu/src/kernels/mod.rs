//! The compiled compute pipelines of the engine, one per WGSL entry point, each with an
//! explicit bind-group layout so that a binding's kind is checked where it is declared.
//!
//! Each `.wgsl` file here holds one family of kernels and documents its bindings; the
//! [`KernelId`] table below and the uniform blocks of [`params`] must match them, which
//! the tests at the end check by reflecting the WGSL with naga.

pub(crate) mod params;

use crate::{GpuContext, GpuError};
use params::{Family, LINEAR_THREADS, MAX_GROUPS_X};

/// What every kernel file may use (`common.wgsl`): activations, workgroup reductions and
/// thread and row numbering.
const COMMON: &str = include_str!("common.wgsl");

/// `matmul.wgsl` with the tiled product it uses (its `// uses:` line) in front.
pub(crate) const MATMUL_SOURCE: &str =
    concat!(include_str!("tiled.wgsl"), include_str!("matmul.wgsl"));

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
    /// Tiled `c = act(a · Wᵀ + bias)`, `W` quantized (`matmul_quant.wgsl`).
    QuantTiled,
    /// The same for at most eight rows (`matmul_quant.wgsl`).
    QuantGemv,
    /// Token and position embeddings (`embed.wgsl`).
    Embed,
    /// LayerNorm or `RMSNorm` (before the gain) computing its scale (`layer_norm.wgsl`).
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
    /// A norm's gain (and bias) on its rows (`elementwise.wgsl`).
    Affine,
    /// A gated MLP's `act(gate) · up` (`elementwise.wgsl`).
    Gate,
    /// Rotary embeddings in place (`rope.wgsl`).
    Rotate,
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
    const ALL: [Self; 28] = [
        Self::MatmulTiled,
        Self::Gemv,
        Self::QuantTiled,
        Self::QuantGemv,
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
        Self::Affine,
        Self::Gate,
        Self::Rotate,
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
        const MATMUL: &str = MATMUL_SOURCE;
        const EMBED: &str = include_str!("embed.wgsl");
        const LAYER_NORM: &str = include_str!("layer_norm.wgsl");
        const ATTENTION: &str = include_str!("attention.wgsl");
        const ELEMENTWISE: &str = include_str!("elementwise.wgsl");
        const TOPK: &str = include_str!("topk.wgsl");
        const STEER: &str = include_str!("steer.wgsl");
        const ATTRIBUTION: &str = include_str!("attribution.wgsl");
        const ROPE: &str = include_str!("rope.wgsl");
        const MATMUL_QUANT: &str = concat!(
            include_str!("tiled.wgsl"),
            include_str!("matmul_quant.wgsl")
        );
        match self {
            Self::MatmulTiled => (MATMUL, "matmul.wgsl", "main"),
            Self::Gemv => (MATMUL, "matmul.wgsl", "gemv"),
            Self::QuantTiled => (MATMUL_QUANT, "matmul_quant.wgsl", "main_quant"),
            Self::QuantGemv => (MATMUL_QUANT, "matmul_quant.wgsl", "gemv_quant"),
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
            Self::Affine => (ELEMENTWISE, "elementwise.wgsl", "affine"),
            Self::Gate => (ELEMENTWISE, "elementwise.wgsl", "gate"),
            Self::Rotate => (ROPE, "rope.wgsl", "rotate"),
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

    /// The family it belongs to: its file and uniform block.
    pub(crate) fn family(self) -> Family {
        match self {
            Self::MatmulTiled | Self::Gemv => Family::Matmul,
            Self::QuantTiled | Self::QuantGemv => Family::MatmulQuant,
            Self::Embed => Family::Embed,
            Self::LayerNorm | Self::LayerNormWithScale => Family::LayerNorm,
            Self::SplitQkv | Self::Scores | Self::Softmax | Self::Values => Family::Attention,
            Self::Add
            | Self::Activate
            | Self::JumpRelu
            | Self::Edit
            | Self::GatherColumn
            | Self::Affine
            | Self::Gate => Family::Elementwise,
            Self::Rotate => Family::Rope,
            Self::SegmentTopK | Self::MergeTopK | Self::RowTopK | Self::KeepTopK => Family::TopK,
            Self::Steer => Family::Steer,
            Self::AttributionSeed | Self::AttentionBack | Self::NormBack | Self::ReadOff => {
                Family::Attribution
            }
        }
    }

    /// The binding slots, in binding order from 0 (as the WGSL declares them); slot 0 is
    /// always the uniform block.
    pub(crate) fn slots(self) -> &'static [Slot] {
        match self {
            Self::MatmulTiled | Self::Gemv | Self::QuantTiled | Self::QuantGemv => {
                &[Uniform, Read, Read, Write, Read]
            }
            Self::Embed => &[Uniform, Read, Read, Read, Write],
            Self::LayerNorm | Self::LayerNormWithScale => &[Uniform, Read, Write, Write],
            Self::SplitQkv | Self::Scores | Self::Softmax | Self::Values => {
                &[Uniform, Read, Write, Write, Write, Write, Write, Write]
            }
            Self::Add
            | Self::Activate
            | Self::JumpRelu
            | Self::Edit
            | Self::GatherColumn
            | Self::Affine
            | Self::Gate => &[Uniform, Write, Read, Read],
            Self::Rotate => &[Uniform, Write, Read],
            Self::SegmentTopK | Self::MergeTopK | Self::RowTopK | Self::KeepTopK => {
                &[Uniform, Write, Write, Write, Write, Write]
            }
            Self::Steer => &[Uniform, Write, Read, Read, Read, Read],
            Self::AttributionSeed | Self::AttentionBack | Self::NormBack | Self::ReadOff => {
                &[Uniform, Read, Read, Read, Write]
            }
        }
    }
}

/// One compiled entry point and its bind-group layout (cloned as handles).
#[derive(Debug, Clone)]
pub(crate) struct Kernel {
    pub(crate) pipeline: wgpu::ComputePipeline,
    pub(crate) layout: wgpu::BindGroupLayout,
}

/// Every kernel, compiled once per device.
#[derive(Debug, Clone)]
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

/// Workgroups for `count` threads of [`LINEAR_THREADS`] as `(x, y)`: x at most
/// [`MAX_GROUPS_X`], so that the shaders' `linear_index` numbers every thread once.
pub(crate) fn linear_groups(count: usize) -> (u32, u32) {
    row_groups(count.div_ceil(LINEAR_THREADS as usize).max(1))
}

/// One workgroup per row, rows beyond [`MAX_GROUPS_X`] on the second axis (the shaders'
/// `row_index`).
pub(crate) fn row_groups(rows: usize) -> (u32, u32) {
    let max = MAX_GROUPS_X as usize;
    if rows <= max {
        (rows as u32, 1)
    } else {
        (MAX_GROUPS_X, rows.div_ceil(max) as u32)
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    //! The Rust side of each kernel against its WGSL, reflected with naga: the entry point
    //! exists, every binding it uses is a slot of [`KernelId::slots`] of the same kind,
    //! every slot is declared, the uniform block has the fields, offsets and size of its
    //! [`Params`] struct, and the shared constants have the same values.
    #![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

    use std::mem::size_of;

    use naga::valid::{Capabilities, ModuleInfo, ValidationFlags, Validator};
    use naga::{AddressSpace, Expression, Literal, Module, StorageAccess, TypeInner};

    use super::params::{
        AttentionParams, AttributionParams, ElementwiseParams, EmbedParams, FeatureEdit,
        LayerNormParams, MatmulParams, MatmulQuantParams, Params, RopeParams, SHARED_CONSTANTS,
        SteerParams, TopKParams,
    };
    use super::*;

    fn compile(source: &str) -> (Module, ModuleInfo) {
        let module = naga::front::wgsl::parse_str(&with_common(source)).unwrap();
        let info = Validator::new(ValidationFlags::all(), Capabilities::all())
            .validate(&module)
            .unwrap();
        (module, info)
    }

    fn layout<P: Params>() -> (usize, &'static [&'static str]) {
        (size_of::<P>(), P::FIELDS)
    }

    /// A family's uniform block: its size and its fields' names.
    fn block(family: Family) -> (usize, &'static [&'static str]) {
        match family {
            Family::Matmul => layout::<MatmulParams>(),
            Family::Embed => layout::<EmbedParams>(),
            Family::LayerNorm => layout::<LayerNormParams>(),
            Family::Attention => layout::<AttentionParams>(),
            Family::Elementwise => layout::<ElementwiseParams>(),
            Family::TopK => layout::<TopKParams>(),
            Family::Steer => layout::<SteerParams>(),
            Family::Attribution => layout::<AttributionParams>(),
            Family::Rope => layout::<RopeParams>(),
            Family::MatmulQuant => layout::<MatmulQuantParams>(),
        }
    }

    /// A struct type's member names and offsets, and its size.
    fn members(module: &Module, ty: naga::Handle<naga::Type>) -> (Vec<(String, u32)>, u32) {
        match &module.types[ty].inner {
            TypeInner::Struct { members, span } => (
                members
                    .iter()
                    .map(|m| (m.name.clone().unwrap_or_default(), m.offset))
                    .collect(),
                *span,
            ),
            other => panic!("not a struct: {other:?}"),
        }
    }

    fn expected_members(fields: &[&str]) -> Vec<(String, u32)> {
        fields
            .iter()
            .enumerate()
            .map(|(i, name)| ((*name).to_owned(), 4 * i as u32))
            .collect()
    }

    /// What in `source` (a kernel file) disagrees with what the engine binds for `id`.
    fn mismatches(id: KernelId, source: &str) -> Vec<String> {
        let (_, file, entry) = id.source();
        let (module, info) = compile(source);
        let Some(index) = module.entry_points.iter().position(|e| e.name == entry) else {
            return vec![format!("{file} has no entry point `{entry}`")];
        };
        let uses = info.get_entry_point(index);
        let slots = id.slots();
        let mut found = Vec::new();
        let mut declared = vec![None; slots.len()];
        for (handle, global) in module.global_variables.iter() {
            let Some(binding) = &global.binding else {
                continue;
            };
            let kind = match global.space {
                AddressSpace::Uniform => Slot::Uniform,
                AddressSpace::Storage { access } if access.contains(StorageAccess::STORE) => {
                    Slot::Write
                }
                AddressSpace::Storage { .. } => Slot::Read,
                other => {
                    found.push(format!("{file}: a binding in {other:?}"));
                    continue;
                }
            };
            let at = binding.binding as usize;
            if binding.group != 0 {
                found.push(format!(
                    "{file}: binding {at} is in group {}",
                    binding.group
                ));
            } else if at >= slots.len() {
                if !uses[handle].is_empty() {
                    found.push(format!(
                        "{id:?} uses binding {at}, which the engine does not bind"
                    ));
                }
            } else if slots[at] == kind {
                declared[at] = Some(global.ty);
            } else {
                found.push(format!(
                    "{id:?}: binding {at} is {kind:?}, the engine binds {:?}",
                    slots[at]
                ));
            }
        }
        for (at, ty) in declared.iter().enumerate() {
            if ty.is_none() && !found.iter().any(|f| f.contains(&format!("binding {at} "))) {
                found.push(format!("{id:?}: {file} declares no binding {at}"));
            }
        }
        if let Some(Some(uniform)) = declared.first() {
            let (size, fields) = block(id.family());
            let (members, span) = members(&module, *uniform);
            if members != expected_members(fields) {
                found.push(format!(
                    "{id:?}: {file}'s Params has {members:?}, not {fields:?}"
                ));
            }
            if span as usize != size {
                found.push(format!(
                    "{id:?}: {file}'s Params is {span} bytes, not {size}"
                ));
            }
        }
        found
    }

    #[test]
    fn every_kernel_binds_what_the_engine_binds() {
        for id in KernelId::ALL {
            assert_eq!(
                id.slots()[0],
                Slot::Uniform,
                "{id:?}: the uniform block is slot 0"
            );
            let found = mismatches(id, id.source().0);
            assert!(found.is_empty(), "{found:#?}");
        }
    }

    #[test]
    fn a_mismatch_would_be_caught() {
        // A renamed field, a binding of another kind, a missing binding: each is named.
        let embed = KernelId::Embed.source().0;
        let renamed = embed
            .replace("ids_base: u32", "ids_start: u32")
            .replace("params.ids_base", "params.ids_start");
        assert!(mismatches(KernelId::Embed, &renamed)[0].contains("Params has"));
        let steer = KernelId::Steer.source().0;
        let writable = steer.replace("var<storage, read> acts", "var<storage, read_write> acts");
        assert!(mismatches(KernelId::Steer, &writable)[0].contains("binding 2 is Write"));
        let unbound = steer.replace(
            "@group(0) @binding(5) var<storage, read> mask: array<f32>;",
            "var<private> mask: array<f32, 4>;",
        );
        assert!(mismatches(KernelId::Steer, &unbound)[0].contains("declares no binding 5"));
    }

    #[test]
    fn a_steering_edit_is_laid_out_as_the_wgsl_reads_it() {
        let (module, _) = compile(include_str!("steer.wgsl"));
        let (ty, _) = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some("FeatureEdit"))
            .unwrap();
        let (found, span) = members(&module, ty);
        assert_eq!(found, expected_members(FeatureEdit::FIELDS));
        assert_eq!(span as usize, size_of::<FeatureEdit>());
    }

    #[test]
    fn constants_shared_with_the_wgsl_agree() {
        for &(file, name, value) in SHARED_CONSTANTS {
            // Every file is compiled with common.wgsl in front; common.wgsl alone is "".
            let source = KernelId::ALL
                .iter()
                .map(|id| id.source())
                .find(|(_, f, _)| *f == file)
                .map_or("", |(source, _, _)| source);
            let (module, _) = compile(source);
            let constant = module
                .constants
                .iter()
                .find_map(|(_, c)| (c.name.as_deref() == Some(name)).then_some(c))
                .unwrap_or_else(|| panic!("{file} has no constant {name}"));
            let found = match module.global_expressions[constant.init] {
                Expression::Literal(Literal::U32(v)) => v,
                ref other => panic!("{file}: {name} is {other:?}"),
            };
            assert_eq!(found, value, "{file}: {name}");
        }
    }
}
