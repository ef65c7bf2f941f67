//! A prompt's attribution graph, pruned to thresholds, as the graph file the view draws
//! and exports; and interventions on its nodes, the graph's prediction next to the
//! model's. The attribution (the costly part, on the GPU engine when one runs) is kept
//! for the last prompt, so moving a threshold only prunes again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use candle_core::Tensor;
use glassbox_circuits::{
    AttributionOptions, ExportContext, Graph, GraphFile, GraphScores, Influence, Lanes, NodeKind,
    Replacement, Thresholds,
};
use glassbox_engine::{LogitsRead, PassRequest, Steering, lock};
use glassbox_model::{Edit, HookPoint, Hooks, Intervention, Norm};
use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};
use crate::lab::Lab;
use crate::steer::{FeatureSteer, SteerMode};

/// A logit difference to attribute in place of the likeliest tokens: the next token
/// `token` rather than `versus` (the contrastive target, e.g. " were" rather than " was"),
/// each written as its text, one token each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contrast {
    /// The token preferred; the model's likeliest next token when `None`.
    pub token: Option<String>,
    /// The token it is preferred to.
    pub versus: String,
}

/// A change to one node of a prompt's graph.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum NodeEdit {
    /// Set feature `feature` of block `layer` to `value` at `position` (0 ablates it).
    Feature {
        /// The block.
        layer: usize,
        /// The token position.
        position: usize,
        /// The feature.
        feature: usize,
        /// Its new activation.
        value: f32,
    },
    /// Take block `layer`'s transcoder error out at `position`.
    Error {
        /// The block.
        layer: usize,
        /// The token position.
        position: usize,
    },
}

impl NodeEdit {
    /// The graph node it changes.
    #[must_use]
    pub fn node(&self) -> NodeKind {
        match *self {
            Self::Feature {
                layer,
                position,
                feature,
                ..
            } => NodeKind::Feature {
                layer,
                position,
                feature,
            },
            Self::Error { layer, position } => NodeKind::Error { layer, position },
        }
    }

    /// The token position it changes.
    #[must_use]
    pub fn position(&self) -> usize {
        match *self {
            Self::Feature { position, .. } | Self::Error { position, .. } => position,
        }
    }
}

/// One logit's change under a [`NodeEdit`], three ways.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogitChange {
    /// The token.
    pub token: u32,
    /// How it reads.
    pub text: String,
    /// For a logit difference, the token whose logit is subtracted and its text: the
    /// changes are then those of the difference.
    pub versus: Option<(u32, String)>,
    /// The graph's prediction: the node's direct effect on the (mean-centred) logit,
    /// scaled by the change of its activation; everything else frozen.
    pub predicted: f32,
    /// The model with attention patterns and LayerNorm scales frozen at their values on
    /// the prompt, the MLPs live.
    pub frozen: f32,
    /// The model itself: attention and everything downstream free.
    pub actual: f32,
}

/// The document separator a prompt may begin with: a graph of such a prompt leaves its
/// first position's features and errors out, as circuit-tracer does with the BOS token it
/// puts before every prompt (for GPT-2, this one).
pub const DOCUMENT_START: &str = "<|endoftext|>";

/// The most tokens a graph is computed for (half the default pack's context).
pub const MAX_CIRCUIT_TOKENS: usize = 64;

/// The most feature nodes a graph gets: the most influential of the active ones, as
/// circuit-tracer's `max_feature_nodes` (each is one row to carry back, and the dense
/// adjacency grows with their square; the default pack has 128 active per token).
pub const MAX_CIRCUIT_FEATURES: usize = 2048;

/// How the lab attributes.
fn options() -> AttributionOptions {
    AttributionOptions {
        max_feature_nodes: Some(MAX_CIRCUIT_FEATURES),
        ..AttributionOptions::default()
    }
}

/// A prompt (with the contrast it was attributed for), its graph and its influence.
type Attributed = (String, Option<Contrast>, Arc<Graph>, Arc<Influence>);

/// The last prompt's graph and its influence.
#[derive(Debug, Default)]
pub(crate) struct CircuitMemo {
    last: Mutex<Option<Attributed>>,
}

impl CircuitMemo {
    fn get(&self, text: &str, contrast: Option<&Contrast>) -> Option<(Arc<Graph>, Arc<Influence>)> {
        let last = lock(&self.last);
        last.as_ref()
            .filter(|(prompt, c, _, _)| prompt == text && c.as_ref() == contrast)
            .map(|(_, _, graph, influence)| (Arc::clone(graph), Arc::clone(influence)))
    }

