//! Sorting a pass's readback into what was asked: kept activations (into the hooks),
//! logits, features and columns.

use candle_core::{Device, Tensor};
use glassbox_engine::{Logits, LogitsRead, PassOutput, PassRequest};
use glassbox_model::{HookPoint, Hooks};

use super::pass::Layout;
use crate::GpuError;
use crate::kernels::params::NONE;
use crate::plan::Staged;

fn floats(bytes: &[u8], staged: Staged) -> Vec<f32> {
    bytemuck::pod_collect_to_vec(&bytes[staged.offset..staged.offset + staged.bytes])
}

fn words(bytes: &[u8], staged: Staged) -> Vec<u32> {
    bytemuck::pod_collect_to_vec(&bytes[staged.offset..staged.offset + staged.bytes])
}

/// The end of the last region `layout` staged.
fn staged_end(layout: &Layout) -> usize {
    layout
        .kept
        .iter()
        .map(|(_, _, s)| *s)
        .chain(layout.features.iter().flat_map(|(_, _, v, i)| [*v, *i]))
        .chain(layout.columns.iter().map(|(_, s)| *s))
        .chain(
            layout
                .logits
                .iter()
                .flat_map(|(_, v, i)| std::iter::once(*v).chain(*i)),
        )
        .map(|s| s.offset + s.bytes)
        .max()
        .unwrap_or(0)
}

/// Sorts `bytes` (a pass of `len` positions after `offset` cached ones) by `layout`.
pub(crate) fn read_output(
    bytes: &[u8],
    layout: Layout,
    hooks: &mut Hooks,
    (offset, len): (usize, usize),
    request: &PassRequest,
) -> Result<PassOutput, GpuError> {
    let end = staged_end(&layout);
    if bytes.len() < end {
        return Err(GpuError::Readback(format!(
            "read {} bytes, expected {end}",
            bytes.len()
        )));
    }
    for (hook, dims, staged) in layout.kept {
        let mut values = floats(bytes, staged);
        if matches!(hook, HookPoint::AttnScores(_)) {
            // The device marks masked scores with f32::MIN (WGSL has no infinities).
            for v in &mut values {
                if *v <= f32::MIN {
                    *v = f32::NEG_INFINITY;
                }
            }
        }
        let tensor = Tensor::from_vec(values, dims, &Device::Cpu)?;
        hooks
            .keep(hook, tensor, offset)
            .map_err(|e| GpuError::Reference(e.to_string()))?;
    }
    let logits = layout.logits.map(|(read, values, indices)| {
        let values = floats(bytes, values);
        match indices {
            Some(indices) => Logits::Top(
                words(bytes, indices)
                    .into_iter()
                    .zip(values)
                    .filter(|(id, _)| *id != NONE)
                    .collect(),
            ),
            None => Logits::Rows {
                rows: if read == LogitsRead::All { len } else { 1 },
                values,
            },
        }
    });
    // A read of no features still has a (empty) list per position.
    let mut features = vec![vec![Vec::new(); len]; request.features.len()];
    for (r, top, values, indices) in layout.features {
        let values = floats(bytes, values);
        let indices = words(bytes, indices);
        features[r] = values
            .chunks(top)
            .zip(indices.chunks(top))
            .map(|(v, i)| {
                i.iter()
                    .zip(v)
                    .filter(|(id, value)| **id != NONE && **value > 0.0)
                    .map(|(id, value)| (*id, *value))
                    .collect()
            })
            .collect();
    }
    let mut columns = vec![Vec::new(); request.columns.len()];
    for (r, staged) in layout.columns {
        columns[r] = floats(bytes, staged);
    }
    Ok(PassOutput {
        logits,
        features,
        columns,
    })
}
