//! The loaded pack (or a model opened on its own), ready to answer requests.

use std::sync::{Arc, OnceLock};

use glassbox_dict::Dictionary;
use glassbox_engine::{CpuEngine, Fallback, transcoder_hooks};
use glassbox_gpu::GpuModel;
use glassbox_model::{HookPoint, Model, Tokenizer};
use glassbox_pack::{Corpus, LabelIndex, LoadedPack};

use crate::circuit::CircuitMemo;
use crate::error::{LabError, Result};
use crate::live::LiveSample;
use crate::rows::RowsMemo;

/// A model, its tokenizer, its dictionaries, the corpus and the feature labels, and the
/// engine that runs them. A pack's dictionaries are one transcoder per block, in block
/// order, with precomputed feature data; dictionaries a person adds (SAELens folders from
/// their disk) follow them, each at the hooks its `cfg.json` names, their features
/// measured live over a sample of text ([`Lab::measure_sample`]). A model opened on its
/// own has no pack dictionaries, no corpus and no labels: predictions, attention and the
/// logit lens work; what needs features says so. A pack's corpus may come after its
/// features ([`Lab::add_corpus`]): only feature examples need it.
#[derive(Debug)]
pub struct Lab {
    /// The pack's name (or the model file's).
    pub name: String,
    /// Its tokenizer.
    pub tokenizer: Tokenizer,
    /// The dictionaries, numbered as requests name them: the pack's transcoders (block
    /// `l`'s is number `l`), then those added.
    pub dictionaries: Vec<Arc<Dictionary>>,
    /// Where each dictionary reads and writes.
    pub(crate) sites: Vec<(HookPoint, HookPoint)>,
    /// How many of the dictionaries are the pack's per-block transcoders.
    pub(crate) pack_transcoders: usize,
    /// The added dictionaries' inputs over the sample text, once measured.
    pub(crate) sample: OnceLock<LiveSample>,
    /// The corpus that feature examples point into, once loaded (shared by the labs made
    /// from this one).
    pub(crate) corpus: OnceLock<Arc<Corpus>>,
    /// Every feature's label.
    pub labels: LabelIndex,
    /// The GPU engine while it runs, the CPU engine behind it.
    pub(crate) engines: Fallback<GpuModel, CpuEngine>,
    /// The last prompt's attribution graph.
    pub(crate) circuits: CircuitMemo,
    /// The last prompt traced for another worker's graph.
    pub(crate) rows: RowsMemo,
}

impl Lab {
    /// A lab on the CPU engine, block `l`'s dictionary attached as its transcoder;
    /// [`Lab::start_gpu`] moves it to a GPU.
    pub fn new(
        name: String,
        model: impl Into<Model>,
        tokenizer: Tokenizer,
        dictionaries: Vec<Arc<Dictionary>>,
        corpus: Option<Corpus>,
        labels: LabelIndex,
    ) -> Result<Self> {
        let mut cpu = CpuEngine::new(model);
        let sites: Vec<_> = (0..dictionaries.len()).map(transcoder_hooks).collect();
        for (dictionary, &(input, output)) in dictionaries.iter().zip(&sites) {
            cpu.attach_now(dictionary, input, output)?;
        }
        Ok(Self {
            name,
            tokenizer,
            pack_transcoders: dictionaries.len(),
            dictionaries,
            sites,
            sample: OnceLock::new(),
            corpus: corpus.map_or_else(OnceLock::new, |c| OnceLock::from(Arc::new(c))),
            labels,
            engines: Fallback::new(cpu, ("GPU", "CPU")),
            circuits: CircuitMemo::default(),
            rows: RowsMemo::default(),
        })
    }

    /// A lab on a loaded pack (see [`Lab::new`]).
    pub fn from_pack(loaded: LoadedPack) -> Result<Self> {
        Self::new(
            loaded.pack.manifest().name.clone(),
            loaded.model,
            loaded.tokenizer,
            loaded.dictionaries.into_iter().map(Arc::new).collect(),
            Some(loaded.corpus),
            loaded.labels,
        )
    }

