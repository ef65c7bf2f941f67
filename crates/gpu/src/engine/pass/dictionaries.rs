//! What a dictionary computes in a pass: its features at the hook it reads (and the reads
//! of them the request asks for), and steering at the hook it writes.

use glassbox_dict::Architecture;
use glassbox_engine::{FeatureSet, Steering, check_encodable};
use glassbox_model::{HookPoint, position_mask};

use super::ops::count_params;
use super::{Recorder, Site, dev};
use crate::GpuError;
use crate::kernels::params::{Act, ElementwiseParams, FeatureEdit, SteerMode, SteerParams};
use crate::kernels::{KernelId, linear_groups};
use crate::plan::Buf;

impl Recorder<'_> {
    /// Encodes the activation at `site` (of `hook`) with dictionary `index` into its
    /// activation buffer, and stages the features and columns the request reads of it.
    pub(super) fn encode(
        &mut self,
        index: usize,
        hook: HookPoint,
        site: &Site,
    ) -> Result<(), GpuError> {
        let dictionary = self.dictionaries[index].clone();
        let attachment = self.attachments[index].clone();
        let len = self.len;
        check_encodable(hook, &site.dims, len, attachment.d_in)
            .map_err(|e| GpuError::Shape(e.to_string()))?;
        let d_sae = attachment.d_sae;
        let acts = self.buffer("features", index, len * d_sae);
        let relu = matches!(
            dictionary.architecture,
            Architecture::Standard | Architecture::Transcoder
        );
        super::product(
            &mut self.plan,
            &site.buffer,
            site.base,
            len,
            (&dictionary.w_enc, attachment.d_in, d_sae),
            Some(&dictionary.b_enc),
            &acts,
            (d_sae, 0),
            if relu { Act::Relu } else { Act::None },
        );
        match dictionary.architecture {
            Architecture::Standard | Architecture::Transcoder => {}
            Architecture::JumpReLU => {
                let threshold = dictionary.threshold.clone().ok_or_else(|| {
                    GpuError::Shape("a JumpReLU dictionary without thresholds".to_owned())
                })?;
                let params = ElementwiseParams {
                    width: d_sae as u32,
                    ..count_params(len * d_sae)
                };
                self.elementwise(KernelId::JumpRelu, &acts, &threshold, &threshold, params);
            }
            Architecture::TopK => {
                let k = attachment.k.unwrap_or(d_sae).clamp(1, d_sae);
                let (values, indices) =
                    self.top_k(&acts, len, d_sae, k, ("top-k values", "top-k indices", 0));
                let candidates = self.no_candidates();
                let params = super::reads::top_k_params(len, d_sae, k, 0);
                let groups = linear_groups(len * d_sae);
                let output = (&values, &indices);
                self.top_k_step(
                    KernelId::KeepTopK,
                    &params,
                    &acts,
                    &candidates,
                    output,
                    groups,
                );
            }
        }
        self.read_features(index, &acts);
        Ok(())
    }

    /// Adds `(new − old) · W_dec[f]` for each of `steering`'s features to the activation
    /// at `site` (the dictionary's output), at the positions it applies to.
    pub(super) fn steer(&mut self, steering: &Steering, site: &Site) {
        let index = steering.dictionary;
        let dictionary = self.dictionaries[index].clone();
        let (d_sae, d_out) = (self.attachments[index].d_sae, self.attachments[index].d_out);
        let acts = self.buffer("features", index, self.len * d_sae);
        let edits: Vec<FeatureEdit> = steering
            .features
            .iter()
            .map(|&(feature, set)| {
                let (mode, value) = match set {
                    FeatureSet::Clamp(v) => (SteerMode::Clamp, v),
                    FeatureSet::Scale(v) => (SteerMode::Scale, v),
                };
                FeatureEdit {
                    feature: feature as u32,
                    mode: mode as u32,
                    value,
                    ..FeatureEdit::default()
                }
            })
            .collect();
        let edits_base = self.plan.upload(bytemuck::cast_slice(&edits)) / 4;
        let mask = position_mask(steering.positions.as_deref(), self.len, self.offset);
        let mask_base = self.plan.upload(bytemuck::cast_slice(&mask));
        let params = SteerParams {
            rows: self.len as u32,
            d: d_out as u32,
            d_sae: d_sae as u32,
            edits: edits.len() as u32,
            edits_base,
            mask_base,
            ..SteerParams::default()
        };
        self.plan.dispatch(
            KernelId::Steer,
            &params,
            vec![
                dev(&site.buffer),
                dev(&acts),
                dev(&dictionary.w_dec),
                Buf::Uploads,
                Buf::Uploads,
            ],
            linear_groups(self.len * d_out),
        );
    }
}
