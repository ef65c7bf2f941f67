//! LayerNorm (GPT-2) and `RMSNorm` (Llama) with their hooks, as TransformerLens places
//! them: `ln*.hook_scale`, which an intervention may edit (the row is then normalized
//! again with the edited scale), and `ln*.hook_normalized`, before the gain and bias,
//! which apply after it.

use glassbox_model::HookPoint;

use super::ops::count_params;
use super::{Recorder, Site, dev};
use crate::GpuError;
use crate::engine::weights::DeviceLayerNorm;
use crate::kernels::KernelId;
use crate::kernels::params::{ElementwiseParams, LayerNormParams};

/// Which normalization, and its epsilon.
#[derive(Debug, Clone, Copy)]
pub(super) enum NormKind {
    /// `(x - mean) / scale` at `hook_normalized`, then `· w + b`.
    Layer { eps: f64 },
    /// `x / scale` at `hook_normalized`, then `· w`.
    Rms { eps: f64 },
}

impl Recorder<'_> {
    /// The normalization of `x` into the shared output buffer, with its two hooks.
    pub(super) fn norm(
        &mut self,
        x: &wgpu::Buffer,
        weights: &DeviceLayerNorm,
        kind: NormKind,
        (scale_hook, normalized_hook): (HookPoint, HookPoint),
    ) -> Result<wgpu::Buffer, GpuError> {
        let (len, d) = (self.len, self.d());
        // One buffer for every norm: a dictionary reading one encodes it right away.
        let out = self.buffer("normalized", 0, len * d);
        let scale = self.buffer("scale", 0, len);
        let (eps, rms) = match kind {
            NormKind::Layer { eps } => (eps, false),
            NormKind::Rms { eps } => (eps, true),
        };
        let params = LayerNormParams {
            rows: len as u32,
            d: d as u32,
            eps: eps as f32,
            rms: u32::from(rms),
        };
        let buffers = || vec![dev(x), dev(&out), dev(&scale)];
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
        let params = ElementwiseParams {
            width: d as u32,
            op: u32::from(weights.bias.is_some()),
            ..count_params(len * d)
        };
        let bias = weights.bias.as_ref().unwrap_or(&weights.weight);
        self.elementwise(KernelId::Affine, &out, &weights.weight, bias, params);
        Ok(out)
    }
}