    fn set(
        &self,
        text: &str,
        contrast: Option<&Contrast>,
        graph: &Arc<Graph>,
        influence: &Arc<Influence>,
    ) {
        *lock(&self.last) = Some((
            text.to_owned(),
            contrast.cloned(),
            Arc::clone(graph),
            Arc::clone(influence),
        ));
    }
}

impl Lab {
    /// The attribution graph of `text` as the page computes it (at most
    /// [`MAX_CIRCUIT_TOKENS`] tokens, the [`MAX_CIRCUIT_FEATURES`] most influential
    /// features, kept for the next call), pruned to `thresholds`; with `contrast`, its one
    /// logit node is that logit difference.
    pub async fn circuit(
        &self,
        text: &str,
        contrast: Option<&Contrast>,
        thresholds: Thresholds,
    ) -> Result<GraphFile> {
        let thresholds = thresholds.check()?;
        let (graph, influence) = self.attributed(text, contrast).await?;
        Ok(self.export(text, &graph, &influence, thresholds))
    }

    /// The attribution graph of `text` (any prompt the model reads) attributed with
    /// `options`, pruned to `thresholds`; how many nodes it had before pruning, and its
    /// replacement and completeness scores.
    /// With `contrast`, the graph's one logit node is that logit difference.
    pub async fn graph(
        &self,
        text: &str,
        thresholds: Thresholds,
        options: &AttributionOptions,
        contrast: Option<&Contrast>,
    ) -> Result<(GraphFile, usize, GraphScores)> {
        let thresholds = thresholds.check()?;
        let ids = self.prompt_ids(text)?;
        let replacement = self.replacement(&ids)?;
        let options = AttributionOptions {
            contrast: match contrast {
                Some(contrast) => Some(self.contrast_ids(&replacement, contrast)?),
                None => options.contrast,
            },
            ..*options
        };
        let graph = self.attribution_graph(&replacement, &options).await?;
        let influence = Influence::of(&graph);
        Ok((
            self.export(text, &graph, &influence, thresholds),
            graph.len(),
            influence.scores(),
        ))
    }

    /// How the page's graphs of `replacement`'s prompt are attributed, for `contrast`'s
    /// logit difference if any.
    pub(crate) fn attribution_options(
        &self,
        replacement: &Replacement,
        contrast: Option<&Contrast>,
    ) -> Result<AttributionOptions> {
        Ok(AttributionOptions {
            contrast: contrast
                .map(|c| self.contrast_ids(replacement, c))
                .transpose()?,
            ..options()
        })
    }

    /// `contrast`'s two tokens after `replacement`'s prompt: `(token, versus)`, the token
    /// the model's likeliest next one when not given.
    fn contrast_ids(&self, replacement: &Replacement, contrast: &Contrast) -> Result<(u32, u32)> {
        let token = if let Some(text) = &contrast.token {
            self.one_token(text)?
        } else {
            let logits: Vec<f32> = replacement.last_logits.to_vec1()?;
            let top = (0..logits.len()).max_by(|&a, &b| logits[a].total_cmp(&logits[b]));
            top.and_then(|t| u32::try_from(t).ok()).ok_or_else(|| {
                LabError::Request("the model gave no logits to contrast".to_owned())
            })?
        };
        let versus = self.one_token(&contrast.versus)?;
        if token == versus {
            return Err(LabError::Request(format!(
                "a logit difference compares two different tokens; both are {:?}",
                self.token_text(token)
            )));
        }
        Ok((token, versus))
    }

    /// The one token `text` is, or an error saying how many it is.
    fn one_token(&self, text: &str) -> Result<u32> {
        match self.tokenizer.encode_ids(text)?.as_slice() {
            [id] => Ok(*id),
            ids => Err(LabError::Request(format!(
                "{text:?} is {} tokens; a logit difference compares single tokens (mind the \
                 leading space: \" was\" is not \"was\")",
                ids.len()
            ))),
        }
    }

    /// `graph` pruned to `thresholds`, as a graph file with the pack's labels.
    fn export(
        &self,
        text: &str,
        graph: &Graph,
        influence: &Influence,
        thresholds: Thresholds,
    ) -> GraphFile {
        let pruned = influence.prune(graph, thresholds);
        let token_text = |t: u32| self.token_text(t);
        let label = |l: usize, f: usize| self.label(l, f).to_owned();
        let context = ExportContext {
            slug: &slug(text),
            scan: &self.name,
            prompt: text,
            d_sae: self.dictionaries.first().map_or(0, |d| d.config.d_sae),
            n_layer: self.model().dims().n_layer,
            token_text: &token_text,
            label: &label,
        };
        GraphFile::export(graph, &pruned, thresholds, &context)
    }

