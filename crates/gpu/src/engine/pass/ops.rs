//! Dispatches that every part of a pass uses: products (tiled, or matrix-vector for few
//! rows), the token-table gather and element-wise steps.

use super::{Recorder, dev};
use crate::engine::weights::{ColumnChunk, DeviceLinear};
use crate::kernels::params::{
    Act, ElementwiseParams, EmbedMode, EmbedParams, GEMV_ROWS, MatmulParams, MatmulQuantParams,
    Params, TILE,
};
use crate::kernels::{KernelId, linear_groups};
use crate::plan::{Buf, Plan};

/// `out[r * ldc + col_offset + c] = act(a[a_offset + r * k ..] · b + bias)` for `rows`
/// rows, `b` being `[k, n]`.
#[allow(
    clippy::too_many_arguments,
    reason = "the product's operands and layout, each named"
)]
pub(crate) fn product(
    plan: &mut Plan,
    a: &wgpu::Buffer,
    a_offset: usize,
    rows: usize,
    (b, k, n): (&wgpu::Buffer, usize, usize),
    bias: Option<&wgpu::Buffer>,
    out: &wgpu::Buffer,
    (ldc, col_offset): (usize, usize),
    activation: Act,
) {
    let params = MatmulParams {
        m: rows as u32,
        k: k as u32,
        n: n as u32,
        ldc: ldc as u32,
        col_offset: col_offset as u32,
        a_offset: a_offset as u32,
        has_bias: u32::from(bias.is_some()),
        activation: activation as u32,
    };
    let buffers = vec![dev(a), dev(b), dev(out), dev(bias.unwrap_or(b))];
    dispatch_product(
        plan,
        (KernelId::Gemv, KernelId::MatmulTiled),
        &params,
        buffers,
        (rows, n),
    );
}

/// One product of `rows` × `n` outputs: the matrix-vector kernel of the pair for at most
/// [`GEMV_ROWS`] rows, the tiled one otherwise.
fn dispatch_product<P: Params>(
    plan: &mut Plan,
    (gemv, tiled): (KernelId, KernelId),
    params: &P,
    buffers: Vec<Buf>,
    (rows, n): (usize, usize),
) {
    let tile = TILE as usize;
    if rows <= GEMV_ROWS as usize {
        plan.dispatch(gemv, params, buffers, (n.div_ceil(256) as u32, 1));
    } else {
        plan.dispatch(
            tiled,
            params,
            buffers,
            (n.div_ceil(tile) as u32, rows.div_ceil(tile) as u32),
        );
    }
}

impl Recorder<'_> {
    /// `out = act(input · W + b)` for `rows` rows.
    pub(super) fn linear(
        &mut self,
        input: &wgpu::Buffer,
        rows: usize,
        layer: &DeviceLinear,
        out: &wgpu::Buffer,
        activation: Act,
    ) {
        self.linear_into(input, rows, layer, out, 0, activation);
    }

    /// [`Self::linear`] into `out`'s rows from row `first_row` (a KV cache).
    pub(super) fn linear_into(
        &mut self,
        input: &wgpu::Buffer,
        rows: usize,
        layer: &DeviceLinear,
        out: &wgpu::Buffer,
        first_row: usize,
        activation: Act,
    ) {
        let Some((format, row_bytes)) = layer.quantized else {
            product(
                &mut self.plan,
                input,
                0,
                rows,
                (&layer.weight, layer.inputs, layer.outputs),
                layer.bias.as_ref(),
                out,
                (layer.outputs, first_row * layer.outputs),
                activation,
            );
            return;
        };
        let (k, n) = (layer.inputs, layer.outputs);
        let params = MatmulQuantParams {
            m: rows as u32,
            k: k as u32,
            n: n as u32,
            ldc: n as u32,
            col_offset: (first_row * n) as u32,
            a_offset: 0,
            has_bias: u32::from(layer.bias.is_some()),
            activation: activation as u32,
            format: format as u32,
            row_bytes: row_bytes as u32,
            ..MatmulQuantParams::default()
        };
        let bias = layer.bias.as_ref().unwrap_or(&layer.weight);
        let buffers = vec![dev(input), dev(&layer.weight), dev(out), dev(bias)];
        dispatch_product(
            &mut self.plan,
            (KernelId::QuantGemv, KernelId::QuantTiled),
            &params,
            buffers,
            (rows, n),
        );
    }

    /// One dispatch of `embed.wgsl` over `chunk` of the token table into `out`.
    pub(super) fn gather(
        &mut self,
        chunk: &ColumnChunk,
        mode: EmbedMode,
        ids_base: u32,
        out: &wgpu::Buffer,
    ) {
        let (len, d) = (self.len, self.d());
        let params = EmbedParams {
            len: len as u32,
            d: d as u32,
            offset: self.offset as u32,
            mode: mode as u32,
            start: chunk.start as u32,
            cols: chunk.cols as u32,
            ids_base,
            ..EmbedParams::default()
        };
        // A family without learned positions binds the table in their slot, unread.
        let positions = self.weights.positions.as_ref().unwrap_or(&chunk.buffer);
        self.plan.dispatch(
            KernelId::Embed,
            &params,
            vec![Buf::Uploads, dev(&chunk.buffer), dev(positions), dev(out)],
            linear_groups(len * d),
        );
    }

    /// `x[..count] += other[..count]`.
    pub(super) fn add(&mut self, x: &wgpu::Buffer, other: &wgpu::Buffer, count: usize) {
        self.elementwise(KernelId::Add, x, other, other, count_params(count));
    }

    /// One dispatch of an element-wise kernel over `params.count` elements of `x`.
    pub(super) fn elementwise(
        &mut self,
        kernel: KernelId,
        x: &wgpu::Buffer,
        other: &wgpu::Buffer,
        mask: &wgpu::Buffer,
        params: ElementwiseParams,
    ) {
        let groups = linear_groups(params.count as usize);
        self.plan
            .dispatch(kernel, &params, vec![dev(x), dev(other), dev(mask)], groups);
    }
}

/// The element-wise block for `count` elements from the start, one value per position.
pub(super) fn count_params(count: usize) -> ElementwiseParams {
    ElementwiseParams {
        count: count as u32,
        len: 1,
        inner: 1,
        ..ElementwiseParams::default()
    }
}
