//! A pack's manifest, and typed loading of each kind of file: each file's size and SHA-256
//! are checked against the manifest before it is parsed, and what it holds is checked
//! against the manifest's shapes. Bytes in, values out, so the same code serves a
//! browser that fetched the files and a program that read them from disk.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::Path;

use glassbox_dict::Dictionary;
use glassbox_model::{Gpt2, HookPoint, Model, ModelError, Norm, Tokenizer};
use sha2::{Digest, Sha256};

use crate::error::{PackError, Result, content};
use crate::{Corpus, FeatureShard, FileEntry, LabelIndex, Manifest, ModelFormat};

/// A pack, known by its manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Pack {
    manifest: Manifest,
}

/// A pack file's bytes, checked against the manifest's size and SHA-256. Only
/// [`Pack::verify`] makes one, so what loads it does not hash it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    path: String,
    bytes: Vec<u8>,
}

impl Verified {
    /// The file's path in the pack.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Its bytes.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Verified files of one pack, by path: what [`Pack::load`] reads.
#[derive(Debug, Clone, Default)]
pub struct PackFiles {
    files: HashMap<String, Verified>,
}

impl PackFiles {
    /// Adds a verified file.
    pub fn insert(&mut self, file: Verified) {
        self.files.insert(file.path.clone(), file);
    }

