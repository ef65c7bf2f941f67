//! Attribution graphs on the GPU engine: a [`Carrier`] whose transposed passes (back
//! through each block's frozen attention and `ln_1`, reading off every source written
//! there) run as the kernels of `attribution.wgsl`, one submit and one readback per batch
//! of targets. `glassbox_circuits::attribute_on` drives it as it drives the CPU's.
//!
//! What a prompt freezes and the entries that read it go up once per prompt
//! (`tables.rs`); each batch of targets is one plan (`batch.rs`).

mod batch;
mod tables;

use std::future::Future;
use std::ops::Range;

use glassbox_circuits::{
    AttributionEngine, BatchShape, Carrier, CircuitError, Replacement, Row, Setup, Sources, Target,
};
use glassbox_engine::EngineError;
use wgpu::util::DeviceExt;

use super::GpuModel;
use super::weights::Uploader;
use crate::GpuError;
use tables::BlockTables;
pub(crate) use tables::TransposedWeights;

/// A prompt's attribution on the GPU engine.
#[derive(Debug)]
pub struct GpuCarrier<'a> {
    model: &'a GpuModel,
    transposed: TransposedWeights,
    tables: wgpu::Buffer,
    entries: wgpu::Buffer,
    blocks: Vec<BlockTables>,
    embedding_table: u32,
    embedding_entries: Range<u32>,
    sources: &'a Sources,
    /// Query heads, key/value heads, and the width of a head.
    heads: (usize, usize, usize),
    /// Source columns, then `2 · n_layer · P` columns for the constants' terms.
    columns: usize,
}

impl From<GpuError> for CircuitError {
    /// A GPU failure is the engine's: the CPU engine can take over.
    fn from(error: GpuError) -> Self {
        Self::Engine(EngineError::from(error))
    }
}

impl GpuModel {
    /// A carrier for `setup`, built from `replacement`'s prompt on this engine's model:
    /// its frozen values go up to the device. Every block needs its transcoder attached
    /// (reading `blocks.l.ln2.hook_normalized`, writing `blocks.l.hook_mlp_out`), the
    /// same as `replacement`'s.
    pub async fn attribution<'a>(
        &'a self,
        setup: &'a Setup,
        replacement: &Replacement,
    ) -> Result<GpuCarrier<'a>, CircuitError> {
        let transposed = self.transposed().await?;
        let tables = self.prompt_tables(setup, replacement)?;
        let (table, entries) = self
            .ctx
            .scoped(|| {
                let table = Uploader::new(&self.ctx).values("attribution tables", &tables.table)?;
                // An empty buffer cannot be bound.
                let words: &[u32] = if tables.entries.is_empty() {
                    &[0]
                } else {
                    tables.entries.words()
                };
                let entries =
                    self.ctx
                        .device()
                        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                            label: Some("attribution entries"),
                            contents: bytemuck::cast_slice(words),
                            usage: wgpu::BufferUsages::STORAGE,
                        });
                Ok((table, entries))
            })
            .await?;
        let sources = &setup.sources;
        Ok(GpuCarrier {
            model: self,
            transposed,
            tables: table,
            entries,
            blocks: tables.blocks,
            embedding_table: tables.embedding_table,
            embedding_entries: tables.embedding_entries,
            sources,
            heads: self.head_shape(),
            columns: sources.columns() + 2 * self.model.dims().n_layer * sources.positions,
        })
    }
}

impl GpuCarrier<'_> {
    async fn carry_all(&self, batch: &[&Target]) -> Result<Vec<Row>, CircuitError> {
        let Some(BatchShape { span, .. }) =
            BatchShape::of(batch, self.sources, self.model.model().dims().n_layer)?
        else {
            return Ok(Vec::new());
        };
        // As many targets at a time as the device's bindings hold.
        let per_target = (span * self.model.model().dims().d_model).max(self.columns) as u64 * 4;
        let max_binding = Uploader::new(&self.model.ctx).max_binding();
        let fit = (max_binding / per_target).max(1) as usize;
        let mut rows = Vec::with_capacity(batch.len());
        for chunk in batch.chunks(fit) {
            rows.extend(self.carry_fitting(chunk).await?);
        }
        Ok(rows)
    }
}

impl Carrier for GpuCarrier<'_> {
    fn carry(&self, batch: &[&Target]) -> impl Future<Output = Result<Vec<Row>, CircuitError>> {
        self.carry_all(batch)
    }
}

impl AttributionEngine for GpuModel {
    type Carrier<'a> = GpuCarrier<'a>;

    fn carrier<'a>(
        &'a self,
        setup: &'a Setup,
        replacement: &'a Replacement,
    ) -> impl Future<Output = Result<GpuCarrier<'a>, CircuitError>> {
        self.attribution(setup, replacement)
    }
}
