//! Tiled f32 matrix multiply (`kernels/matmul.wgsl`): `c[m, n] = a[m, k] · b[k, n]`,
//! row-major, as a stand-alone check of the device (the engine records the same kernel
//! with a bias and an activation into its passes).

use wgpu::util::DeviceExt;

use crate::kernels::params::{Act, MatmulParams, TILE};
use crate::readback::read_f32;
use crate::{GpuContext, GpuError};

/// The shape of one product: `a` is `m × k`, `b` is `k × n`, `c` is `m × n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatmulShape {
    /// Rows of `a` and `c`.
    pub m: usize,
    /// Columns of `a`, rows of `b`.
    pub k: usize,
    /// Columns of `b` and `c`.
    pub n: usize,
}

impl MatmulShape {
    /// The shape `m × k` by `k × n`.
    #[must_use]
    pub const fn new(m: usize, k: usize, n: usize) -> Self {
        Self { m, k, n }
    }

    /// Multiply-adds in the product, for FLOP counts (one multiply-add is two FLOPs).
    #[must_use]
    pub const fn multiply_adds(&self) -> usize {
        self.m * self.k * self.n
    }
}

impl std::fmt::Display for MatmulShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}×{} · {}×{}", self.m, self.k, self.k, self.n)
    }
}

/// The compiled matmul pipeline. Build it once per [`GpuContext`] and reuse it.
#[derive(Debug)]
pub struct MatmulKernel {
    pipeline: wgpu::ComputePipeline,
}

impl MatmulKernel {
    /// Compiles `matmul.wgsl`; a shader the device rejects is an error, not a panic.
    pub async fn new(ctx: &GpuContext) -> Result<Self, GpuError> {
        ctx.scoped(|| {
            let device = ctx.device();
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("matmul.wgsl"),
                source: wgpu::ShaderSource::Wgsl(
                    crate::kernels::with_common(crate::kernels::MATMUL_SOURCE).into(),
                ),
            });
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some("matmul"),
                layout: None,
                module: &module,
                entry_point: Some("main"),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                cache: None,
            });
            Ok(Self { pipeline })
        })
        .await
    }

    /// Records `c = a · b` into `encoder`. The buffers must hold at least `m·k`, `k·n` and
    /// `m·n` f32s; `c` is written, never read. `dims` is a uniform buffer made by
    /// [`Self::dims_buffer`] for the same shape.
    pub fn encode(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        buffers: [&wgpu::Buffer; 3],
        dims: &wgpu::Buffer,
        shape: MatmulShape,
    ) -> Result<(), GpuError> {
        let (groups_x, groups_y) = workgroups(ctx, shape)?;
        if groups_x == 0 || groups_y == 0 {
            return Ok(());
        }
        let [a, b, c] = buffers;
        let bind_group = ctx.device().create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("matmul"),
            layout: &self.pipeline.get_bind_group_layout(0),
            // No bias: `b` fills the bias slot, which is never read.
            entries: &[
                entry(0, dims),
                entry(1, a),
                entry(2, b),
                entry(3, c),
                entry(4, b),
            ],
        });
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("matmul"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(groups_x, groups_y, 1);
        Ok(())
    }

    /// The uniform buffer that tells the shader the shape.
    pub fn dims_buffer(ctx: &GpuContext, shape: MatmulShape) -> Result<wgpu::Buffer, GpuError> {
        let dims = MatmulParams {
            m: to_u32("m", shape.m)?,
            k: to_u32("k", shape.k)?,
            n: to_u32("n", shape.n)?,
            ldc: to_u32("n", shape.n)?,
            col_offset: 0,
            a_offset: 0,
            has_bias: 0,
            activation: Act::None as u32,
        };
        Ok(ctx
            .device()
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("matmul dims"),
                contents: bytemuck::bytes_of(&dims),
                usage: wgpu::BufferUsages::UNIFORM,
            }))
    }

    /// Uploads `a` and `b`, multiplies them in one submit and reads `c` back.
    ///
    /// A convenience for checks and one-off products; the engine keeps its operands on
    /// the GPU and calls [`Self::encode`] instead.
    pub async fn run(
        &self,
        ctx: &GpuContext,
        a: &[f32],
        b: &[f32],
        shape: MatmulShape,
    ) -> Result<Vec<f32>, GpuError> {
        check_len("a", a.len(), shape.m, shape.k)?;
        check_len("b", b.len(), shape.k, shape.n)?;
        let out_len = shape.m * shape.n;
        if shape.k == 0 || out_len == 0 {
            // An empty sum or an empty result: nothing for the GPU to do.
            return Ok(vec![0.0; out_len]);
        }
        for (what, len) in [("a", a.len()), ("b", b.len()), ("c", out_len)] {
            check_fits(ctx, what, len)?;
        }
        let out_bytes = (out_len * 4) as u64;

        let staging = ctx
            .scoped(|| {
                let device = ctx.device();
                let upload = |label, data: &[f32]| {
                    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                        label: Some(label),
                        contents: bytemuck::cast_slice(data),
                        usage: wgpu::BufferUsages::STORAGE,
                    })
                };
                let a_buffer = upload("matmul a", a);
                let b_buffer = upload("matmul b", b);
                let c_buffer = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("matmul c"),
                    size: out_bytes,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                });
                let staging = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("matmul readback"),
                    size: out_bytes,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                let dims = Self::dims_buffer(ctx, shape)?;
                let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("matmul"),
                });
                if shape.k == 0 {
                    encoder.clear_buffer(&c_buffer, 0, None);
                } else {
                    self.encode(
                        ctx,
                        &mut encoder,
                        [&a_buffer, &b_buffer, &c_buffer],
                        &dims,
                        shape,
                    )?;
                }
                encoder.copy_buffer_to_buffer(&c_buffer, 0, &staging, 0, out_bytes);
                ctx.queue().submit([encoder.finish()]);
                Ok(staging)
            })
            .await?;
        read_f32(ctx, &staging).await
    }
}

