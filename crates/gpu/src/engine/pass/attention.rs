//! Causal attention over the KV cache, once queries and this pass's keys and values are
//! in place: scores (`attn.hook_attn_scores`, when hooked), the pattern
//! (`attn.hook_pattern`) and `z` (`attn.hook_z`). Query heads share key/value heads in
//! groups (grouped-query attention); GPT-2 has a key/value head per query head.

use glassbox_model::HookPoint;

use super::{Recorder, Site, dev};
use crate::GpuError;
use crate::kernels::KernelId;
use crate::kernels::params::AttentionParams;
use crate::plan::Buf;

/// The buffers attention's kernels bind, in their slots' order.
pub(super) struct AttentionBuffers {
    /// GPT-2's fused `[len, 3d]` projection; any read-only buffer otherwise.
    pub(super) qkv: wgpu::Buffer,
    pub(super) q: wgpu::Buffer,
    pub(super) keys: wgpu::Buffer,
    pub(super) values: wgpu::Buffer,
    pub(super) scores: wgpu::Buffer,
    pub(super) pattern: wgpu::Buffer,
    pub(super) z: wgpu::Buffer,
}

impl AttentionBuffers {
    pub(super) fn bind(&self) -> Vec<Buf> {
        [
            &self.qkv,
            &self.q,
            &self.keys,
            &self.values,
            &self.scores,
            &self.pattern,
            &self.z,
        ]
        .into_iter()
        .map(dev)
        .collect()
    }
}

/// Heads of one attention layer.
#[derive(Debug, Clone, Copy)]
pub(super) struct Heads {
    /// Query heads.
    pub(super) query: usize,
    /// Key/value heads (dividing the query heads).
    pub(super) kv: usize,
    pub(super) d_head: usize,
}

impl Recorder<'_> {
    /// The attention block of this pass, with `fuse` set or not.
    pub(super) fn attention_params(&self, heads: Heads, fuse: bool) -> AttentionParams {
        AttentionParams {
            len: self.len as u32,
            d: self.d() as u32,
            offset: self.offset as u32,
            heads: heads.query as u32,
            d_head: heads.d_head as u32,
            keys: self.keys() as u32,
            scale: (1.0 / (heads.d_head as f64).sqrt()) as f32,
            fuse_softmax: u32::from(fuse),
            kv_heads: heads.kv as u32,
            ..AttentionParams::default()
        }
    }

    /// The buffers of layer `l`'s attention: queries, this layer's caches, and scratch.
    pub(super) fn attention_buffers(
        &mut self,
        l: usize,
        qkv: wgpu::Buffer,
        heads: Heads,
    ) -> AttentionBuffers {
        let (len, keys) = (self.len, self.keys());
        let width = heads.query * heads.d_head;
        let scores = if self.hooks.touches(HookPoint::AttnScores(l)) {
            self.buffer("scores", 0, heads.query * len * keys)
        } else {
            self.scratch.dummy(self.device, 0)
        };
        AttentionBuffers {
            qkv,
            q: self.buffer("q", 0, len * width),
            keys: self.kv.keys[l].clone(),
            values: self.kv.values[l].clone(),
            scores,
            pattern: self.buffer("pattern", 0, heads.query * len * keys),
            z: self.buffer("z", 0, len * width),
        }
    }

    /// Scores, pattern and `z` of layer `l`, with their hooks; returns `z`.
    pub(super) fn attend(
        &mut self,
        l: usize,
        buffers: &AttentionBuffers,
        heads: Heads,
    ) -> Result<wgpu::Buffer, GpuError> {
        let (len, keys) = (self.len, self.keys());
        let per_query = (len as u32, heads.query as u32);
        if self.hooks.touches(HookPoint::AttnScores(l)) {
            let params = self.attention_params(heads, false);
            self.plan
                .dispatch(KernelId::Scores, &params, buffers.bind(), per_query);
            self.at(
                HookPoint::AttnScores(l),
                Site::pattern(&buffers.scores, len, heads.query, keys),
            )?;
            self.plan
                .dispatch(KernelId::Softmax, &params, buffers.bind(), per_query);
        } else {
            let params = self.attention_params(heads, true);
            self.plan
                .dispatch(KernelId::Scores, &params, buffers.bind(), per_query);
        }
        self.at(
            HookPoint::Pattern(l),
            Site::pattern(&buffers.pattern, len, heads.query, keys),
        )?;
        let params = self.attention_params(heads, false);
        self.plan
            .dispatch(KernelId::Values, &params, buffers.bind(), per_query);
        self.at(
            HookPoint::Z(l),
            Site::heads(&buffers.z, 0, len, heads.query, heads.d_head),
        )?;
        Ok(buffers.z.clone())
    }
}
