//! The CPU engine: a [`glassbox_model::Model`] of any family on candle-core, with
//! dictionaries attached.
//! It is the reference every other engine is checked against.
//!
//! A request's dictionaries and steering enter the pass as computed edits placed before
//! the hooks' own interventions: at a dictionary's input the activation is encoded (and
//! left as it is); at its output the steering adds `(new − old) · W_dec[f]`.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use candle_core::{Device, Tensor};
use glassbox_dict::Dictionary;
use glassbox_model::{
    Edit, EditContext, HookPoint, Hooks, Intervention, KvCache, Model, ModelDims, ModelError,
};

use crate::check::{check_attachment, check_encodable, check_pass};
use crate::engine::{Attach, Attachment, Engine};
use crate::error::{EngineError, Result};
use crate::lock::lock;
use crate::request::{FeatureSet, Logits, LogitsRead, PassOutput, PassRequest};

/// A model on the CPU, with the dictionaries attached to it.
#[derive(Debug, Clone)]
pub struct CpuEngine {
    model: Model,
    dictionaries: Vec<Arc<Dictionary>>,
    attachments: Vec<Attachment>,
}

/// Each encoding dictionary's activations in this pass `[positions, d_sae]`, by number.
type Encoded = Arc<Mutex<BTreeMap<usize, Tensor>>>;

impl CpuEngine {
    /// `model`, with no dictionaries attached yet.
    #[must_use]
    pub fn new(model: impl Into<Model>) -> Self {
        Self {
            model: model.into(),
            dictionaries: Vec::new(),
            attachments: Vec::new(),
        }
    }

    /// The model.
    #[must_use]
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The attached dictionaries, in order.
    #[must_use]
    pub fn dictionaries(&self) -> &[Arc<Dictionary>] {
        &self.dictionaries
    }

    /// Attaches `dictionary` at once (attaching does no work on the CPU).
    pub fn attach_now(
        &mut self,
        dictionary: &Arc<Dictionary>,
        input: HookPoint,
        output: HookPoint,
    ) -> Result<usize> {
        check_attachment(&self.model.dims(), input, output)?;
        self.attachments
            .push(Attachment::new(dictionary, input, output));
        self.dictionaries.push(Arc::clone(dictionary));
        Ok(self.dictionaries.len() - 1)
    }

    /// The pass, computed right away.
    pub fn pass_now(
        &self,
        ids: &[u32],
        request: &PassRequest,
        hooks: &mut Hooks,
        cache: Option<&mut KvCache>,
    ) -> Result<PassOutput> {
        let offset = cache.as_ref().map_or(0, |c| c.len());
        check_pass(&self.dims(), &self.attachments, ids, offset, request, hooks)?;
        let len = ids.len();
        let encoded = Encoded::default();
        let first = self.dictionary_edits(request, len, &encoded);
        let tokens = Tensor::new(ids, &Device::Cpu)?.unsqueeze(0)?;
        let logits = hooks.with_first(first, |hooks| match cache {
            Some(cache) => self.model.forward_cached(&tokens, cache, hooks),
            None => self.model.forward(&tokens, hooks),
        })?;
        let logits = logits.squeeze(0)?;
        let encoded = std::mem::take(&mut *lock(&encoded));
        let activations = |index: usize| {
            encoded
                .get(&index)
                .ok_or_else(|| EngineError::Failed(format!("dictionary {index} encoded nothing")))
        };
        let mut features = Vec::with_capacity(request.features.len());
        for read in &request.features {
            let top = self.attachments[read.dictionary].most_active(read.top);
            let rows: Vec<Vec<f32>> = activations(read.dictionary)?.to_vec2()?;
            features.push(rows.iter().map(|row| strongest(row, top)).collect());
        }
        let mut columns = Vec::with_capacity(request.columns.len());
        for read in &request.columns {
            let acts = activations(read.dictionary)?;
            columns.push(acts.narrow(1, read.feature, 1)?.squeeze(1)?.to_vec1()?);
        }
        Ok(PassOutput {
            logits: read_logits(&logits, request.logits)?,
            features,
            columns,
        })
    }