fn entry(binding: u32, buffer: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry {
        binding,
        resource: buffer.as_entire_binding(),
    }
}

fn workgroups(ctx: &GpuContext, shape: MatmulShape) -> Result<(u32, u32), GpuError> {
    let groups_x = to_u32("n", shape.n)?.div_ceil(TILE);
    let groups_y = to_u32("m", shape.m)?.div_ceil(TILE);
    let allowed = ctx.device().limits().max_compute_workgroups_per_dimension;
    for groups in [groups_x, groups_y] {
        if groups > allowed {
            return Err(GpuError::TooLarge {
                what: "matmul workgroups per dimension",
                needed: u64::from(groups),
                allowed: u64::from(allowed),
            });
        }
    }
    Ok((groups_x, groups_y))
}

fn to_u32(what: &str, value: usize) -> Result<u32, GpuError> {
    u32::try_from(value)
        .map_err(|_| GpuError::Shape(format!("{what} = {value} does not fit in u32")))
}

fn check_len(what: &str, len: usize, rows: usize, cols: usize) -> Result<(), GpuError> {
    let expected = rows
        .checked_mul(cols)
        .ok_or_else(|| GpuError::Shape(format!("{what} is {rows}×{cols}, which overflows")))?;
    if len == expected {
        Ok(())
    } else {
        Err(GpuError::Shape(format!(
            "{what} should be {rows}×{cols} = {expected} values, got {len}"
        )))
    }
}

fn check_fits(ctx: &GpuContext, what: &'static str, len: usize) -> Result<(), GpuError> {
    let limits = ctx.device().limits();
    let allowed = limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size);
    let needed = (len as u64).saturating_mul(4);
    if needed > allowed {
        return Err(GpuError::TooLarge {
            what,
            needed,
            allowed,
        });
    }
    Ok(())
}