    /// The bytes of `path`, or an error naming it.
    pub fn get(&self, path: &str) -> Result<&[u8]> {
        self.files
            .get(path)
            .map(Verified::bytes)
            .ok_or_else(|| PackError::Missing {
                path: path.to_owned(),
            })
    }
}

/// Everything a pack holds that is loaded up front.
#[derive(Debug)]
pub struct LoadedPack {
    /// The manifest.
    pub pack: Pack,
    /// The model.
    pub model: Model,
    /// Its tokenizer.
    pub tokenizer: Tokenizer,
    /// One dictionary per block, in block order.
    pub dictionaries: Vec<Dictionary>,
    /// The corpus.
    pub corpus: Corpus,
    /// Every feature's label.
    pub labels: LabelIndex,
}

/// A pack's features: what [`Pack::feature_paths`] hold (the corpus their examples
/// point into comes apart, [`Pack::corpus_paths`]).
#[derive(Debug)]
pub struct PackFeatures {
    /// One dictionary per block, in block order.
    pub dictionaries: Vec<Dictionary>,
    /// Every feature's label.
    pub labels: LabelIndex,
}

/// Lower-case hex SHA-256 of `bytes`.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

impl Pack {
    /// Parses `manifest.json` and checks its format, version and file list.
    pub fn parse_manifest(bytes: &[u8]) -> Result<Self> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| PackError::Manifest(e.to_string()))?;
        let format = value.get("format").and_then(serde_json::Value::as_str);
        let version = value
            .get("format_version")
            .and_then(serde_json::Value::as_u64);
        let known =
            u64::from(crate::manifest::OLDEST_FORMAT_VERSION)..=u64::from(crate::FORMAT_VERSION);
        if format != Some(crate::FORMAT) || !version.is_some_and(|v| known.contains(&v)) {
            return Err(PackError::Version {
                found: format!(
                    "{} version {}",
                    format.unwrap_or("an unknown format"),
                    version.map_or_else(|| "?".to_owned(), |v| v.to_string())
                ),
            });
        }
        let manifest: Manifest =
            serde_json::from_value(value).map_err(|e| PackError::Manifest(e.to_string()))?;
        let mut seen = HashSet::new();
        for file in &manifest.files {
            let hex_ok = file.sha256.len() == 64
                && file
                    .sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !hex_ok {
                return Err(PackError::Manifest(format!(
                    "{}: `{}` is not a SHA-256",
                    file.path, file.sha256
                )));
            }
            if file.path.is_empty()
                || file.path.starts_with('/')
                || file
                    .path
                    .split('/')
                    .any(|part| part == ".." || part.is_empty())
            {
                return Err(PackError::Manifest(format!(
                    "`{}` is not a relative path inside the pack",
                    file.path
                )));
            }
            if !seen.insert(file.path.as_str()) {
                return Err(PackError::Manifest(format!(
                    "{} is listed twice",
                    file.path
                )));
            }
        }
        let pack = Self { manifest };
        for path in pack.required_paths() {
            pack.entry(&path)?;
        }
        for path in pack.lesson_paths() {
            if !Path::new(&path)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("json"))
            {
                return Err(PackError::Manifest(format!(
                    "the lesson {path} is not a .json file"
                )));
            }
            pack.entry(&path)?;
        }
        if pack.model_is_split() && pack.manifest.model.format != ModelFormat::Gguf {
            return Err(PackError::Manifest(
                "only a GGUF model is split over files".to_owned(),
            ));
        }
        if pack.manifest.dictionaries.len() != pack.manifest.model.n_layer {
            return Err(PackError::Manifest(format!(
                "{} dictionaries for a model of {} blocks",
                pack.manifest.dictionaries.len(),
                pack.manifest.model.n_layer
            )));
        }
        Ok(pack)
    }

    /// The manifest.
    #[must_use]
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Every file [`Self::load`] reads (the model, tokenizer, dictionaries, labels and
    /// corpus): [`Self::model_paths`], [`Self::feature_paths`], then
    /// [`Self::corpus_paths`]; feature shards are read as needed.
    #[must_use]
    pub fn required_paths(&self) -> Vec<String> {
        let mut paths = self.model_paths();
        paths.extend(self.feature_paths());
        paths.extend(self.corpus_paths());
        paths
    }

    /// The files the model and its tokenizer load from: all a first prediction waits for.
    #[must_use]
    pub fn model_paths(&self) -> Vec<String> {
        let mut paths = self.first_model_paths();
        paths.extend(self.later_model_paths());
        paths
    }

    /// The files of a split model after its first ([`Self::first_model_paths`]); none
    /// for a model in one file.
    #[must_use]
    pub fn later_model_paths(&self) -> Vec<String> {
        self.manifest.model.splits.clone()
    }

    /// The files of a split model's first blocks and its tokenizer (its first file,
    /// [`Self::load_first_blocks`]); for a model in one file, all of it.
    #[must_use]
    pub fn first_model_paths(&self) -> Vec<String> {
        let m = &self.manifest.model;
        let mut paths = vec![m.config.clone()];
        for path in [&m.weights, &m.tokenizer] {
            if !paths.contains(path) {
                paths.push(path.clone());
            }
        }
        paths
    }

    /// Whether the model is split over files, so that its first blocks can run before the
    /// rest arrives.
    #[must_use]
    pub fn model_is_split(&self) -> bool {
        !self.manifest.model.splits.is_empty()
    }

    /// The model of the blocks a split model's first file holds, from block 0, and its
    /// tokenizer ([`Model::from_first_gguf_files`]): what those blocks compute is what the
    /// whole model computes there; its predictions are not the model's.
    pub fn load_first_blocks(&self, files: &PackFiles) -> Result<(Model, Tokenizer)> {
        let info = &self.manifest.model;
        let first = [(info.weights.as_str(), files.get(&info.weights)?)];
        let (model, tokenizer) =
            Model::from_first_gguf_files(&first).map_err(|e| content(&info.weights, e))?;
        let d = model.dims();
        if (d.d_model, d.vocab_size, d.n_positions)
            != (info.n_embd, info.vocab_size, info.n_positions)
            || d.n_layer > info.n_layer
        {
            return Err(content(
                &info.weights,
                "the model's shape differs from the manifest's",
            ));
        }
        Ok((model, tokenizer))
    }

    /// The pack's lesson files, each with its name (the file's stem), e.g.
    /// `("ioi", "lessons/ioi.json")`: small, fetched with the model.
    #[must_use]
    pub fn lesson_paths(&self) -> Vec<String> {
        self.manifest.lessons.clone()
    }

    /// The files the features load from (labels, each block's dictionary), which a page
    /// may fetch after the model: all that showing a prompt's features waits for.
    #[must_use]
    pub fn feature_paths(&self) -> Vec<String> {
        let mut paths = vec![self.labels_path().to_owned()];
        paths.extend(self.dictionary_paths(0..self.manifest.dictionaries.len()));
        paths
    }

    /// The label index's file ([`Self::load_labels`]).
    #[must_use]
    pub fn labels_path(&self) -> &str {
        &self.manifest.features.labels
    }

    /// The files of the dictionaries at `blocks` (positions in the manifest's list, which
    /// is in block order; [`Self::load_dictionaries`]): a page may fetch them block by
    /// block, showing the first block's features while the rest arrive.
    #[must_use]
    pub fn dictionary_paths(&self, blocks: Range<usize>) -> Vec<String> {
        let all = &self.manifest.dictionaries;
        all.get(blocks.start.min(all.len())..blocks.end.min(all.len()))
            .unwrap_or_default()
            .iter()
            .flat_map(|d| [d.cfg.clone(), d.weights.clone()])
            .collect()
    }

    /// The files the corpus loads from (its index and tokens, [`Self::load_corpus`]): what
    /// feature examples point into, which a page may fetch when a view first shows one.
    #[must_use]
    pub fn corpus_paths(&self) -> Vec<String> {
        let c = &self.manifest.corpus;
        vec![c.index.clone(), c.tokens.clone()]
    }

    /// The manifest's entry for `path`.
    pub fn entry(&self, path: &str) -> Result<&FileEntry> {
        self.manifest
            .files
            .iter()
            .find(|f| f.path == path)
            .ok_or_else(|| PackError::Missing {
                path: path.to_owned(),
            })
    }

    /// Checks `bytes` against the manifest's size and hash for `path`.
    pub fn verify(&self, path: &str, bytes: Vec<u8>) -> Result<Verified> {
        let entry = self.entry(path)?;
        if entry.bytes != bytes.len() as u64 {
            return Err(PackError::Size {
                path: path.to_owned(),
                expected: entry.bytes,
                actual: bytes.len() as u64,
            });
        }
        if sha256_hex(&bytes) != entry.sha256 {
            return Err(PackError::Hash {
                path: path.to_owned(),
            });
        }
        Ok(Verified {
            path: path.to_owned(),
            bytes,
        })
    }

    /// Loads everything the app needs up front (model, tokenizer, dictionaries, corpus,
    /// labels) from `files`, checking each against the manifest's shapes: the one way a
    /// pack is loaded, from disk and in the browser alike ([`Self::load_model`], then
    /// [`Self::load_features`]).
    pub fn load(&self, files: &PackFiles) -> Result<LoadedPack> {
        let (model, tokenizer) = self.load_model(files)?;
        let features = self.load_features(files, &model)?;
        Ok(LoadedPack {
            pack: self.clone(),
            model,
            tokenizer,
            dictionaries: features.dictionaries,
            corpus: self.load_corpus(files)?,
            labels: features.labels,
        })
    }

    /// What [`Self::feature_paths`] hold: each block's dictionary (read as `model`'s pack
    /// version says) and the labels.
    pub fn load_features(&self, files: &PackFiles, model: &Model) -> Result<PackFeatures> {
        Ok(PackFeatures {
            dictionaries: self.load_dictionaries(
                files,
                model,
                0..self.manifest.dictionaries.len(),
            )?,
            labels: self.load_labels(files)?,
        })
    }

    /// What [`Self::dictionary_paths`] hold for `blocks`: those blocks' dictionaries, in
    /// block order, each read as `model`'s pack version says (a version-1 pack's
    /// transcoders read `ln2.hook_normalized` after the gain, and are folded to read it
    /// before).
    pub fn load_dictionaries(
        &self,
        files: &PackFiles,
        model: &Model,
        blocks: Range<usize>,
    ) -> Result<Vec<Dictionary>> {
        let m = &self.manifest;
        let infos = m
            .dictionaries
            .get(blocks.clone())
            .ok_or_else(|| PackError::Missing {
                path: format!("the dictionaries of blocks {blocks:?}"),
            })?;
        let mut dictionaries = infos
            .iter()
            .map(|d| self.load_dictionary(d.layer, files))
            .collect::<Result<Vec<_>>>()?;
        if m.format_version < 2 {
            let gpt2 = model
                .as_gpt2()
                .ok_or_else(|| content(&m.model.config, "a version-1 pack holds a GPT-2"))?;
            for (info, dictionary) in infos.iter().zip(&mut dictionaries) {
                *dictionary = read_before_the_gain(gpt2, dictionary)
                    .map_err(|e| content(&info.weights, e))?;
            }
        }
        Ok(dictionaries)
    }

    /// The model and its tokenizer: from `config.json`, `model.safetensors` and
    /// `tokenizer.json`, or from one GGUF file ([`Self::model_paths`]); its shape checked
    /// against the manifest's.
    pub fn load_model(&self, files: &PackFiles) -> Result<(Model, Tokenizer)> {
        let info = &self.manifest.model;
        let (model, tokenizer) = match info.format {
            ModelFormat::Safetensors => {
                let (config, weights) = (files.get(&info.config)?, files.get(&info.weights)?);
                let config = std::str::from_utf8(config).map_err(|e| content(&info.config, e))?;
                let model = Model::from_hf(config, &[(info.weights.as_str(), weights)]).map_err(
                    |e| match e {
                        ModelError::Config(_) => content(&info.config, e),
                        _ => content(&info.weights, e),
                    },
                )?;
                let tokenizer = Tokenizer::from_json(files.get(&info.tokenizer)?)
                    .map_err(|e| content(&info.tokenizer, e))?;
                (model, tokenizer)
            }
            ModelFormat::Gguf => {
                let mut parts = Vec::with_capacity(1 + info.splits.len());
                for path in std::iter::once(&info.weights).chain(&info.splits) {
                    parts.push((path.as_str(), files.get(path)?));
                }
                Model::from_gguf_files(&parts).map_err(|e| content(&info.weights, e))?
            }
        };
        let d = model.dims();
        if (d.n_layer, d.d_model, d.vocab_size, d.n_positions)
            != (info.n_layer, info.n_embd, info.vocab_size, info.n_positions)
        {
            return Err(content(
                &info.config,
                "the model's shape differs from the manifest's",
            ));
        }
        if tokenizer.vocab_size() > info.vocab_size
            || (info.format == ModelFormat::Safetensors
                && tokenizer.vocab_size() != info.vocab_size)
        {
            return Err(content(
                &info.tokenizer,
                format!(
                    "{} tokens, but the model has {}",
                    tokenizer.vocab_size(),
                    info.vocab_size
                ),
            ));
        }
        Ok((model, tokenizer))
    }

    /// Block `layer`'s dictionary from its `cfg.json` and weights (as the files have it,
    /// whatever the pack's version).
    fn load_dictionary(&self, layer: usize, files: &PackFiles) -> Result<Dictionary> {
        let info = self
            .manifest
            .dictionaries
            .iter()
            .find(|d| d.layer == layer)
            .ok_or_else(|| PackError::Missing {
                path: format!("the dictionary of block {layer}"),
            })?;
        let (cfg, weights) = (files.get(&info.cfg)?, files.get(&info.weights)?);
        let cfg = std::str::from_utf8(cfg).map_err(|e| content(&info.cfg, e))?;
        let dictionary = Dictionary::load(cfg, weights).map_err(|e| content(&info.weights, e))?;
        let c = &dictionary.config;
        if c.d_sae != info.d_sae
            || c.d_in != self.manifest.model.n_embd
            || c.metadata.hook_name != info.hook_name
            || c.metadata.hook_name_out != info.hook_name_out
        {
            return Err(content(
                &info.cfg,
                format!(
                    "reads {} with {} features, but the manifest says {} with {}",
                    c.metadata.hook_name, c.d_sae, info.hook_name, info.d_sae
                ),
            ));
        }
        Ok(dictionary)
    }

    /// What [`Self::corpus_paths`] hold: the corpus, its documents checked against its
    /// tokens and its tokens against the vocabulary.
    pub fn load_corpus(&self, files: &PackFiles) -> Result<Corpus> {
        let info = &self.manifest.corpus;
        Corpus::parse(
            &info.index,
            files.get(&info.index)?,
            &info.tokens,
            files.get(&info.tokens)?,
            info.window,
            self.manifest.model.vocab_size,
        )
    }

    /// The label index ([`Self::labels_path`]), checked to have one entry per feature of
    /// every dictionary.
    pub fn load_labels(&self, files: &PackFiles) -> Result<LabelIndex> {
        let path = &self.manifest.features.labels;
        let bytes = files.get(path)?;
        let labels: LabelIndex = serde_json::from_slice(bytes).map_err(|e| content(path, e))?;
        let expected: Vec<usize> = self.manifest.dictionaries.iter().map(|d| d.d_sae).collect();
        let found: Vec<usize> = labels.layers.iter().map(Vec::len).collect();
        if expected != found {
            return Err(content(
                path,
                format!("labels per block {found:?}, but the dictionaries have {expected:?}"),
            ));
        }
        Ok(labels)
    }

    /// The path of the shard holding `feature` of `layer`.
    pub fn shard_path(&self, layer: usize, feature: usize) -> Result<String> {
        let d_sae = self
            .manifest
            .dictionaries
            .iter()
            .find(|d| d.layer == layer)
            .map(|d| d.d_sae)
            .ok_or_else(|| PackError::Missing {
                path: format!("the dictionary of block {layer}"),
            })?;
        if feature >= d_sae {
            return Err(PackError::Missing {
                path: format!("feature {feature} of block {layer} (it has {d_sae})"),
            });
        }
        Ok(self.manifest.features.locate(layer, feature).0)
    }

    /// The shard holding `feature` of `layer`, from its verified file.
    pub fn load_shard(
        &self,
        layer: usize,
        feature: usize,
        file: &Verified,
    ) -> Result<FeatureShard> {
        let path = self.shard_path(layer, feature)?;
        if file.path != path {
            return Err(content(
                &path,
                format!("feature {feature} of block {layer} is not in {}", file.path),
            ));
        }
        let shard: FeatureShard =
            serde_json::from_slice(&file.bytes).map_err(|e| content(&path, e))?;
        let size = self.manifest.features.shard_size.max(1);
        let first = feature / size * size;
        let in_order = shard
            .features
            .iter()
            .enumerate()
            .all(|(i, f)| f.index == first + i);
        if shard.layer != layer || shard.first != first || !in_order || shard.features.is_empty() {
            return Err(content(
                &path,
                format!("expected features from {first} of block {layer}"),
            ));
        }
        Ok(shard)
    }
}

/// A version-1 pack's dictionary reading a LayerNorm's `hook_normalized` read its output
/// (after the gain and bias); the same dictionary reading TransformerLens's
/// `hook_normalized` (before them).
pub fn read_before_the_gain(
    model: &Gpt2,
    dictionary: &Dictionary,
) -> std::result::Result<Dictionary, String> {
    let hook: HookPoint = dictionary
        .config
        .metadata
        .hook_name
        .parse()
        .map_err(|e: glassbox_model::ModelError| e.to_string())?;
    let weights = model.weights();
    let block = |l: usize| {
        weights.blocks.get(l).ok_or_else(|| {
            format!(
                "reads {hook}, but the model has {} blocks",
                weights.blocks.len()
            )
        })
    };
    let ln = match hook {
        HookPoint::LnNormalized(l, Norm::Ln1) => &block(l)?.ln_1,
        HookPoint::LnNormalized(l, Norm::Ln2) => &block(l)?.ln_2,
        HookPoint::LnFinalNormalized => &weights.ln_final,
        _ => return Ok(dictionary.clone()),
    };
    dictionary
        .fold_input_affine(&ln.weight, &ln.bias)
        .map_err(|e| e.to_string())
}
