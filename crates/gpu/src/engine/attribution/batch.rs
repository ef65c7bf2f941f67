//! One batch of targets as one plan: seed each target's direction at its position, then
//! block by block from the batch's own downwards, read off the features and errors (and
//! the constants' terms) written there and carry the gradients back through the frozen
//! attention and `ln_1`; finally read off the embeddings. One submit, one readback.

use std::ops::Range;

use glassbox_circuits::{Row, Target};

use super::super::pass::{dev, product};
use super::GpuCarrier;
use crate::GpuError;
use crate::kernels::params::{Act, AttributionParams};
use crate::kernels::{KernelId, linear_groups, row_groups};
use crate::plan::{Buf, Plan, execute};
use glassbox_engine::lock;

/// The activation buffers of one batch.
struct BatchBuffers {
    gradient: wgpu::Buffer,
    through_out: wgpu::Buffer,
    moved: wgpu::Buffer,
    through_values: wgpu::Buffer,
    rows: wgpu::Buffer,
}

/// One batch's shape: targets, positions carried, width.
#[derive(Clone, Copy)]
struct Shape {
    count: usize,
    span: usize,
    d: usize,
}

impl Shape {
    fn floats(self) -> usize {
        self.count * self.span * self.d
    }
}

impl GpuCarrier<'_> {
    /// What every kernel of a batch of `shape` is told; each adds its own offsets.
    fn params(&self, shape: Shape) -> AttributionParams {
        AttributionParams {
            count: shape.count as u32,
            span: shape.span as u32,
            d: shape.d as u32,
            heads: self.heads.0 as u32,
            kv_heads: self.heads.1 as u32,
            d_head: self.heads.2 as u32,
            stride: self.sources.positions as u32,
            out_cols: self.columns as u32,
            ..AttributionParams::default()
        }
    }

    /// `rows[t, column] = scale · g[t, position] · table[row]` for `entries`.
    fn read_off(
        &self,
        plan: &mut Plan,
        shape: Shape,
        buffers: &BatchBuffers,
        (table, table_base): (&wgpu::Buffer, u32),
        entries: &Range<u32>,
    ) {
        let count = (entries.end - entries.start) as usize;
        let params = AttributionParams {
            entries: count as u32,
            b_base: table_base,
            c_base: 4 * entries.start,
            ..self.params(shape)
        };
        plan.dispatch(
            KernelId::ReadOff,
            &params,
            vec![
                dev(&buffers.gradient),
                dev(table),
                dev(&self.entries),
                dev(&buffers.rows),
            ],
            linear_groups(shape.count * count),
        );
    }

    /// `g += T(g)`: back through block `l`'s frozen attention and `ln_1`.
    fn attention_back(&self, plan: &mut Plan, shape: Shape, buffers: &BatchBuffers, l: usize) {
        let (d, rows) = (shape.d, shape.count * shape.span);
        let (heads, kv_heads, d_head) = self.heads;
        let block = &self.blocks[l];
        let weights = &self.transposed;
        product(
            plan,
            &buffers.gradient,
            0,
            rows,
            (&weights.out_t[l], d, heads * d_head),
            None,
            &buffers.through_out,
            (heads * d_head, 0),
            Act::None,
        );
        let params = AttributionParams {
            b_base: block.pattern,
            ..self.params(shape)
        };
        plan.dispatch(
            KernelId::AttentionBack,
            &params,
            vec![
                dev(&buffers.through_out),
                dev(&self.tables),
                dev(&self.entries),
                dev(&buffers.moved),
            ],
            linear_groups(rows * kv_heads * d_head),
        );
        product(
            plan,
            &buffers.moved,
            0,
            rows,
            (&weights.value_t[l], kv_heads * d_head, d),
            None,
            &buffers.through_values,
            (d, 0),
            Act::None,
        );
        let params = AttributionParams {
            b_base: block.gain,
            b_scales: block.scales,
            centred: u32::from(block.centred),
            ..self.params(shape)
        };
        plan.dispatch(
            KernelId::NormBack,
            &params,
            vec![
                dev(&buffers.through_values),
                dev(&self.tables),
                dev(&self.entries),
                dev(&buffers.gradient),
            ],
            row_groups(rows),
        );
    }

    /// The rows of a batch that fits the device's bindings: one submit, one readback.
    pub(super) async fn carry_fitting(&self, batch: &[&Target]) -> Result<Vec<Row>, GpuError> {
        let model = self.model;
        let n_layer = model.model().dims().n_layer;
        let first = batch[0];
        let shape = Shape {
            count: batch.len(),
            span: batch.iter().map(|t| t.position).max().unwrap_or(0) + 1,
            d: model.model().dims().d_model,
        };
        let buffers = {
            let mut scratch = lock(&model.scratch);
            let device = model.ctx.device();
            let floats = shape.floats();
            let (heads, kv_heads, d_head) = self.heads;
            let rows = shape.count * shape.span;
            BatchBuffers {
                gradient: scratch.get(device, "attribution gradient", 0, floats),
                through_out: scratch.get(
                    device,
                    "attribution through W_O",
                    0,
                    rows * heads * d_head,
                ),
                moved: scratch.get(device, "attribution moved", 0, rows * kv_heads * d_head),
                through_values: scratch.get(device, "attribution through W_V", 0, floats),
                rows: scratch.get(device, "attribution rows", 0, shape.count * self.columns),
            }
        };
        let mut plan = Plan::default();
        let directions: Vec<f32> = batch
            .iter()
            .flat_map(|t| t.direction.iter().copied())
            .collect();
        let positions: Vec<u32> = batch.iter().map(|t| t.position as u32).collect();
        let params = AttributionParams {
            a_base: plan.upload(bytemuck::cast_slice(&directions)),
            c_base: plan.upload(bytemuck::cast_slice(&positions)),
            ..self.params(shape)
        };
        plan.dispatch(
            KernelId::AttributionSeed,
            &params,
            vec![
                Buf::Uploads,
                dev(&self.tables),
                Buf::Uploads,
                dev(&buffers.gradient),
            ],
            linear_groups(shape.floats()),
        );
        let below = match first.layer {
            Some(layer) => {
                let block = &self.blocks[layer];
                let table = (&self.tables, block.errors);
                self.read_off(&mut plan, shape, &buffers, table, &block.attention_entries);
                self.attention_back(&mut plan, shape, &buffers, layer);
                layer
            }
            None => n_layer,
        };
        for l in (0..below).rev() {
            let block = &self.blocks[l];
            self.read_off(
                &mut plan,
                shape,
                &buffers,
                (&block.w_dec, 0),
                &block.features,
            );
            let table = (&self.tables, block.errors);
            self.read_off(&mut plan, shape, &buffers, table, &block.error_entries);
            self.attention_back(&mut plan, shape, &buffers, l);
        }
        let table = (&self.tables, self.embedding_table);
        self.read_off(&mut plan, shape, &buffers, table, &self.embedding_entries);
        let staged = plan.stage(&buffers.rows, 0, shape.count * self.columns * 4);
        let bytes = execute(
            &model.ctx,
            &model.kernels,
            &model.plan_buffers,
            plan,
            &model.counts,
        )
        .await?;
        if bytes.len() < staged.offset + staged.bytes {
            return Err(GpuError::Readback(format!(
                "read {} bytes, expected {}",
                bytes.len(),
                staged.offset + staged.bytes
            )));
        }
        let values: Vec<f32> =
            bytemuck::pod_collect_to_vec(&bytes[staged.offset..staged.offset + staged.bytes]);
        Ok(self.rows(batch, below, &values))
    }

    /// Each target's row from the readback: only the columns this batch wrote.
    fn rows(&self, batch: &[&Target], below: usize, values: &[f32]) -> Vec<Row> {
        let sources = self.sources;
        let p = sources.positions;
        // The constants' columns come after the sources'.
        let constant_base = sources.columns();
        let mut written: Vec<Range<usize>> = Vec::new();
        let mut constants: Vec<Range<usize>> = Vec::new();
        for l in 0..below {
            written.push(self.blocks[l].feature_columns.clone());
            let errors = sources.error_base + l * p;
            written.push(errors..errors + p);
            let start = constant_base + 2 * l * p;
            constants.push(start..start + 2 * p);
        }
        if let Some(layer) = batch[0].layer {
            let start = constant_base + (2 * layer + 1) * p;
            constants.push(start..start + p);
        }
        written.push(sources.token_base..sources.token_base + p);
        if sources.position_base < constant_base {
            written.push(sources.position_base..sources.position_base + p);
        }
        batch
            .iter()
            .enumerate()
            .map(|(i, target)| {
                let row = &values[i * self.columns..(i + 1) * self.columns];
                let mut effects = vec![0.0; constant_base];
                for range in &written {
                    effects[range.clone()].copy_from_slice(&row[range.clone()]);
                }
                let constant =
                    target.constant + constants.iter().flat_map(|r| &row[r.clone()]).sum::<f32>();
                Row { effects, constant }
            })
            .collect()
    }
}