    /// The replacement model of `ids` for a graph: when they begin with
    /// [`DOCUMENT_START`] (and go on), that position's features and errors left out.
    pub(crate) fn replacement(&self, ids: &[u32]) -> Result<Replacement> {
        let replacement = Replacement::trace(self.model(), self.transcoders()?, ids)?;
        let start = self.tokenizer.token_id(DOCUMENT_START);
        if ids.len() > 1 && start.is_some() && ids.first().copied() == start {
            Ok(replacement.leaving_out_first()?)
        } else {
            Ok(replacement)
        }
    }

    /// The prompt's token ids, at most [`MAX_CIRCUIT_TOKENS`] of them.
    pub(crate) fn circuit_ids(&self, text: &str) -> Result<Vec<u32>> {
        let ids = self.prompt_ids(text)?;
        if ids.len() > MAX_CIRCUIT_TOKENS {
            return Err(LabError::Request(format!(
                "the prompt is {} tokens long; graphs are computed for at most {MAX_CIRCUIT_TOKENS}",
                ids.len()
            )));
        }
        Ok(ids)
    }

    /// `text`'s full graph (for `contrast`'s logit difference, if any) and its influence,
    /// kept for the next call on the same prompt.
    pub(crate) async fn attributed(
        &self,
        text: &str,
        contrast: Option<&Contrast>,
    ) -> Result<(Arc<Graph>, Arc<Influence>)> {
        if let Some(kept) = self.circuits.get(text, contrast) {
            return Ok(kept);
        }
        let (graph, influence, _) = self.attribute_now(text, contrast, None).await?;
        Ok((graph, influence))
    }

    /// Computes `text`'s graph for the page (for `contrast`, if any) with its batches
    /// spread over `lanes` beside this worker when the CPU engine runs, and keeps it, so
    /// the requests on that graph that follow find it ([`Lab::circuit`] and the rest).
    /// Returns the batches each worker carried, this one first (none listed when the GPU
    /// engine computed it); `None` when the graph was already kept.
    pub async fn attribute_spread(
        &self,
        text: &str,
        contrast: Option<&Contrast>,
        lanes: &dyn Lanes,
    ) -> Result<Option<Vec<usize>>> {
        if self.circuits.get(text, contrast).is_some() {
            return Ok(None);
        }
        let (_, _, carried) = self.attribute_now(text, contrast, Some(lanes)).await?;
        Ok(Some(carried.unwrap_or_default()))
    }

    /// Computes `text`'s graph (over `lanes` too, if any) and keeps it; with its influence
    /// and the batches each worker carried, when spread.
    async fn attribute_now(
        &self,
        text: &str,
        contrast: Option<&Contrast>,
        lanes: Option<&dyn Lanes>,
    ) -> Result<(Arc<Graph>, Arc<Influence>, Option<Vec<usize>>)> {
        let ids = self.circuit_ids(text)?;
        let replacement = self.replacement(&ids)?;
        let options = self.attribution_options(&replacement, contrast)?;
        let spread = lanes.map(|lanes| (lanes, ids.as_slice()));
        let (graph, carried) = self
            .attribution_graph_over(&replacement, &options, spread)
            .await?;
        let graph = Arc::new(graph);
        let influence = Arc::new(Influence::of(&graph));
        self.circuits.set(text, contrast, &graph, &influence);
        Ok((graph, influence, carried))
    }

