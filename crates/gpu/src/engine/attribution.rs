//! Attribution graphs on the GPU engine: a [`Carrier`] whose transposed passes (back
//! through each block's frozen attention and `ln_1`, reading off every source written
//! there) run as the kernels of `attribution.wgsl`, one submit and one readback per batch
//! of targets. `glassbox_circuits::attribute_with` drives it as it drives the CPU's.
//!
//! What a prompt freezes (patterns, `ln_1` gains and scales, the errors, the embeddings)
//! goes up once per prompt in one table; the read-off entries (which vector, at which
//! position, into which column) in another. The transposed attention weights go up once
//! per model, on the first graph.

use std::ops::Range;
use std::sync::Mutex;

use candle_core::Tensor;
use glassbox_circuits::{
    BatchShape, Carrier, CircuitError, Replacement, Row, Setup, Sources, Target,
    attention_constant, value_weight,
};
use glassbox_model::{Gpt2, HookPoint, Norm};
use wgpu::util::DeviceExt;

use super::GpuModel;
use super::pass::{dev, product};
use super::weights::{Uploader, flat};
use crate::GpuError;
use crate::kernels::{KernelId, linear_groups, row_groups};
use crate::plan::{Buf, Plan, execute};

/// Every block's `W_Oᵀ` and `W_Vᵀ` on the device, for carrying gradients back.
#[derive(Debug, Clone)]
pub(crate) struct TransposedWeights {
    out_t: Vec<wgpu::Buffer>,
    value_t: Vec<wgpu::Buffer>,
}

/// Where one block's frozen values and read-off entries are.
#[derive(Debug)]
struct BlockTables {
    /// Offsets in the prompt table: the pattern `[head, P, P]`, `ln_1`'s gain `[d]`, its
    /// inverse scales `[P]`, and the error table `[P + 2, d]` (errors, then `b_dec` and
    /// the attention's constant).
    pattern: u32,
    gain: u32,
    scales: u32,
    errors: u32,
    /// Entries reading the block's active features against its decoder.
    features: Range<u32>,
    /// Entries reading the errors and both constants against the error table.
    error_entries: Range<u32>,
    /// The last `P` of those: the attention's constant only.
    attention_entries: Range<u32>,
    /// The source columns of the block's features.
    feature_columns: Range<usize>,
    /// The block's transcoder decoder `[d_sae, d]`.
    w_dec: wgpu::Buffer,
}

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
    /// Source columns, then `2 · n_layer · P` columns for the constants' terms.
    columns: usize,
}

/// Read-off entries as the kernel reads them: position, row, scale bits, column.
#[derive(Default)]
struct Entries(Vec<u32>);

impl Entries {
    fn push(&mut self, position: usize, row: usize, scale: f32, column: usize) {
        self.0
            .extend([position as u32, row as u32, scale.to_bits(), column as u32]);
    }

    /// Entries so far.
    fn len(&self) -> u32 {
        (self.0.len() / 4) as u32
    }
}

/// Appends `values` to a float table; returns their offset.
fn append(table: &mut Vec<f32>, values: &[f32]) -> u32 {
    let at = table.len() as u32;
    table.extend_from_slice(values);
    at
}

fn request(message: impl Into<String>) -> CircuitError {
    CircuitError::Request(message.into())
}

impl From<GpuError> for CircuitError {
    /// A GPU failure is the engine's: the CPU engine can take over.
    fn from(error: GpuError) -> Self {
        Self::Engine(error.to_string())
    }
}

/// A prompt's frozen values and read-off entries, before they go up.
struct PromptTables {
    table: Vec<f32>,
    entries: Entries,
    blocks: Vec<BlockTables>,
    embedding_table: u32,
    embedding_entries: Range<u32>,
}

