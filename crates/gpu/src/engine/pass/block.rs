//! The residual walk every family shares: the blocks (`hook_resid_pre`, the first norm,
//! the family's attention, `hook_attn_out`, `hook_resid_mid`, the second norm, the
//! family's MLP, `hook_mlp_out`, `hook_resid_post`), then, when every block ran, the final
//! norm and the logits. What differs between families is in [`Block`]'s two parts.

use glassbox_model::{HookPoint, Norm};

use super::gpt2::Gpt2Parts;
use super::llama::LlamaParts;
use super::norm::NormKind;
use super::{Recorder, Site};
use crate::GpuError;
use crate::engine::weights::{DeviceLayerNorm, Gpt2Block, LlamaBlock};

/// One block's weights and what every block of the pass shares, by family.
#[derive(Clone, Copy)]
pub(super) enum Block<'w> {
    Gpt2(&'w Gpt2Block, Gpt2Parts),
    Llama(&'w LlamaBlock, LlamaParts),
}

impl Block<'_> {
    fn norms(&self) -> (&DeviceLayerNorm, &DeviceLayerNorm) {
        match self {
            Self::Gpt2(b, _) => (&b.ln_1, &b.ln_2),
            Self::Llama(b, _) => (&b.ln_1, &b.ln_2),
        }
    }
}

impl Recorder<'_> {
    /// Block `l` on the residual stream `x`, normalized as `norm` says.
    pub(super) fn block(
        &mut self,
        l: usize,
        block: Block<'_>,
        norm: NormKind,
        x: &wgpu::Buffer,
    ) -> Result<(), GpuError> {
        let (len, d) = (self.len, self.d());
        let (ln_1, ln_2) = block.norms();
        self.at(HookPoint::ResidPre(l), Site::rows(x, len, d))?;
        let ln1 = self.norm(
            x,
            ln_1,
            norm,
            (
                HookPoint::LnScale(l, Norm::Ln1),
                HookPoint::LnNormalized(l, Norm::Ln1),
            ),
        )?;
        let attn_out = match block {
            Block::Gpt2(b, _) => self.gpt2_attention(l, &ln1, b)?,
            Block::Llama(b, parts) => self.llama_attention(l, &ln1, b, parts)?,
        };
        self.at(HookPoint::AttnOut(l), Site::rows(&attn_out, len, d))?;
        self.add(x, &attn_out, len * d);
        self.at(HookPoint::ResidMid(l), Site::rows(x, len, d))?;
        let ln2 = self.norm(
            x,
            ln_2,
            norm,
            (
                HookPoint::LnScale(l, Norm::Ln2),
                HookPoint::LnNormalized(l, Norm::Ln2),
            ),
        )?;
        let mlp_out = match block {
            Block::Gpt2(b, parts) => self.gpt2_mlp(l, &ln2, b, parts)?,
            Block::Llama(b, parts) => self.llama_mlp(l, &ln2, b, parts)?,
        };
        self.at(HookPoint::MlpOut(l), Site::rows(&mlp_out, len, d))?;
        self.add(x, &mlp_out, len * d);
        self.at(HookPoint::ResidPost(l), Site::rows(x, len, d))
    }

    /// The blocks needed, then (when every block ran) the final norm and the logits read.
    pub(super) fn blocks_and_logits<'w>(
        &mut self,
        blocks: impl Iterator<Item = Block<'w>>,
        norm: NormKind,
        x: &wgpu::Buffer,
    ) -> Result<(), GpuError> {
        for (l, block) in blocks.enumerate().take(self.blocks) {
            self.block(l, block, norm, x)?;
        }
        if self.blocks == self.dims.n_layer {
            let weights = self.weights;
            let normalized = self.norm(
                x,
                &weights.ln_final,
                norm,
                (HookPoint::LnFinalScale, HookPoint::LnFinalNormalized),
            )?;
            self.logits(&normalized);
        }
        Ok(())
    }
}