    /// Applies `edit` to `text`'s graph (for `contrast`, if any): for each logit node, the
    /// change the graph predicts next to the frozen model's and the real model's (for a
    /// logit difference, the change of the difference).
    pub async fn intervene_node(
        &self,
        text: &str,
        contrast: Option<&Contrast>,
        edit: NodeEdit,
    ) -> Result<Vec<LogitChange>> {
        match edit {
            NodeEdit::Feature {
                layer,
                feature,
                value,
                ..
            } => {
                self.check_feature(layer, feature)?;
                if !value.is_finite() {
                    return Err(LabError::Request(format!(
                        "{value} is not an activation to set a feature to"
                    )));
                }
            }
            NodeEdit::Error { layer, .. } => {
                self.dictionary(layer)?;
            }
        }
        let position = edit.position();
        let ids = self.circuit_ids(text)?;
        if position >= ids.len() {
            return Err(LabError::Request(format!(
                "position {position} is past the prompt's {} tokens",
                ids.len()
            )));
        }
        let (graph, _) = self.attributed(text, contrast).await?;
        let (source, scale) = node_and_scale(&graph, edit)?;
        // One run keeps what the frozen model freezes and what the error edit reads.
        let mut keep = Hooks::none().cache(HookPoint::LnFinalScale);
        for l in 0..self.transcoders()?.len() {
            keep = keep
                .cache(HookPoint::Pattern(l))
                .cache(HookPoint::LnScale(l, Norm::Ln1))
                .cache(HookPoint::LnScale(l, Norm::Ln2))
                .cache(HookPoint::LnNormalized(l, Norm::Ln2))
                .cache(HookPoint::MlpOut(l));
        }
        let plain = PassRequest::logits(LogitsRead::Last);
        let centred = async |request: &PassRequest,
                             hooks: &Hooks|
               -> Result<(Vec<f32>, BTreeMap<HookPoint, Tensor>)> {
            let (output, kept) = self.pass_with(&ids, request, hooks).await?;
            let logits = output.last_logits()?;
            let mean = logits.iter().sum::<f32>() / logits.len() as f32;
            let logits: Vec<f32> = logits.into_iter().map(|l| l - mean).collect();
            Ok((logits, kept))
        };
        let (before, cache) = centred(&plain, &keep).await?;
        let (hooks, steering) = self.edit(edit, &cache)?;
        let edited = PassRequest { steering, ..plain };
        let (actual, _) = centred(&edited, &hooks).await?;
        let frozen_hooks = hooks.freeze_attention_and_norms(&cache)?;
        let (frozen, _) = centred(&edited, &frozen_hooks).await?;
        Ok(graph
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| match n.kind {
                NodeKind::Logit { token, versus, .. } => {
                    // The node's value in a run: the logit, or the difference.
                    let value = |logits: &[f32]| {
                        logits[token as usize] - versus.map_or(0.0, |v| logits[v as usize])
                    };
                    Some(LogitChange {
                        token,
                        text: self.token_text(token),
                        versus: versus.map(|v| (v, self.token_text(v))),
                        predicted: scale * graph.edge(source, i),
                        frozen: value(&frozen) - value(&before),
                        actual: value(&actual) - value(&before),
                    })
                }
                _ => None,
            })
            .collect())
    }

    /// What makes `edit` in a pass over the prompt whose run kept `cache`: the hooks'
    /// interventions and the steering.
    fn edit(
        &self,
        edit: NodeEdit,
        cache: &BTreeMap<HookPoint, Tensor>,
    ) -> Result<(Hooks, Vec<Steering>)> {
        match edit {
            NodeEdit::Feature {
                layer,
                position,
                feature,
                value,
            } => {
                let steer = [FeatureSteer {
                    layer,
                    feature,
                    mode: SteerMode::Clamp(value),
                }];
                Ok((Hooks::none(), self.steering(&steer, Some(&[position]))?))
            }
            NodeEdit::Error { layer, position } => Ok((
                Hooks::none().intervene(self.error_out(layer, position, cache)?),
                Vec::new(),
            )),
        }
    }

    /// The intervention that takes block `layer`'s transcoder error out at `position`,
    /// from the prompt's run that kept `cache` (its MLP's normalized input and output).
    pub(crate) fn error_out(
        &self,
        layer: usize,
        position: usize,
        cache: &BTreeMap<HookPoint, Tensor>,
    ) -> Result<Intervention> {
        // The activation at `hook`, at the edited position.
        let at = |hook: HookPoint| -> Result<Tensor> {
            let kept = cache.get(&hook).ok_or_else(|| {
                LabError::Request(format!("the prompt's run did not keep {hook}"))
            })?;
            Ok(kept.squeeze(0)?.get(position)?)
        };
        let transcoder = self.dictionary(layer)?;
        let input = at(HookPoint::LnNormalized(layer, Norm::Ln2))?.unsqueeze(0)?;
        let predicted = transcoder.decode(&transcoder.encode(&input)?)?.squeeze(0)?;
        let error = (at(HookPoint::MlpOut(layer))? - predicted)?;
        Ok(Intervention::at(
            HookPoint::MlpOut(layer),
            vec![position],
            Edit::Add(error.neg()?),
        ))
    }
}

/// A short name for a graph from its prompt: the first words, lower case, joined by
/// dashes ("graph" when it has none).
fn slug(text: &str) -> String {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(6)
        .map(str::to_lowercase)
        .collect();
    if words.is_empty() {
        "graph".to_owned()
    } else {
        words.join("-")
    }
}

/// The edited node of `graph` and how its direct effects scale under `edit`.
fn node_and_scale(graph: &Graph, edit: NodeEdit) -> Result<(usize, f32)> {
    let kind = edit.node();
    let node = graph
        .nodes
        .iter()
        .position(|n| n.kind == kind)
        .ok_or_else(|| {
            LabError::Request(format!(
                "{kind:?} is not a node of this graph (not active there, or not among the most \
             influential)"
            ))
        })?;
    // An edge is the activation times a direct effect per unit of activation.
    let scale = match edit {
        NodeEdit::Feature { value, .. } => value / graph.nodes[node].activation - 1.0,
        NodeEdit::Error { .. } => -1.0,
    };
    Ok((node, scale))
}