impl GpuModel {
    /// A carrier for `setup`, built from `replacement`'s prompt on `model` (the CPU model
    /// this engine was made from): its frozen values go up to the device. Every block
    /// needs its transcoder attached (reading `blocks.l.ln2.hook_normalized`, writing
    /// `blocks.l.hook_mlp_out`), the same as `replacement`'s.
    pub async fn attribution<'a>(
        &'a self,
        model: &Gpt2,
        setup: &'a Setup,
        replacement: &Replacement,
    ) -> Result<GpuCarrier<'a>, CircuitError> {
        if model.config() != &self.config {
            return Err(request(
                "the CPU model is not the one this GPU engine was made from",
            ));
        }
        let transposed = self.transposed(model).await?;
        let tables = self.prompt_tables(model, setup, replacement)?;
        let (table, entries) = self
            .ctx
            .scoped(|| {
                let table = Uploader::new(&self.ctx).values("attribution tables", &tables.table)?;
                // An empty buffer cannot be bound.
                let words: &[u32] = if tables.entries.0.is_empty() {
                    &[0]
                } else {
                    &tables.entries.0
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
            columns: sources.columns() + 2 * self.config.n_layer * sources.positions,
        })
    }

    /// Lays out the prompt's frozen values and the entries that read them.
    fn prompt_tables(
        &self,
        model: &Gpt2,
        setup: &Setup,
        replacement: &Replacement,
    ) -> Result<PromptTables, CircuitError> {
        let sources = &setup.sources;
        let p = sources.positions;
        let mut tables = PromptTables {
            table: Vec::new(),
            entries: Entries::default(),
            blocks: Vec::with_capacity(self.config.n_layer),
            embedding_table: 0,
            embedding_entries: 0..0,
        };
        for l in 0..self.config.n_layer {
            let block = self.block_tables(model, setup, replacement, l, &mut tables)?;
            tables.blocks.push(block);
        }
        let (table, entries) = (&mut tables.table, &mut tables.entries);
        tables.embedding_table = append(table, &flat(&replacement.token_embeddings)?);
        append(table, &flat(&replacement.position_embeddings)?);
        let start = entries.len();
        for position in 0..p {
            entries.push(position, position, 1.0, sources.token_base + position);
            entries.push(
                position,
                p + position,
                1.0,
                sources.position_base + position,
            );
        }
        tables.embedding_entries = start..entries.len();
        Ok(tables)
    }

    /// Block `l`'s frozen values and entries, appended to `tables`.
    fn block_tables(
        &self,
        model: &Gpt2,
        setup: &Setup,
        replacement: &Replacement,
        l: usize,
        tables: &mut PromptTables,
    ) -> Result<BlockTables, CircuitError> {
        let sources = &setup.sources;
        let p = sources.positions;
        let constant_base = sources.columns();
        let transcoder = &replacement.transcoders[l];
        let w_dec = self
            .dictionaries
            .iter()
            .find(|dict| {
                dict.input == HookPoint::LnNormalized(l, Norm::Ln2)
                    && dict.output == HookPoint::MlpOut(l)
                    && dict.d_sae == transcoder.config.d_sae
            })
            .map(|dict| dict.w_dec.clone())
            .ok_or_else(|| request(format!("no transcoder is attached for block {l}")))?;
        let (table, entries) = (&mut tables.table, &mut tables.entries);
        let pattern = append(table, &flat(&replacement.patterns[l])?);
        let gain = append(table, &flat(&model.weights().blocks[l].ln_1.weight)?);
        let inverse: Vec<f32> = replacement.ln1_scales[l]
            .to_vec1::<f32>()?
            .into_iter()
            .map(|s| 1.0 / s)
            .collect();
        let scales = append(table, &inverse);
        let errors = append(table, &flat(&replacement.errors[l])?);
        append(table, &flat(&transcoder.b_dec)?);
        append(table, &flat(&attention_constant(model, l)?)?);
        let start = entries.len();
        for (position, at) in sources.active[l].iter().enumerate() {
            for ((&column, &feature), &a) in
                at.columns.iter().zip(&at.features).zip(&at.activations)
            {
                entries.push(position, feature as usize, a, column);
            }
        }
        let features = start..entries.len();
        // The errors, then `b_dec` and the attention's constant at every position.
        let start = entries.len();
        for position in 0..p {
            entries.push(
                position,
                position,
                1.0,
                sources.error_base + l * p + position,
            );
        }
        for (which, row) in [(0, p), (1, p + 1)] {
            for position in 0..p {
                let column = constant_base + (2 * l + which) * p + position;
                entries.push(position, row, 1.0, column);
            }
        }
        let error_entries = start..entries.len();
        Ok(BlockTables {
            pattern,
            gain,
            scales,
            errors,
            features,
            attention_entries: error_entries.end - p as u32..error_entries.end,
            error_entries,
            feature_columns: layer_columns(sources, l),
            w_dec,
        })
    }

    /// The transposed attention weights, uploaded on the first call.
    async fn transposed(&self, model: &Gpt2) -> Result<TransposedWeights, GpuError> {
        if let Some(weights) = lock(&self.transposed).as_ref() {
            return Ok(weights.clone());
        }
        let transpose = |t: Tensor| t.t().and_then(|t| t.contiguous());
        let mut matrices = Vec::new();
        for (l, block) in model.weights().blocks.iter().enumerate() {
            let w_v = value_weight(model, l).map_err(|e| GpuError::Reference(e.to_string()))?;
            matrices.push((transpose(block.attn_out_weight.clone())?, transpose(w_v)?));
        }
        let weights = self
            .ctx
            .scoped(|| {
                let mut up = Uploader::new(&self.ctx);
                let mut out_t = Vec::new();
                let mut value_t = Vec::new();
                for (o, v) in &matrices {
                    out_t.push(up.tensor("W_O transposed", o)?);
                    value_t.push(up.tensor("W_V transposed", v)?);
                }
                Ok(TransposedWeights { out_t, value_t })
            })
            .await?;
        *lock(&self.transposed) = Some(weights.clone());
        Ok(weights)
    }
}

