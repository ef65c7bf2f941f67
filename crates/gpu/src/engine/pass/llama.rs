//! The Llama family's walk (token embeddings, pre-`RMSNorm` blocks of causal
//! grouped-query attention with rotary embeddings and a gated MLP, a final `RMSNorm`, the
//! unembedding), with a hook site wherever `glassbox_model::Llama` has one.

use glassbox_model::{HookPoint, Llama};

use super::attention::Heads;
use super::block::Block;
use super::gpt2::act;
use super::norm::NormKind;
use super::ops::count_params;
use super::{Recorder, Site, dev};
use crate::GpuError;
use crate::engine::weights::{DeviceBlocks, LlamaBlock};
use crate::kernels::params::{Act, ElementwiseParams, EmbedMode, RopeParams};
use crate::kernels::{KernelId, linear_groups};
use crate::plan::Buf;

/// What every block of one Llama pass shares.
#[derive(Debug, Clone, Copy)]
pub(super) struct LlamaParts {
    activation: Act,
    heads: Heads,
    rotary_dim: usize,
    /// Where this pass's rotation table starts in the uploads.
    rotation: u32,
}

impl Recorder<'_> {
    /// Records a Llama pass: the token embedding, the blocks needed, and (when every block
    /// runs) the final `RMSNorm` and the logits read.
    pub(super) fn record_llama(
        mut self,
        model: &Llama,
        ids: &[u32],
    ) -> Result<(crate::plan::Plan, super::Layout), GpuError> {
        let weights = self.weights;
        let DeviceBlocks::Llama(blocks) = &weights.blocks else {
            return Err(GpuError::Shape(
                "the weights on the device are not a Llama's".to_owned(),
            ));
        };
        let config = model.config();
        let (len, d) = (self.len, self.d());
        let (cos, sin) = config.rope.cos_sin(self.offset, len);
        let table: Vec<f32> = cos.into_iter().chain(sin).collect();
        let parts = LlamaParts {
            activation: act(config.activation),
            heads: Heads {
                query: config.n_head,
                kv: config.n_kv_head,
                d_head: config.d_head,
            },
            rotary_dim: config.rope.rotary_dim,
            rotation: self.plan.upload(bytemuck::cast_slice(&table)),
        };
        let norm = NormKind::Rms {
            eps: config.rms_norm_eps,
        };
        let x = self.buffer("residual", 0, len * d);
        let ids_base = self.plan.upload(bytemuck::cast_slice(ids));
        for chunk in &weights.token_table {
            self.gather(chunk, EmbedMode::Token, ids_base, &x);
        }
        self.at(HookPoint::Embed, Site::rows(&x, len, d))?;
        self.blocks_and_logits(blocks.iter().map(|b| Block::Llama(b, parts)), norm, &x)?;
        Ok((self.plan, self.layout))
    }

    /// The gated MLP on the normalized `ln2`: its output.
    pub(super) fn llama_mlp(
        &mut self,
        l: usize,
        ln2: &wgpu::Buffer,
        block: &LlamaBlock,
        parts: LlamaParts,
    ) -> Result<wgpu::Buffer, GpuError> {
        let (len, d) = (self.len, self.d());
        let d_mlp = block.gate.outputs;
        let gate = self.buffer("mlp gate", 0, len * d_mlp);
        self.linear(ln2, len, &block.gate, &gate, Act::None);
        self.at(HookPoint::MlpPre(l), Site::rows(&gate, len, d_mlp))?;
        let up = self.buffer("mlp up", 0, len * d_mlp);
        self.linear(ln2, len, &block.up, &up, Act::None);
        self.at(HookPoint::MlpPreLinear(l), Site::rows(&up, len, d_mlp))?;
        let params = ElementwiseParams {
            op: parts.activation as u32,
            ..count_params(len * d_mlp)
        };
        self.elementwise(KernelId::Gate, &gate, &up, &up, params);
        self.at(HookPoint::MlpPost(l), Site::rows(&gate, len, d_mlp))?;
        let mlp_out = self.buffer("mlp out", 0, len * d);
        self.linear(&gate, len, &block.down, &mlp_out, Act::None);
        Ok(mlp_out)
    }

    /// Queries, and keys and values straight into the caches; each rotated in place after
    /// its hook; then attention and its output projection.
    pub(super) fn llama_attention(
        &mut self,
        l: usize,
        input: &wgpu::Buffer,
        block: &LlamaBlock,
        shared: LlamaParts,
    ) -> Result<wgpu::Buffer, GpuError> {
        let (len, d, offset) = (self.len, self.d(), self.offset);
        let heads = shared.heads;
        let (h, kv, d_head) = (heads.query, heads.kv, heads.d_head);
        // Nothing reads the fused-projection slot: bind a weight, read-only.
        let buffers = self.attention_buffers(l, block.o.weight.clone(), heads);
        self.linear(input, len, &block.q, &buffers.q, Act::None);
        self.linear_into(input, len, &block.k, &buffers.keys, offset, Act::None);
        self.linear_into(input, len, &block.v, &buffers.values, offset, Act::None);
        let cached = offset * kv * d_head;
        self.at(HookPoint::Q(l), Site::heads(&buffers.q, 0, len, h, d_head))?;
        self.at(
            HookPoint::K(l),
            Site::heads(&buffers.keys, cached, len, kv, d_head),
        )?;
        self.at(
            HookPoint::V(l),
            Site::heads(&buffers.values, cached, len, kv, d_head),
        )?;
        self.rotate(&buffers.q, 0, h, shared);
        self.at(
            HookPoint::RotQ(l),
            Site::heads(&buffers.q, 0, len, h, d_head),
        )?;
        self.rotate(&buffers.keys, cached, kv, shared);
        self.at(
            HookPoint::RotK(l),
            Site::heads(&buffers.keys, cached, len, kv, d_head),
        )?;
        let z = self.attend(l, &buffers, heads)?;
        let out = self.buffer("attention out", 0, len * d);
        self.linear(&z, len, &block.o, &out, Act::None);
        Ok(out)
    }

    /// Rotates this pass's rows of `x` from element `base`, `heads` heads per row.
    fn rotate(&mut self, x: &wgpu::Buffer, base: usize, heads: usize, shared: LlamaParts) {
        let pairs = self.len * heads * (shared.rotary_dim / 2);
        if pairs == 0 {
            return;
        }
        let params = RopeParams {
            rows: self.len as u32,
            heads: heads as u32,
            d_head: shared.heads.d_head as u32,
            rotary_dim: shared.rotary_dim as u32,
            base: base as u32,
            table_base: shared.rotation,
            ..RopeParams::default()
        };
        self.plan.dispatch(
            KernelId::Rotate,
            &params,
            vec![dev(x), Buf::Uploads],
            linear_groups(pairs),
        );
    }
}