    /// A lab on a model alone (e.g. a GGUF file a person opened): no dictionaries, no
    /// corpus, no labels.
    pub fn from_model(name: String, model: impl Into<Model>, tokenizer: Tokenizer) -> Result<Self> {
        let labels = LabelIndex {
            layers: Vec::new(),
            tag_names: Vec::new(),
        };
        Self::new(name, model, tokenizer, Vec::new(), None, labels)
    }

    /// The corpus feature examples point into, once loaded.
    #[must_use]
    pub fn corpus(&self) -> Option<&Corpus> {
        self.corpus.get().map(AsRef::as_ref)
    }

    /// The corpus, or an error saying it is not loaded (for what cannot answer without).
    pub(crate) fn loaded_corpus(&self) -> Result<&Corpus> {
        self.corpus().ok_or_else(|| {
            LabError::Request("the corpus the examples come from is not loaded".to_owned())
        })
    }

    /// Adds the corpus that arrived after the features (the page fetches it when a view
    /// first shows an example). A lab takes one corpus: a second is refused.
    pub fn add_corpus(&self, corpus: Corpus) -> Result<()> {
        self.corpus
            .set(Arc::new(corpus))
            .map_err(|_| LabError::Request("this lab has its corpus already".to_owned()))
    }

    /// The model (on the CPU: the reference the views' post-processing uses).
    #[must_use]
    pub fn model(&self) -> &Model {
        self.engines.secondary().model()
    }

    /// A lab on the same model, tokenizer, corpus and labels with `added` dictionaries
    /// after these, each attached where its `cfg.json` says it reads (`hook_name`) and
    /// writes (`hook_name_out`, or the same hook for a sparse autoencoder). `added` holds
    /// each dictionary's name for errors (e.g. its folder).
    pub fn with_dictionaries(&self, added: Vec<(String, Arc<Dictionary>)>) -> Result<Self> {
        let mut cpu = CpuEngine::new(self.model().clone());
        let mut dictionaries = self.dictionaries.clone();
        let mut sites = self.sites.clone();
        for (dictionary, &(input, output)) in dictionaries.iter().zip(&sites) {
            cpu.attach_now(dictionary, input, output)?;
        }
        let d_model = self.model().dims().d_model;
        for (name, dictionary) in added {
            let (input, output) = hooks_of(&name, &dictionary)?;
            for (hook, width, does) in [
                (input, dictionary.config.d_in, "reads"),
                (output, dictionary.config.d_out(), "writes"),
            ] {
                if is_model_wide(hook) && width != d_model {
                    return Err(LabError::Request(format!(
                        "{name}: it {does} {width} values per token at {hook}, which is \
                         {d_model} wide in this model"
                    )));
                }
            }
            cpu.attach_now(&dictionary, input, output)
                .map_err(|e| LabError::Request(format!("{name}: {e}")))?;
            dictionaries.push(dictionary);
            sites.push((input, output));
        }
        Ok(Self {
            name: self.name.clone(),
            tokenizer: self.tokenizer.clone(),
            dictionaries,
            sites,
            pack_transcoders: self.pack_transcoders,
            sample: OnceLock::new(),
            corpus: self.corpus.clone(),
            labels: self.labels.clone(),
            engines: Fallback::new(cpu, ("GPU", "CPU")),
            circuits: CircuitMemo::default(),
            rows: RowsMemo::default(),
        })
    }

    /// Dictionary `layer` (for a pack, block `layer`'s transcoder), or an error naming
    /// the dictionaries there are.
    pub fn dictionary(&self, layer: usize) -> Result<&Arc<Dictionary>> {
        if self.dictionaries.is_empty() {
            return Err(LabError::Request(
                "this model was opened without feature dictionaries: features, search, \
                 steering and circuits need a pack that has them, or SAELens dictionaries \
                 opened beside the model"
                    .to_owned(),
            ));
        }
        self.dictionaries.get(layer).ok_or_else(|| {
            let count = self.dictionaries.len();
            LabError::Request(if count == self.pack_transcoders {
                format!("there is no block {layer}: the model has {count}")
            } else {
                format!("there is no dictionary {layer}: {count} are attached")
            })
        })
    }