/// The source columns of block `l`'s active features (contiguous: features come by block).
fn layer_columns(sources: &Sources, l: usize) -> Range<usize> {
    let start = (0..l)
        .flat_map(|b| &sources.active[b])
        .map(|at| at.columns.len())
        .sum::<usize>();
    let count: usize = sources.active[l].iter().map(|at| at.columns.len()).sum();
    start..start + count
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

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

/// The kernels' uniform block: `Params` in `attribution.wgsl`, field for field.
#[derive(Debug, Clone, Copy, Default)]
struct Params {
    count: u32,
    span: u32,
    d: u32,
    heads: u32,
    stride: u32,
    entries: u32,
    out_cols: u32,
    a_base: u32,
    b_base: u32,
    c_base: u32,
    b_scales: u32,
}

impl Params {
    fn words(self) -> [u32; 12] {
        [
            self.count,
            self.span,
            self.d,
            self.heads,
            self.stride,
            self.entries,
            self.out_cols,
            self.a_base,
            self.b_base,
            self.c_base,
            self.b_scales,
            0,
        ]
    }
}

impl GpuCarrier<'_> {
    /// What every kernel of a batch of `shape` is told; each adds its own offsets.
    fn params(&self, shape: Shape) -> Params {
        Params {
            count: shape.count as u32,
            span: shape.span as u32,
            d: shape.d as u32,
            heads: self.model.config.n_head as u32,
            stride: self.sources.positions as u32,
            out_cols: self.columns as u32,
            ..Params::default()
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
        let params = Params {
            entries: count as u32,
            b_base: table_base,
            c_base: 4 * entries.start,
            ..self.params(shape)
        };
        plan.dispatch(
            KernelId::ReadOff,
            &params.words(),
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
        let block = &self.blocks[l];
        let weights = &self.transposed;
        product(
            plan,
            &buffers.gradient,
            0,
            rows,
            (&weights.out_t[l], d, d),
            None,
            &buffers.through_out,
            (d, 0),
            0,
        );
        let params = Params {
            b_base: block.pattern,
            ..self.params(shape)
        };
        plan.dispatch(
            KernelId::AttentionBack,
            &params.words(),
            vec![
                dev(&buffers.through_out),
                dev(&self.tables),
                dev(&self.entries),
                dev(&buffers.moved),
            ],
            linear_groups(shape.floats()),
        );
        product(
            plan,
            &buffers.moved,
            0,
            rows,
            (&weights.value_t[l], d, d),
            None,
            &buffers.through_values,
            (d, 0),
            0,
        );
        let params = Params {
            b_base: block.gain,
            b_scales: block.scales,
            ..self.params(shape)
        };
        plan.dispatch(
            KernelId::NormBack,
            &params.words(),
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
    async fn carry_fitting(&self, batch: &[&Target]) -> Result<Vec<Row>, GpuError> {
        let model = self.model;
        let n_layer = model.config.n_layer;
        let first = batch[0];
        let shape = Shape {
            count: batch.len(),
            span: batch.iter().map(|t| t.position).max().unwrap_or(0) + 1,
            d: model.config.n_embd,
        };
        let buffers = {
            let mut scratch = lock(&model.scratch);
            let device = model.ctx.device();
            let floats = shape.floats();
            BatchBuffers {
                gradient: scratch.get(device, "attribution gradient", 0, floats),
                through_out: scratch.get(device, "attribution through W_O", 0, floats),
                moved: scratch.get(device, "attribution moved", 0, floats),
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
        let params = Params {
            a_base: plan.upload(bytemuck::cast_slice(&directions)),
            c_base: plan.upload(bytemuck::cast_slice(&positions)),
            ..self.params(shape)
        };
        plan.dispatch(
            KernelId::AttributionSeed,
            &params.words(),
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
        written.push(sources.position_base..sources.position_base + p);
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

    async fn carry_all(&self, batch: &[&Target]) -> Result<Vec<Row>, CircuitError> {
        let Some(BatchShape { span, .. }) =
            BatchShape::of(batch, self.sources, self.model.config.n_layer)?
        else {
            return Ok(Vec::new());
        };
        // As many targets at a time as the device's bindings hold.
        let per_target = (span * self.model.config.n_embd).max(self.columns) as u64 * 4;
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
    fn carry(
        &self,
        batch: &[&Target],
    ) -> impl std::future::Future<Output = Result<Vec<Row>, CircuitError>> {
        self.carry_all(batch)
    }
}
