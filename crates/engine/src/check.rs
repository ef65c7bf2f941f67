//! The checks every engine makes before a pass, written once so that every engine
//! refuses the same requests with the same words.

use glassbox_model::{HookPoint, Hooks, ModelDims};

use crate::engine::Attachment;
use crate::error::{EngineError, Result};
use crate::request::PassRequest;

fn refuse(message: String) -> EngineError {
    EngineError::Request(message)
}

/// Checks a pass over `ids` after `offset` cached positions: the tokens fit the model,
/// the hooks name points it has, and the request names attached dictionaries, features
/// they have and finite steering values.
pub fn check_pass(
    dims: &ModelDims,
    attachments: &[Attachment],
    ids: &[u32],
    offset: usize,
    request: &PassRequest,
    hooks: &Hooks,
) -> Result<()> {
    hooks.validate(dims.n_layer, dims.family)?;
    if ids.is_empty() {
        return Err(refuse("no tokens to run".to_owned()));
    }
    if offset + ids.len() > dims.n_positions {
        return Err(refuse(format!(
            "{} tokens is more than the model's context of {} (n_positions)",
            offset + ids.len(),
            dims.n_positions
        )));
    }
    if let Some(&id) = ids.iter().find(|&&id| id as usize >= dims.vocab_size) {
        return Err(refuse(format!(
            "token id {id} is out of range: the vocabulary has {} tokens",
            dims.vocab_size
        )));
    }
    for index in request.dictionaries() {
        if index >= attachments.len() {
            return Err(refuse(format!(
                "dictionary {index} is not attached ({} are)",
                attachments.len()
            )));
        }
    }
    let features = request
        .columns
        .iter()
        .map(|c| (c.dictionary, c.feature))
        .chain(
            request
                .steering
                .iter()
                .flat_map(|s| s.features.iter().map(|(f, _)| (s.dictionary, *f))),
        );
    for (index, feature) in features {
        let d_sae = attachments[index].d_sae;
        if feature >= d_sae {
            return Err(refuse(format!(
                "feature {feature} does not exist: dictionary {index} has {d_sae}"
            )));
        }
    }
    for steering in &request.steering {
        for (feature, set) in &steering.features {
            let (crate::FeatureSet::Clamp(value) | crate::FeatureSet::Scale(value)) = set;
            if !value.is_finite() {
                return Err(refuse(format!(
                    "feature {feature} of dictionary {}: {value} is not a number to steer with",
                    steering.dictionary
                )));
            }
        }
    }
    Ok(())
}

/// Checks that a dictionary reading `input` can write at `output` in a model of these
/// dimensions: both exist, and the output is the input (a sparse autoencoder) or comes
/// after it (a transcoder).
pub fn check_attachment(dims: &ModelDims, input: HookPoint, output: HookPoint) -> Result<()> {
    let order = HookPoint::all(dims.n_layer, dims.family);
    let place = |hook: HookPoint| {
        order.iter().position(|h| *h == hook).ok_or_else(|| {
            refuse(format!(
                "{hook} does not exist in this {} model of {} blocks",
                dims.family, dims.n_layer
            ))
        })
    };
    // A sparse autoencoder reads and writes one hook; a transcoder writes further on.
    if place(input)? > place(output)? {
        return Err(refuse(format!(
            "a dictionary reading {input} cannot write at {output}, which comes first"
        )));
    }
    Ok(())
}

/// Checks that a dictionary reading `d_in` values per position can encode the activation
/// at `hook`, of shape `dims` over `len` positions: positions on axis 1 (not attention
/// scores or patterns, which lead with heads), the rest `d_in` values.
pub fn check_encodable(hook: HookPoint, dims: &[usize], len: usize, d_in: usize) -> Result<()> {
    let count: usize = dims.iter().product();
    if hook.position_axis() != 1 || dims.get(1) != Some(&len) || count != len * d_in {
        return Err(refuse(format!(
            "a dictionary reading {d_in} values per position is attached to {hook}, of shape {dims:?}"
        )));
    }
    Ok(())
}
