//! The loaded pack (or a model opened on its own), ready to answer requests.

use std::sync::Arc;

use glassbox_dict::Dictionary;
use glassbox_engine::{CpuEngine, Fallback, transcoder_hooks};
use glassbox_gpu::GpuModel;
use glassbox_model::{Gpt2, Model, Tokenizer};
use glassbox_pack::{Corpus, CorpusIndex, LabelIndex, LoadedPack};

use crate::circuit::CircuitMemo;
use crate::error::{LabError, Result};

/// A model, its tokenizer, one dictionary per block, the corpus and the feature labels,
/// and the engine that runs them. A model opened on its own (from a file) has no
/// dictionaries, an empty corpus and no labels: predictions, attention and the logit lens
/// work; what needs features says so.
#[derive(Debug)]
pub struct Lab {
    /// The pack's name (or the model file's).
    pub name: String,
    /// Its tokenizer.
    pub tokenizer: Tokenizer,
    /// One dictionary per block, in block order.
    pub dictionaries: Vec<Arc<Dictionary>>,
    /// The corpus that feature examples point into.
    pub corpus: Corpus,
    /// Every feature's label.
    pub labels: LabelIndex,
    /// The GPU engine while it runs, the CPU engine behind it.
    pub(crate) engines: Fallback<GpuModel, CpuEngine>,
    /// The last prompt's attribution graph.
    pub(crate) circuits: CircuitMemo,
}

impl Lab {
    /// A lab on the CPU engine, block `l`'s dictionary attached as its transcoder;
    /// [`Lab::start_gpu`] moves it to a GPU.
    pub fn new(
        name: String,
        model: impl Into<Model>,
        tokenizer: Tokenizer,
        dictionaries: Vec<Arc<Dictionary>>,
        corpus: Corpus,
        labels: LabelIndex,
    ) -> Result<Self> {
        let mut cpu = CpuEngine::new(model);
        for (layer, dictionary) in dictionaries.iter().enumerate() {
            let (input, output) = transcoder_hooks(layer);
            cpu.attach_now(dictionary, input, output)?;
        }
        Ok(Self {
            name,
            tokenizer,
            dictionaries,
            corpus,
            labels,
            engines: Fallback::new(cpu, ("GPU", "CPU")),
            circuits: CircuitMemo::default(),
        })
    }

    /// A lab on a loaded pack (see [`Lab::new`]).
    pub fn from_pack(loaded: LoadedPack) -> Result<Self> {
        Self::new(
            loaded.pack.manifest().name.clone(),
            loaded.model,
            loaded.tokenizer,
            loaded.dictionaries.into_iter().map(Arc::new).collect(),
            loaded.corpus,
            loaded.labels,
        )
    }

    /// A lab on a model alone (e.g. a GGUF file a person opened): no dictionaries, no
    /// corpus, no labels.
    pub fn from_model(name: String, model: impl Into<Model>, tokenizer: Tokenizer) -> Result<Self> {
        let corpus = Corpus {
            index: CorpusIndex {
                genres: Vec::new(),
                documents: Vec::new(),
            },
            tokens: Vec::new(),
            window: 0,
        };
        let labels = LabelIndex {
            layers: Vec::new(),
            tag_names: Vec::new(),
        };
        Self::new(name, model, tokenizer, Vec::new(), corpus, labels)
    }

    /// The model (on the CPU: the reference the views' post-processing uses).
    #[must_use]
    pub fn model(&self) -> &Model {
        self.engines.secondary().model()
    }

    /// The model as a GPT-2, for what only that family has yet (attribution graphs), or
    /// an error naming the family.
    pub fn gpt2(&self) -> Result<&Gpt2> {
        let model = self.model();
        model.as_gpt2().ok_or_else(|| {
            LabError::Request(format!(
                "this is not yet available for {} models (attribution graphs run GPT-2 models so far)",
                model.family()
            ))
        })
    }

    /// Block `layer`'s dictionary, or an error naming the blocks there are.
    pub fn dictionary(&self, layer: usize) -> Result<&Arc<Dictionary>> {
        if self.dictionaries.is_empty() {
            return Err(LabError::Request(
                "this model was opened without feature dictionaries: features, search, \
                 steering and circuits need a pack that has them"
                    .to_owned(),
            ));
        }
        self.dictionaries.get(layer).ok_or_else(|| {
            LabError::Request(format!(
                "there is no block {layer}: the model has {}",
                self.dictionaries.len()
            ))
        })
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
