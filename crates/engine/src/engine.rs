//! The interface every engine implements: one forward pass over token ids, with a
//! request and hooks, optionally extending a KV cache; and dictionaries attached to the
//! hooks they read and write.

use std::future::Future;
use std::sync::Arc;

use glassbox_dict::{Architecture, Dictionary};
use glassbox_model::{HookPoint, Hooks, ModelDims, Norm};

use crate::error::Result;
use crate::request::{PassOutput, PassRequest};

/// A dictionary as an engine holds it: where it reads and writes, and its sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The hook it reads (for a transcoder of block `l`: `blocks.l.ln2.hook_normalized`).
    pub input: HookPoint,
    /// The hook its decoder writes to, where steering applies (`blocks.l.hook_mlp_out`).
    pub output: HookPoint,
    /// Width of what it reads.
    pub d_in: usize,
    /// Its features.
    pub d_sae: usize,
    /// Width of what it writes.
    pub d_out: usize,
    /// For a TopK dictionary, how many features can be active at one position.
    pub k: Option<usize>,
}

impl Attachment {
    /// `dictionary` attached between `input` and `output`.
    #[must_use]
    pub fn new(dictionary: &Dictionary, input: HookPoint, output: HookPoint) -> Self {
        let config = &dictionary.config;
        Self {
            input,
            output,
            d_in: config.d_in,
            d_sae: config.d_sae,
            d_out: config.d_out(),
            k: (config.architecture == Architecture::TopK).then_some(config.k.unwrap_or(0)),
        }
    }

    /// How many features a read of the `top` strongest can return: no more than the
    /// dictionary has, nor, for TopK, than can be active at once.
    #[must_use]
    pub fn most_active(&self, top: usize) -> usize {
        top.min(self.d_sae).min(self.k.unwrap_or(self.d_sae))
    }
}

/// A forward pass, as both engines run it.
///
/// At each hook point, in this order: the request's dictionaries that read it encode it,
/// its steering that writes there applies, the hooks' interventions apply (in the order
/// added), and the activation is kept if the hooks ask for it.
pub trait Engine {
    /// Keys and values of the positions run so far, for generation.
    type Cache;

    /// The model's dimensions.
    fn dims(&self) -> ModelDims;

    /// The attached dictionaries, numbered as requests name them.
    fn attachments(&self) -> &[Attachment];

    /// A KV cache with nothing in it yet.
    fn new_cache(&self) -> Self::Cache;

    /// How many positions `cache` holds.
    fn cached_len(&self, cache: &Self::Cache) -> usize;

    /// Runs `ids` through the model (the positions after those in `cache`, when given,
    /// which it extends): reads what `request` asks; stores what `hooks` keeps in it (as
    /// `[1, …]` tensors, appended along the positions over a cached generation) and
    /// applies its interventions.
    fn pass(
        &self,
        ids: &[u32],
        request: &PassRequest,
        hooks: &mut Hooks,
        cache: Option<&mut Self::Cache>,
    ) -> impl Future<Output = Result<PassOutput>>;
}

/// An engine that dictionaries can be attached to.
pub trait Attach {
    /// Attaches `dictionary`, which reads the activation at `input` and whose decoder
    /// writes where `output` is; returns its number for requests.
    fn attach(
        &mut self,
        dictionary: &Arc<Dictionary>,
        input: HookPoint,
        output: HookPoint,
    ) -> impl Future<Output = Result<usize>>;
}

/// Where block `layer`'s transcoder reads and writes: `blocks.{layer}.ln2.hook_normalized`
/// and `blocks.{layer}.hook_mlp_out`.
#[must_use]
pub fn transcoder_hooks(layer: usize) -> (HookPoint, HookPoint) {
    (
        HookPoint::LnNormalized(layer, Norm::Ln2),
        HookPoint::MlpOut(layer),
    )
}

/// Attaches one transcoder per block, block `l`'s as dictionary `l`.
pub async fn attach_transcoders<E: Attach>(
    engine: &mut E,
    transcoders: &[Arc<Dictionary>],
) -> Result<()> {
    for (layer, transcoder) in transcoders.iter().enumerate() {
        let (input, output) = transcoder_hooks(layer);
        engine.attach(transcoder, input, output).await?;
    }
    Ok(())
}
