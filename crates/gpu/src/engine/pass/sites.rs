//! What happens at a hook point, the same for every model family and in the order the
//! engine interface defines: the request's dictionaries that read the activation encode
//! it, its steering that writes there applies, the hooks' interventions apply in order,
//! and the activation is staged for readback if the hooks keep it.

use glassbox_model::{Edit, HookPoint};

use super::{Recorder, Site, dev};
use crate::GpuError;
use crate::kernels::params::{EditOp, ElementwiseParams};
use crate::kernels::{KernelId, linear_groups};
use crate::plan::Buf;

impl Recorder<'_> {
    /// Everything that happens at `hook`, whose activation is at `site`.
    pub(super) fn at(&mut self, hook: HookPoint, site: Site) -> Result<(), GpuError> {
        let request = self.request;
        for index in 0..self.dictionaries.len() {
            if self.attachments[index].input == hook && request.encodes(index) {
                self.encode(index, hook, &site)?;
            }
        }
        for steering in &request.steering {
            if self.attachments[steering.dictionary].output == hook {
                self.steer(steering, &site);
            }
        }
        for intervention in self.hooks.interventions().iter().filter(|i| i.hook == hook) {
            if !intervention.acts_on(self.len, self.offset) {
                continue;
            }
            let (op, factor) = match &intervention.edit {
                Edit::Replace(_) => (EditOp::Replace, 0.0),
                Edit::Add(_) => (EditOp::Add, 0.0),
                Edit::Scale(f) => (EditOp::Scale, *f as f32),
                Edit::Zero => (EditOp::Zero, 0.0),
                Edit::Computed(_) => {
                    return Err(GpuError::Unsupported(format!(
                        "a computed edit at {hook} runs on the CPU engine only; on the GPU, \
                         steer through an attached dictionary"
                    )));
                }
            };
            let value = intervention
                .value_for(&site.dims, self.offset)
                .map_err(|e| GpuError::Shape(e.to_string()))?;
            let other_base = match value {
                Some(v) => self
                    .plan
                    .upload(bytemuck::cast_slice(&crate::engine::weights::flat(&v)?)),
                None => 0,
            };
            let mask_base = self.plan.upload(bytemuck::cast_slice(
                &intervention.position_mask(self.len, self.offset),
            ));
            let count = site.count();
            let params = ElementwiseParams {
                count: count as u32,
                base: site.base as u32,
                len: self.len as u32,
                inner: site.inner as u32,
                op: op as u32,
                factor,
                other_base,
                mask_base,
                ..ElementwiseParams::default()
            };
            self.plan.dispatch(
                KernelId::Edit,
                &params,
                vec![dev(&site.buffer), Buf::Uploads, Buf::Uploads],
                linear_groups(count),
            );
        }
        if self.hooks.keeps(hook) {
            let staged = self
                .plan
                .stage(&site.buffer, (site.base * 4) as u64, site.count() * 4);
            self.layout.kept.push((hook, site.dims, staged));
        }
        Ok(())
    }
}
