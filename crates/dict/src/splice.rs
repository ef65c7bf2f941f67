//! Splicing a transcoder into a model: its block's MLP output is replaced, within the same
//! forward pass, by the transcoder's prediction from that MLP's own input (plus, if given,
//! an error term that makes up the difference).

use std::sync::Arc;

use candle_core::Tensor;
use glassbox_model::{Edit, EditContext, HookPoint, Hooks, Intervention, ModelError, Norm};

use crate::{DictError, Dictionary};

/// The block a transcoder replaces, from its `hook_name` (`blocks.{l}.ln2.hook_normalized`)
/// and `hook_name_out` (`blocks.{l}.hook_mlp_out`).
pub fn transcoder_layer(transcoder: &Dictionary) -> Result<usize, DictError> {
    let metadata = &transcoder.config.metadata;
    let input: HookPoint = metadata
        .hook_name
        .parse()
        .map_err(|e: ModelError| DictError::Config(e.to_string()))?;
    let output: Option<HookPoint> = metadata
        .hook_name_out
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e: ModelError| DictError::Config(e.to_string()))?;
    match (input, output) {
        (HookPoint::LnNormalized(l, Norm::Ln2), Some(HookPoint::MlpOut(m))) if l == m => Ok(l),
        _ => Err(DictError::Config(format!(
            "not an MLP transcoder: it reads {} and writes {}",
            metadata.hook_name,
            metadata.hook_name_out.as_deref().unwrap_or("nothing")
        ))),
    }
}

/// Adds to `hooks` what replaces the MLP of the transcoder's block by the transcoder:
/// `hook_mlp_out` becomes `decode(encode(ln2.hook_normalized))`, plus `error` (shaped like
/// `hook_mlp_out`, e.g. the MLP's true output minus this prediction on a clean run) when
/// given. Several splices compose: each reads its input from the pass as changed by the
/// ones before it.
pub fn splice(
    hooks: Hooks,
    transcoder: Arc<Dictionary>,
    error: Option<Tensor>,
) -> Result<Hooks, DictError> {
    let layer = transcoder_layer(&transcoder)?;
    let input = HookPoint::LnNormalized(layer, Norm::Ln2);
    let predict = move |x: &Tensor, context: EditContext<'_>| {
        let read = context
            .cached
            .get(&input)
            .ok_or_else(|| ModelError::Hook(format!("{input} was not kept for the splice")))?;
        let (batch, len, width) = x.dims3()?;
        let have = read.dim(1)?;
        // During cached generation the kept input spans every position so far.
        let read = read.narrow(1, have - len, len)?;
        let rows = read.reshape((batch * len, read.dim(2)?))?;
        let features = transcoder
            .encode(&rows)
            .map_err(|e| ModelError::Hook(e.to_string()))?;
        let prediction = transcoder
            .decode(&features)
            .map_err(|e| ModelError::Hook(e.to_string()))?
            .reshape((batch, len, width))?;
        Ok(match &error {
            Some(error) => (prediction + error)?,
            None => prediction,
        })
    };
    Ok(hooks.cache(input).intervene(Intervention::everywhere(
        HookPoint::MlpOut(layer),
        Edit::Computed(Arc::new(predict)),
    )))
}
