//! What a pass copies out for readback besides kept activations: each read dictionary's
//! strongest features and single columns, and the logits (all, the last row, or its top
//! k), with the top-k selection they share.

use glassbox_engine::LogitsRead;

use super::ops::count_params;
use super::{Recorder, dev};
use crate::kernels::params::{Act, ElementwiseParams, MAX_PRIVATE_K, TopKParams};
use crate::kernels::{KernelId, linear_groups, row_groups};

impl Recorder<'_> {
    /// The `k` largest entries of each row of `x` `[rows, width]`, largest first, into
    /// the value and index buffers named by `names`.
    pub(super) fn top_k(
        &mut self,
        x: &wgpu::Buffer,
        rows: usize,
        width: usize,
        k: usize,
        names: (&'static str, &'static str, usize),
    ) -> (wgpu::Buffer, wgpu::Buffer) {
        let values = self.buffer(names.0, names.2, rows * k);
        let indices = self.buffer(names.1, names.2, rows * k);
        let output = (&values, &indices);
        if k <= MAX_PRIVATE_K as usize {
            // Segments of about 64 entries: the merge reads segments × k candidates.
            let segments = (width / 64).clamp(1, 256);
            let candidates = (
                self.buffer("top-k candidates", 0, rows * segments * k),
                self.buffer("top-k candidate ids", 0, rows * segments * k),
            );
            let params = top_k_params(rows, width, k, segments);
            let groups = linear_groups(rows * segments);
            self.top_k_step(
                KernelId::SegmentTopK,
                &params,
                x,
                &candidates,
                output,
                groups,
            );
            let groups = linear_groups(rows);
            self.top_k_step(KernelId::MergeTopK, &params, x, &candidates, output, groups);
        } else {
            let candidates = self.no_candidates();
            let params = top_k_params(rows, width, k, 0);
            self.top_k_step(
                KernelId::RowTopK,
                &params,
                x,
                &candidates,
                output,
                row_groups(rows),
            );
        }
        (values, indices)
    }

    /// Candidate buffers for a `topk.wgsl` step that does not use them.
    pub(super) fn no_candidates(&mut self) -> (wgpu::Buffer, wgpu::Buffer) {
        (
            self.scratch.dummy(self.device, 1),
            self.scratch.dummy(self.device, 2),
        )
    }

    /// One dispatch of a `topk.wgsl` step over `x`, its candidates and its output.
    pub(super) fn top_k_step(
        &mut self,
        kernel: KernelId,
        params: &TopKParams,
        x: &wgpu::Buffer,
        (candidates, candidate_ids): &(wgpu::Buffer, wgpu::Buffer),
        (values, indices): (&wgpu::Buffer, &wgpu::Buffer),
        groups: (u32, u32),
    ) {
        let buffers = vec![
            dev(x),
            dev(candidates),
            dev(candidate_ids),
            dev(values),
            dev(indices),
        ];
        self.plan.dispatch(kernel, params, buffers, groups);
    }

    /// Stages what the request reads of dictionary `index`'s activations `acts`: each
    /// feature read's strongest features per position, each column read's column.
    pub(super) fn read_features(&mut self, index: usize, acts: &wgpu::Buffer) {
        let (len, attachment) = (self.len, self.attachments[index].clone());
        let d_sae = attachment.d_sae;
        let request = self.request;
        for (r, read) in request.features.iter().enumerate() {
            let top = attachment.most_active(read.top);
            if read.dictionary != index || top == 0 {
                continue;
            }
            let (values, indices) = self.top_k(
                acts,
                len,
                d_sae,
                top,
                ("feature values", "feature indices", r),
            );
            let staged_values = self.plan.stage(&values, 0, len * top * 4);
            let staged_indices = self.plan.stage(&indices, 0, len * top * 4);
            self.layout
                .features
                .push((r, top, staged_values, staged_indices));
        }
        for (r, read) in request.columns.iter().enumerate() {
            if read.dictionary != index {
                continue;
            }
            let column = self.buffer("feature column", r, len);
            let params = ElementwiseParams {
                width: d_sae as u32,
                op: read.feature as u32,
                ..count_params(len)
            };
            self.elementwise(KernelId::GatherColumn, &column, acts, acts, params);
            let staged = self.plan.stage(&column, 0, len * 4);
            self.layout.columns.push((r, staged));
        }
    }

    /// Multiplies the final normalized residual by the unembedding and stages the logits
    /// the request reads.
    pub(super) fn logits(&mut self, normalized: &wgpu::Buffer) {
        let (len, d) = (self.len, self.d());
        let vocab = self.dims.vocab_size;
        let read = self.request.logits;
        let (rows, a_offset) = match read {
            LogitsRead::None => return,
            LogitsRead::All => (len, 0),
            LogitsRead::Last | LogitsRead::LastTop(_) => (1, (len - 1) * d),
        };
        let logits = self.buffer("logits", 0, rows * vocab);
        for chunk in self.weights.unembedding.clone() {
            super::product(
                &mut self.plan,
                normalized,
                a_offset,
                rows,
                (&chunk.buffer, d, chunk.cols),
                None,
                &logits,
                (vocab, chunk.start),
                Act::None,
            );
        }
        if let LogitsRead::LastTop(k) = read {
            let k = k.clamp(1, vocab);
            let (values, indices) =
                self.top_k(&logits, 1, vocab, k, ("top logits", "top logit ids", 0));
            let staged_values = self.plan.stage(&values, 0, k * 4);
            let staged_indices = self.plan.stage(&indices, 0, k * 4);
            self.layout.logits =
                Some((LogitsRead::LastTop(k), staged_values, Some(staged_indices)));
        } else {
            let staged = self.plan.stage(&logits, 0, rows * vocab * 4);
            self.layout.logits = Some((read, staged, None));
        }
    }
}

/// The top-k block for `rows` rows of `width`, keeping `k`, over `segments` segments.
pub(super) fn top_k_params(rows: usize, width: usize, k: usize, segments: usize) -> TopKParams {
    TopKParams {
        rows: rows as u32,
        width: width as u32,
        k: k as u32,
        segments: segments as u32,
    }
}
