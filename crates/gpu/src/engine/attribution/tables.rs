//! What a prompt's attribution reads on the device, laid out once per prompt: the frozen
//! values (patterns, `ln_1` gains and inverse scales, the errors with `b_dec` and the
//! attention's constant, the embeddings) in one float table, the read-off entries (which
//! vector, at which position, into which column) in another; and the transposed
//! attention weights, once per model.

use std::ops::Range;
use std::sync::Arc;

use candle_core::Tensor;
use glassbox_circuits::{CircuitError, FrozenWeights, Replacement, Setup, Sources};
use glassbox_engine::transcoder_hooks;

use super::super::GpuModel;
use super::super::weights::{Uploader, flat};
use crate::GpuError;
use glassbox_engine::lock;

/// Every block's `W_Oᵀ` `[d, heads · d_head]` and `W_Vᵀ` `[kv_heads · d_head, d]` on the
/// device, for carrying gradients back.
#[derive(Debug, Clone)]
pub(crate) struct TransposedWeights {
    pub(super) out_t: Vec<wgpu::Buffer>,
    pub(super) value_t: Vec<wgpu::Buffer>,
}

/// Where one block's frozen values and read-off entries are.
#[derive(Debug)]
pub(super) struct BlockTables {
    /// Offsets in the prompt table: the pattern `[head, P, P]`, `ln_1`'s gain `[d]` (its
    /// centring in `centred`), its
    /// inverse scales `[P]`, and the error table `[P + 2, d]` (errors, then `b_dec` and
    /// the attention's constant).
    pub(super) pattern: u32,
    pub(super) gain: u32,
    pub(super) centred: bool,
    pub(super) scales: u32,
    pub(super) errors: u32,
    /// Entries reading the block's active features against its decoder.
    pub(super) features: Range<u32>,
    /// Entries reading the errors and both constants against the error table.
    pub(super) error_entries: Range<u32>,
    /// The last `P` of those: the attention's constant only.
    pub(super) attention_entries: Range<u32>,
    /// The source columns of the block's features.
    pub(super) feature_columns: Range<usize>,
    /// The block's transcoder decoder `[d_sae, d]`.
    pub(super) w_dec: wgpu::Buffer,
}

/// Read-off entries as the kernel reads them: position, row, scale bits, column.
#[derive(Default)]
pub(super) struct Entries(Vec<u32>);

impl Entries {
    fn push(&mut self, position: usize, row: usize, scale: f32, column: usize) {
        self.0
            .extend([position as u32, row as u32, scale.to_bits(), column as u32]);
    }

    /// Entries so far.
    fn len(&self) -> u32 {
        (self.0.len() / 4) as u32
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn words(&self) -> &[u32] {
        &self.0
    }
}

/// Appends `values` to a float table; returns their offset.
fn append(table: &mut Vec<f32>, values: &[f32]) -> u32 {
    let at = table.len() as u32;
    table.extend_from_slice(values);
    at
}

/// A prompt's frozen values and read-off entries, before they go up.
pub(super) struct PromptTables {
    pub(super) table: Vec<f32>,
    pub(super) entries: Entries,
    pub(super) blocks: Vec<BlockTables>,
    pub(super) embedding_table: u32,
    pub(super) embedding_entries: Range<u32>,
}

impl GpuModel {
    /// Lays out the prompt's frozen values and the entries that read them.
    pub(super) fn prompt_tables(
        &self,
        setup: &Setup,
        replacement: &Replacement,
    ) -> Result<PromptTables, CircuitError> {
        let sources = &setup.sources;
        let p = sources.positions;
        let mut tables = PromptTables {
            table: Vec::new(),
            entries: Entries::default(),
            blocks: Vec::with_capacity(self.model.dims().n_layer),
            embedding_table: 0,
            embedding_entries: 0..0,
        };
        let frozen = self.frozen()?;
        for l in 0..self.model.dims().n_layer {
            let block = self.block_tables(setup, replacement, &frozen, l, &mut tables)?;
            tables.blocks.push(block);
        }
        let (table, entries) = (&mut tables.table, &mut tables.entries);
        tables.embedding_table = append(table, &flat(&replacement.token_embeddings)?);
        // Learned position embeddings (GPT-2) are sources too; a Llama rotates instead.
        let positions = replacement.position_embeddings.as_ref();
        if let Some(positions) = positions {
            append(table, &flat(positions)?);
        }
        let start = entries.len();
        for position in 0..p {
            entries.push(position, position, 1.0, sources.token_base + position);
            if positions.is_some() {
                entries.push(
                    position,
                    p + position,
                    1.0,
                    sources.position_base + position,
                );
            }
        }
        tables.embedding_entries = start..entries.len();
        Ok(tables)
    }

    /// Block `l`'s frozen values and entries, appended to `tables`.
    fn block_tables(
        &self,
        setup: &Setup,
        replacement: &Replacement,
        frozen: &FrozenWeights,
        l: usize,
        tables: &mut PromptTables,
    ) -> Result<BlockTables, CircuitError> {
        let attention = &frozen.attention[l];
        let sources = &setup.sources;
        let p = sources.positions;
        let constant_base = sources.columns();
        let transcoder = &replacement.transcoders[l];
        let (input, output) = transcoder_hooks(l);
        let w_dec = self
            .attachments
            .iter()
            .zip(&self.dictionaries)
            .find(|(a, _)| {
                a.input == input && a.output == output && a.d_sae == transcoder.config.d_sae
            })
            .map(|(_, dict)| dict.w_dec.clone())
            .ok_or_else(|| {
                CircuitError::Request(format!("no transcoder is attached for block {l}"))
            })?;
        let (table, entries) = (&mut tables.table, &mut tables.entries);
        let pattern = append(table, &flat(&replacement.patterns[l])?);
        let gain = append(table, &flat(&attention.norm.gain)?);
        let inverse: Vec<f32> = replacement.ln1_scales[l]
            .to_vec1::<f32>()?
            .into_iter()
            .map(|s| 1.0 / s)
            .collect();
        let scales = append(table, &inverse);
        let errors = append(table, &flat(&replacement.errors[l])?);
        append(table, &flat(&transcoder.b_dec)?);
        append(table, &flat(&attention.constant)?);
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
            centred: attention.norm.centred,
            scales,
            errors,
            features,
            attention_entries: error_entries.end - p as u32..error_entries.end,
            error_entries,
            feature_columns: layer_columns(sources, l),
            w_dec,
        })
    }

    /// What attribution reads of the weights, made on the first call.
    fn frozen(&self) -> Result<Arc<FrozenWeights>, CircuitError> {
        let mut kept = lock(&self.frozen);
        if let Some(frozen) = kept.as_ref() {
            return Ok(Arc::clone(frozen));
        }
        let frozen = Arc::new(FrozenWeights::of(&self.model)?);
        *kept = Some(Arc::clone(&frozen));
        Ok(frozen)
    }

    /// The transposed attention weights, uploaded on the first call.
    pub(super) async fn transposed(&self) -> Result<TransposedWeights, GpuError> {
        if let Some(weights) = lock(&self.transposed).as_ref() {
            return Ok(weights.clone());
        }
        let frozen = self
            .frozen()
            .map_err(|e| GpuError::Reference(e.to_string()))?;
        let transpose = |t: &Tensor| t.t().and_then(|t| t.contiguous());
        let mut matrices = Vec::new();
        for attention in &frozen.attention {
            matrices.push((transpose(&attention.w_o)?, transpose(&attention.w_v)?));
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