    /// Where dictionary `layer` reads and writes.
    pub fn site(&self, layer: usize) -> Result<(HookPoint, HookPoint)> {
        self.dictionary(layer)?;
        Ok(self.sites[layer])
    }

    /// Each dictionary's place in words: `blocks.3.hook_resid_post` for a sparse
    /// autoencoder, `blocks.0.ln2.hook_normalized → blocks.0.hook_mlp_out` for a transcoder.
    #[must_use]
    pub fn dictionary_names(&self) -> Vec<String> {
        self.sites
            .iter()
            .map(|(input, output)| site_name(&input.to_string(), &output.to_string()))
            .collect()
    }

    /// Whether dictionary `layer` has precomputed feature data (a pack's transcoder).
    #[must_use]
    pub fn has_feature_data(&self, layer: usize) -> bool {
        layer < self.pack_transcoders
    }

    /// The pack's transcoders, one per block, which attribution graphs replace the MLPs
    /// with; an error when the lab lacks them.
    pub fn transcoders(&self) -> Result<&[Arc<Dictionary>]> {
        let n_layer = self.model().dims().n_layer;
        if self.pack_transcoders != n_layer {
            return Err(LabError::Request(format!(
                "attribution graphs need a transcoder for each of the model's {n_layer} blocks \
                 (a pack that has them); this model has {}",
                self.pack_transcoders
            )));
        }
        Ok(&self.dictionaries[..n_layer])
    }

    /// Checks that feature `feature` of block `layer` exists.
    pub fn check_feature(&self, layer: usize, feature: usize) -> Result<()> {
        let d_sae = self.dictionary(layer)?.config.d_sae;
        if feature >= d_sae {
            return Err(LabError::Request(format!(
                "block {layer} has features 0 to {}, not {feature}",
                d_sae - 1
            )));
        }
        Ok(())
    }

    /// A feature's label.
    #[must_use]
    pub fn label(&self, layer: usize, feature: usize) -> &str {
        self.labels
            .layers
            .get(layer)
            .and_then(|l| l.get(feature))
            .map_or("", |entry| entry.0.as_str())
    }

    /// How a token id reads (e.g. " of"); the id in brackets if it cannot be decoded.
    #[must_use]
    pub fn token_text(&self, id: u32) -> String {
        self.tokenizer
            .token_text(id)
            .unwrap_or_else(|_| format!("[{id}]"))
    }

    /// The most tokens a prompt may have: the model's context.
    #[must_use]
    pub fn max_tokens(&self) -> usize {
        self.model().dims().n_positions
    }
}

/// Where a dictionary's `cfg.json` says it reads and writes.
fn hooks_of(name: &str, dictionary: &Dictionary) -> Result<(HookPoint, HookPoint)> {
    let metadata = &dictionary.config.metadata;
    let parse = |hook: &str| -> Result<HookPoint> {
        if hook.is_empty() {
            return Err(LabError::Request(format!(
                "{name}: cfg.json names no hook_name (the TransformerLens hook it reads)"
            )));
        }
        hook.parse()
            .map_err(|e| LabError::Request(format!("{name}: hook_name `{hook}`: {e}")))
    };
    let input = parse(&metadata.hook_name)?;
    let output = match metadata.hook_name_out.as_deref() {
        Some(out) => parse(out)?,
        None => input,
    };
    Ok((input, output))
}

/// Whether `hook` carries `d_model` values per position (the residual stream, what is
/// added to it, a norm's output).
fn is_model_wide(hook: HookPoint) -> bool {
    matches!(
        hook,
        HookPoint::ResidPre(_)
            | HookPoint::ResidMid(_)
            | HookPoint::ResidPost(_)
            | HookPoint::AttnOut(_)
            | HookPoint::MlpOut(_)
            | HookPoint::LnNormalized(..)
    )
}

/// How a dictionary's site reads: its hook, or `input → output` for a transcoder (the
/// same whether named from a lab's hooks or a pack manifest's).
#[must_use]
pub fn site_name(input: &str, output: &str) -> String {
    if input == output {
        input.to_owned()
    } else {
        format!("{input} → {output}")
    }
}
