//! The GPT-2 family's walk (learned position embeddings, pre-LayerNorm blocks of causal
//! multi-head attention and a GELU or ReLU MLP, a final LayerNorm, the unembedding), with
//! a hook site wherever `glassbox_model::Gpt2` has one.

use glassbox_model::{Activation, HookPoint, Norm};

use super::ops::count_params;
use super::{Recorder, Site, dev};
use crate::GpuError;
use crate::engine::weights::{ColumnChunk, DeviceLayerNorm, DeviceLinear};
use crate::kernels::params::{Act, AttentionParams, EmbedMode, EmbedParams, LayerNormParams};
use crate::kernels::{KernelId, linear_groups};
use crate::plan::Buf;

/// The MLP's activation as the kernels name it.
fn act(activation: Activation) -> Act {
    match activation {
        Activation::GeluTanh => Act::GeluTanh,
        Activation::GeluErf => Act::GeluErf,
        Activation::Relu => Act::Relu,
        Activation::Silu => Act::Silu,
    }
}

impl Recorder<'_> {
    /// Records a GPT-2 pass: embeddings, the blocks needed, and (when every block runs)
    /// the final LayerNorm and the logits read.
    pub(super) fn record_gpt2(
        mut self,
        ids: &[u32],
    ) -> Result<(crate::plan::Plan, super::Layout), GpuError> {
        let (len, d) = (self.len, self.d());
        let x = self.buffer("residual", 0, len * d);
        self.embed(ids, &x)?;
        for l in 0..self.blocks {
            self.block(l, &x)?;
        }
        if self.blocks == self.config.n_layer {
            let ln_final = self.weights.ln_final.clone();
            let normalized = self.layer_norm(
                &x,
                &ln_final,
                HookPoint::LnFinalScale,
                HookPoint::LnFinalNormalized,
            )?;
            self.logits(&normalized);
        }
        Ok((self.plan, self.layout))
    }

    fn embed(&mut self, ids: &[u32], x: &wgpu::Buffer) -> Result<(), GpuError> {
        let (len, d) = (self.len, self.d());
        let ids_base = self.plan.upload(bytemuck::cast_slice(ids));
        let separate =
            self.hooks.touches(HookPoint::Embed) || self.hooks.touches(HookPoint::PosEmbed);
        let token_out = if separate {
            self.buffer("embed", 0, len * d)
        } else {
            x.clone()
        };
        let chunks = self.weights.token_table.clone();
        let mode = if separate {
            EmbedMode::Token
        } else {
            EmbedMode::TokenAndPosition
        };
        for chunk in &chunks {
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

    /// One dispatch of `embed.wgsl` over `chunk` of the token table into `out`.
    fn gather(&mut self, chunk: &ColumnChunk, mode: EmbedMode, ids_base: u32, out: &wgpu::Buffer) {
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
        self.plan.dispatch(
            KernelId::Embed,
            &params,
            vec![
                Buf::Uploads,
                dev(&chunk.buffer),
                dev(&self.weights.positions),
                dev(out),
            ],
            linear_groups(len * d),
        );
    }

    fn block(&mut self, l: usize, x: &wgpu::Buffer) -> Result<(), GpuError> {
        let (len, d) = (self.len, self.d());
        let block = self.weights.blocks[l].clone();
        self.at(HookPoint::ResidPre(l), Site::rows(x, len, d))?;
        let ln1 = self.layer_norm(
            x,
            &block.ln_1,
            HookPoint::LnScale(l, Norm::Ln1),
            HookPoint::LnNormalized(l, Norm::Ln1),
        )?;
        let attn_out = self.attention(l, &ln1, &block.qkv, &block.attn_out)?;
        self.at(HookPoint::AttnOut(l), Site::rows(&attn_out, len, d))?;
        self.add(x, &attn_out, len * d);
        self.at(HookPoint::ResidMid(l), Site::rows(x, len, d))?;
        let ln2 = self.layer_norm(
            x,
            &block.ln_2,
            HookPoint::LnScale(l, Norm::Ln2),
            HookPoint::LnNormalized(l, Norm::Ln2),
        )?;

        let d_mlp = block.mlp_in.outputs;
        let hidden = self.buffer("mlp hidden", 0, len * d_mlp);
        let activation = act(self.config.activation_function);
        // With the pre-activation hooked, the activation is its own step after the hook.
        let split = self.hooks.touches(HookPoint::MlpPre(l));
        let fused = if split { Act::None } else { activation };
        self.linear(&ln2, len, &block.mlp_in, &hidden, fused);
        if split {
            self.at(HookPoint::MlpPre(l), Site::rows(&hidden, len, d_mlp))?;
            let params = crate::kernels::params::ElementwiseParams {
                op: activation as u32,
                ..count_params(len * d_mlp)
            };
            let bias = block.mlp_in.bias.clone();
            self.elementwise(KernelId::Activate, &hidden, &bias, &bias, params);
        }
        self.at(HookPoint::MlpPost(l), Site::rows(&hidden, len, d_mlp))?;
        let mlp_out = self.buffer("mlp out", 0, len * d);
        self.linear(&hidden, len, &block.mlp_out, &mlp_out, Act::None);
        self.at(HookPoint::MlpOut(l), Site::rows(&mlp_out, len, d))?;
        self.add(x, &mlp_out, len * d);
        self.at(HookPoint::ResidPost(l), Site::rows(x, len, d))
    }

    fn attention(
        &mut self,
        l: usize,
        input: &wgpu::Buffer,
        qkv_weights: &DeviceLinear,
        out_weights: &DeviceLinear,
    ) -> Result<wgpu::Buffer, GpuError> {
        let (len, d, keys) = (self.len, self.d(), self.keys());
        let heads = self.config.n_head;
        let d_head = d / heads;
        let qkv = self.buffer("qkv", 0, len * 3 * d);
        self.linear(input, len, qkv_weights, &qkv, Act::None);
        let q = self.buffer("q", 0, len * d);
        let z = self.buffer("z", 0, len * d);
        let pattern = self.buffer("pattern", 0, heads * len * keys);
        let edit_scores = self.hooks.touches(HookPoint::AttnScores(l));
        let scores = if edit_scores {
            self.buffer("scores", 0, heads * len * keys)
        } else {
            self.scratch.dummy(self.device, 0)
        };
        let (k_cache, v_cache) = (self.kv.keys[l].clone(), self.kv.values[l].clone());
        let offset = self.offset;
        let params = |fuse: bool| AttentionParams {
            len: len as u32,
            d: d as u32,
            offset: offset as u32,
            heads: heads as u32,
            d_head: d_head as u32,
            keys: keys as u32,
            scale: (1.0 / (d_head as f64).sqrt()) as f32,
            fuse_softmax: u32::from(fuse),
        };
        let buffers = || {
            vec![
                dev(&qkv),
                dev(&q),
                dev(&k_cache),
                dev(&v_cache),
                dev(&scores),
                dev(&pattern),
                dev(&z),
            ]
        };
        self.plan.dispatch(
            KernelId::SplitQkv,
            &params(false),
            buffers(),
            linear_groups(len * d),
        );
        self.at(HookPoint::Q(l), Site::heads(&q, 0, len, heads, d_head))?;
        self.at(
            HookPoint::K(l),
            Site::heads(&k_cache, offset * d, len, heads, d_head),
        )?;
        self.at(
            HookPoint::V(l),
            Site::heads(&v_cache, offset * d, len, heads, d_head),
        )?;
        let per_query = (len as u32, heads as u32);
        if edit_scores {
            self.plan
                .dispatch(KernelId::Scores, &params(false), buffers(), per_query);
            self.at(
                HookPoint::AttnScores(l),
                Site::pattern(&scores, len, heads, keys),
            )?;
            self.plan
                .dispatch(KernelId::Softmax, &params(false), buffers(), per_query);
        } else {
            self.plan
                .dispatch(KernelId::Scores, &params(true), buffers(), per_query);
        }
        self.at(
            HookPoint::Pattern(l),
            Site::pattern(&pattern, len, heads, keys),
        )?;
        self.plan
            .dispatch(KernelId::Values, &params(false), buffers(), per_query);
        self.at(HookPoint::Z(l), Site::heads(&z, 0, len, heads, d_head))?;
        let out = self.buffer("attention out", 0, len * d);
        self.linear(&z, len, out_weights, &out, Act::None);
        Ok(out)
    }

    /// LayerNorm of `x` into the shared output buffer, with its two hooks.
    fn layer_norm(
        &mut self,
        x: &wgpu::Buffer,
        weights: &DeviceLayerNorm,
        scale_hook: HookPoint,
        normalized_hook: HookPoint,
    ) -> Result<wgpu::Buffer, GpuError> {
        let (len, d) = (self.len, self.d());
        // One buffer for every LayerNorm: a dictionary reading one encodes it right away.
        let out = self.buffer("normalized", 0, len * d);
        let scale = self.buffer("scale", 0, len);
        let params = LayerNormParams {
            rows: len as u32,
            d: d as u32,
            eps: self.config.layer_norm_epsilon as f32,
            ..LayerNormParams::default()
        };
        let buffers = || {
            vec![
                dev(x),
                dev(&weights.weight),
                dev(&weights.bias),
                dev(&out),
                dev(&scale),
            ]
        };
        self.plan
            .dispatch(KernelId::LayerNorm, &params, buffers(), (len as u32, 1));
        let edited = self
            .hooks
            .interventions()
            .iter()
            .any(|i| i.hook == scale_hook);
        self.at(scale_hook, Site::rows(&scale, len, 1))?;
        if edited {
            // Normalize again with the scale as the interventions left it.
            self.plan.dispatch(
                KernelId::LayerNormWithScale,
                &params,
                buffers(),
                (len as u32, 1),
            );
        }
        self.at(normalized_hook, Site::rows(&out, len, d))?;
        Ok(out)
    }

    /// `out = act(input · W + b)` for `rows` rows.
    fn linear(
        &mut self,
        input: &wgpu::Buffer,
        rows: usize,
        layer: &DeviceLinear,
        out: &wgpu::Buffer,
        activation: Act,
    ) {
        super::product(
            &mut self.plan,
            input,
            0,
            rows,
            (&layer.weight, layer.inputs, layer.outputs),
            Some(&layer.bias),
            out,
            (layer.outputs, 0),
            activation,
        );
    }
}
