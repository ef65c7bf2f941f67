//! The GPT-2 family's walk (learned position embeddings, pre-LayerNorm blocks of causal
//! multi-head attention and a GELU or ReLU MLP, a final LayerNorm, the unembedding), with
//! a hook site wherever `glassbox_model::Gpt2` has one.

use glassbox_model::{Activation, Gpt2, HookPoint};

use super::attention::Heads;
use super::block::Block;
use super::norm::NormKind;
use super::ops::count_params;
use super::{Recorder, Site};
use crate::GpuError;
use crate::engine::weights::{DeviceBlocks, Gpt2Block};
use crate::kernels::params::{Act, ElementwiseParams, EmbedMode};
use crate::kernels::{KernelId, linear_groups};

/// The MLP's activation as the kernels name it.
pub(super) fn act(activation: Activation) -> Act {
    match activation {
        Activation::GeluTanh => Act::GeluTanh,
        Activation::GeluErf => Act::GeluErf,
        Activation::Relu => Act::Relu,
        Activation::Silu => Act::Silu,
    }
}

/// What every block of one GPT-2 pass shares.
#[derive(Debug, Clone, Copy)]
pub(super) struct Gpt2Parts {
    activation: Act,
}

impl Recorder<'_> {
    /// Records a GPT-2 pass: embeddings, the blocks needed, and (when every block runs)
    /// the final LayerNorm and the logits read.
    pub(super) fn record_gpt2(
        mut self,
        model: &Gpt2,
        ids: &[u32],
    ) -> Result<(crate::plan::Plan, super::Layout), GpuError> {
        let weights = self.weights;
        let DeviceBlocks::Gpt2(blocks) = &weights.blocks else {
            return Err(GpuError::Shape(
                "the weights on the device are not a GPT-2's".to_owned(),
            ));
        };
        let config = model.config();
        let parts = Gpt2Parts {
            activation: act(config.activation_function),
        };
        let norm = NormKind::Layer {
            eps: config.layer_norm_epsilon,
        };
        let (len, d) = (self.len, self.d());
        let x = self.buffer("residual", 0, len * d);
        self.embed_with_positions(ids, &x)?;
        self.blocks_and_logits(blocks.iter().map(|b| Block::Gpt2(b, parts)), norm, &x)?;
        Ok((self.plan, self.layout))
    }

    /// Token and position embeddings into `x`, apart when either is hooked.
    fn embed_with_positions(&mut self, ids: &[u32], x: &wgpu::Buffer) -> Result<(), GpuError> {
        let (len, d) = (self.len, self.d());
        let ids_base = self.plan.upload(bytemuck::cast_slice(ids));
        let separate =
            self.hooks.touches(HookPoint::Embed) || self.hooks.touches(HookPoint::PosEmbed);
        let token_out = if separate {
            self.buffer("embed", 0, len * d)
        } else {
            x.clone()
        };
        let weights = self.weights;
        let chunks = &weights.token_table;
        let mode = if separate {
            EmbedMode::Token
        } else {
            EmbedMode::TokenAndPosition
        };
        for chunk in chunks {
            self.gather(chunk, mode, ids_base, &token_out);
        }
        if !separate {
            return Ok(());
        }
        self.at(HookPoint::Embed, Site::rows(&token_out, len, d))?;
        let positions = self.buffer("position embed", 0, len * d);
        self.gather(&chunks[0], EmbedMode::Position, ids_base, &positions);
        self.at(HookPoint::PosEmbed, Site::rows(&positions, len, d))?;
        self.plan.copy(&token_out, x, (len * d * 4) as u64);
        self.add(x, &positions, len * d);
        Ok(())
    }

    /// The MLP on the normalized `ln2`: its output.
    pub(super) fn gpt2_mlp(
        &mut self,
        l: usize,
        ln2: &wgpu::Buffer,
        block: &Gpt2Block,
        parts: Gpt2Parts,
    ) -> Result<wgpu::Buffer, GpuError> {
        let (len, d) = (self.len, self.d());
        let d_mlp = block.mlp_in.outputs;
        let hidden = self.buffer("mlp hidden", 0, len * d_mlp);
        // With the pre-activation hooked, the activation is its own step after the hook.
        let split = self.hooks.touches(HookPoint::MlpPre(l));
        let fused = if split { Act::None } else { parts.activation };
        self.linear(ln2, len, &block.mlp_in, &hidden, fused);
        if split {
            self.at(HookPoint::MlpPre(l), Site::rows(&hidden, len, d_mlp))?;
            let params = ElementwiseParams {
                op: parts.activation as u32,
                ..count_params(len * d_mlp)
            };
            let unread = &block.mlp_out.weight;
            self.elementwise(KernelId::Activate, &hidden, unread, unread, params);
        }
        self.at(HookPoint::MlpPost(l), Site::rows(&hidden, len, d_mlp))?;
        let mlp_out = self.buffer("mlp out", 0, len * d);
        self.linear(&hidden, len, &block.mlp_out, &mlp_out, Act::None);
        Ok(mlp_out)
    }

    /// The fused qkv projection split into queries and the caches, then attention and
    /// its output projection.
    pub(super) fn gpt2_attention(
        &mut self,
        l: usize,
        input: &wgpu::Buffer,
        block: &Gpt2Block,
    ) -> Result<wgpu::Buffer, GpuError> {
        let (len, d, offset) = (self.len, self.d(), self.offset);
        let heads = Heads {
            query: self.dims.n_head,
            kv: self.dims.n_head,
            d_head: d / self.dims.n_head,
        };
        let qkv = self.buffer("qkv", 0, len * 3 * d);
        self.linear(input, len, &block.qkv, &qkv, Act::None);
        let buffers = self.attention_buffers(l, qkv, heads);
        let params = self.attention_params(heads, false);
        self.plan.dispatch(
            KernelId::SplitQkv,
            &params,
            buffers.bind(),
            linear_groups(len * d),
        );
        let (h, d_head) = (heads.query, heads.d_head);
        self.at(HookPoint::Q(l), Site::heads(&buffers.q, 0, len, h, d_head))?;
        self.at(
            HookPoint::K(l),
            Site::heads(&buffers.keys, offset * d, len, h, d_head),
        )?;
        self.at(
            HookPoint::V(l),
            Site::heads(&buffers.values, offset * d, len, h, d_head),
        )?;
        let z = self.attend(l, &buffers, heads)?;
        let out = self.buffer("attention out", 0, len * d);
        self.linear(&z, len, &block.attn_out, &out, Act::None);
        Ok(out)
    }
}