    /// The edits a request adds in front of the hooks' own: each dictionary it reads or
    /// steers through encodes its input into `encoded`; each steering writes its output.
    fn dictionary_edits(
        &self,
        request: &PassRequest,
        len: usize,
        encoded: &Encoded,
    ) -> Vec<Intervention> {
        let mut edits = Vec::new();
        for (index, attachment) in self.attachments.iter().enumerate() {
            if !request.encodes(index) {
                continue;
            }
            let (dictionary, encoded) =
                (Arc::clone(&self.dictionaries[index]), Arc::clone(encoded));
            let (hook, d_in) = (attachment.input, attachment.d_in);
            edits.push(Intervention::everywhere(
                hook,
                Edit::Computed(Arc::new(move |x: &Tensor, _: EditContext<'_>| {
                    check_encodable(hook, x.dims(), len, d_in)
                        .map_err(|e| ModelError::Hook(e.to_string()))?;
                    let acts = dictionary
                        .encode(&x.reshape((len, d_in))?)
                        .map_err(|e| ModelError::Hook(e.to_string()))?;
                    lock(&encoded).insert(index, acts);
                    Ok(x.clone())
                })),
            ));
        }
        for steering in &request.steering {
            let index = steering.dictionary;
            let (dictionary, encoded) =
                (Arc::clone(&self.dictionaries[index]), Arc::clone(encoded));
            let features = steering.features.clone();
            edits.push(Intervention {
                hook: self.attachments[index].output,
                positions: steering.positions.clone(),
                edit: Edit::Computed(Arc::new(move |x: &Tensor, _: EditContext<'_>| {
                    let acts = lock(&encoded).get(&index).cloned().ok_or_else(|| {
                        ModelError::Hook(format!(
                            "dictionary {index} steers before it has read its input"
                        ))
                    })?;
                    steer(x, &acts, &dictionary, &features)
                })),
            });
        }
        edits
    }
}

/// `x` (a dictionary's output hook, `[1, positions, d_out]`) plus `(new − old) · W_dec[f]`
/// for each steered feature, `old` being its activation in `acts` `[positions, d_sae]`.
fn steer(
    x: &Tensor,
    acts: &Tensor,
    dictionary: &Dictionary,
    features: &[(usize, FeatureSet)],
) -> glassbox_model::Result<Tensor> {
    let dims = x.dims().to_vec();
    let rows = acts.dim(0)?;
    let mut out = x.reshape((rows, x.elem_count() / rows.max(1)))?;
    for &(feature, set) in features {
        let old = acts.narrow(1, feature, 1)?;
        let new = match set {
            FeatureSet::Clamp(v) => old.ones_like()?.affine(f64::from(v), 0.0)?,
            FeatureSet::Scale(m) => old.affine(f64::from(m), 0.0)?,
        };
        let direction = dictionary.w_dec.narrow(0, feature, 1)?;
        out = (out + (new - old)?.matmul(&direction)?)?;
    }
    Ok(out.reshape(dims)?)
}

/// The logits `read` asks for, from `logits` `[positions, vocab]`.
fn read_logits(logits: &Tensor, read: LogitsRead) -> Result<Option<Logits>> {
    let len = logits.dim(0)?;
    Ok(match read {
        LogitsRead::None => None,
        LogitsRead::All => Some(Logits::Rows {
            rows: len,
            values: logits.flatten_all()?.to_vec1()?,
        }),
        LogitsRead::Last => Some(Logits::Rows {
            rows: 1,
            values: logits.get(len - 1)?.to_vec1()?,
        }),
        LogitsRead::LastTop(k) => {
            let last: Vec<f32> = logits.get(len - 1)?.to_vec1()?;
            Some(Logits::Top(largest(&last, k.max(1))))
        }
    })
}

/// The `n` largest entries of `row`, largest first, ties to the lower index; NaNs never.
fn largest(row: &[f32], n: usize) -> Vec<(u32, f32)> {
    let before = |a: &usize, b: &usize| row[*b].total_cmp(&row[*a]).then(a.cmp(b));
    let mut order: Vec<usize> = (0..row.len()).filter(|&i| !row[i].is_nan()).collect();
    let n = n.min(order.len());
    if n < order.len() {
        order.select_nth_unstable_by(n, before);
        order.truncate(n);
    }
    order.sort_by(before);
    order.into_iter().map(|i| (i as u32, row[i])).collect()
}

/// The `n` strongest active (positive) entries of `row`, strongest first, ties to the
/// lower index: a position's strongest features.
#[must_use]
pub fn strongest(row: &[f32], n: usize) -> Vec<(u32, f32)> {
    let mut top = largest(row, n);
    top.retain(|&(_, value)| value > 0.0);
    top
}

impl Engine for CpuEngine {
    type Cache = KvCache;

    fn dims(&self) -> ModelDims {
        self.model.dims()
    }

    fn attachments(&self) -> &[Attachment] {
        &self.attachments
    }

    fn new_cache(&self) -> KvCache {
        KvCache::default()
    }

    fn cached_len(&self, cache: &KvCache) -> usize {
        cache.len()
    }

    fn pass(
        &self,
        ids: &[u32],
        request: &PassRequest,
        hooks: &mut Hooks,
        cache: Option<&mut KvCache>,
    ) -> impl Future<Output = Result<PassOutput>> {
        std::future::ready(self.pass_now(ids, request, hooks, cache))
    }
}

impl Attach for CpuEngine {
    fn attach(
        &mut self,
        dictionary: &Arc<Dictionary>,
        input: HookPoint,
        output: HookPoint,
    ) -> impl Future<Output = Result<usize>> {
        std::future::ready(self.attach_now(dictionary, input, output))
    }
}
