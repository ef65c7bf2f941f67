//! `glassbox pack build`: the stages in order, each writing its output into a work folder
//! and skipped when that output is already there, so an interrupted build resumes.
//!
//! Stages: corpus, tokenizer, model (with checkpoints), transcoders (both trained in f16
//! and kept in `work/trained`), the two written with 8-bit matrices as the pack ships them
//! and what that costs, the shipped model's and transcoders' reports, the tokenized corpus,
//! feature data (of the shipped model and transcoders), and the manifest. Everything is
//! staged in `work/pack` and copied to the pack folder at the end.

use std::path::{Path, PathBuf};

use glassbox_engine::{CpuEngine, generate, now};
use glassbox_model::sampling::Sampling;
use glassbox_model::{Gpt2, Gpt2Config, Hooks, Model, Tokenizer};
use glassbox_pack::{BuildInfo, ModelInfo};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::assemble::{self, ManifestParts, paths};
use crate::bpe;
use crate::corpus::{self, Document, Split};
use crate::dictionaries::{self, DictionaryReport, windows};
use crate::error::{BuildError, Result, io};
use crate::features::{self, RecordContext, TaggedCorpus, tag_corpus};
use crate::report::{HeldOutLoss, bigram_nats, unigram_nats};
use crate::ship;
use crate::train::{TrainConfig, evaluate, train_until};
use crate::transcoder::TranscoderConfig;

/// Where and how to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The pack folder to write (e.g. `www/packs/brown`).
    pub out: PathBuf,
    /// Scratch space: the corpus download, checkpoints, intermediate files.
    pub work: PathBuf,
    /// The seed of everything random.
    pub seed: u64,
    /// Model training steps.
    pub steps: usize,
    /// Stop model training after this step (to be resumed by the next run).
    pub stop_after: Option<usize>,
}

/// The default model: 4 blocks, width 256, 4 heads, context 128, the BPE vocabulary.
#[must_use]
pub fn default_model() -> Gpt2Config {
    Gpt2Config {
        n_layer: 4,
        n_head: 4,
        n_embd: 256,
        n_positions: 128,
        vocab_size: bpe::VOCAB_SIZE,
        layer_norm_epsilon: 1e-5,
        n_inner: None,
        activation_function: glassbox_model::Activation::GeluTanh,
    }
}

/// The training settings for `options`.
#[must_use]
pub fn train_config(options: &BuildOptions) -> TrainConfig {
    TrainConfig {
        model: default_model(),
        batch_size: 32,
        seq_len: 128,
        steps: options.steps,
        warmup: (options.steps / 20).max(1),
        lr: 1e-3,
        min_lr_ratio: 0.1,
        seed: options.seed,
        checkpoint_every: 25,
    }
}

/// What the model stage measured.
#[derive(Debug, Serialize, Deserialize)]
pub struct ModelReport {
    /// Held-out losses: the model, then the baselines.
    pub held_out: Vec<HeldOutLoss>,
    /// The add-k bigram baseline's k.
    pub bigram_k: f64,
    /// Held-out tokens measured.
    pub eval_tokens: usize,
    /// Greedy and sampled continuations of a few prompts.
    pub samples: Vec<(String, String)>,
}

/// What a whole build measured and wrote.
#[derive(Debug)]
pub struct BuildSummary {
    /// The model stage.
    pub model: ModelReport,
    /// The dictionaries stage.
    pub dictionaries: DictionaryReport,
    /// What shipping in 8 bits costs.
    pub quantization: ship::QuantizationReport,
    /// The pack's manifest.
    pub manifest: glassbox_pack::Manifest,
}

/// The work folder's subfolder where the model and transcoders are trained and kept in
/// f16 (laid out as a pack's `model/` and `transcoders/`).
pub const TRAINED: &str = "trained";

/// Transcoder features per block.
pub const D_SAE: usize = 2048;

/// Runs every stage not yet done, then writes the pack to `options.out`.
///
/// Everything is staged in `work/pack` first; `out` is replaced only at the end.
pub fn build(options: &BuildOptions) -> Result<BuildSummary> {
    std::fs::create_dir_all(&options.work).map_err(io(&options.work))?;
    let staged = options.work.join("pack");
    let documents = stage_corpus(&options.work)?;
    let tokenizer_json = stage_tokenizer(&options.work, &documents)?;
    let tokenizer = Tokenizer::from_json(tokenizer_json.as_bytes())?;
    let (train_tokens, eval_tokens, eval_bytes) = tokenize(&tokenizer, &documents)?;
    println!(
        "tokenized: {} training tokens, {} held-out tokens ({:.2} bytes per token)",
        train_tokens.len(),
        eval_tokens.len(),
        eval_bytes as f64 / eval_tokens.len() as f64
    );

    let config = train_config(options);
    // Trained in f16 in the work folder; the pack ships them with 8-bit matrices.
    let trained_dir = options.work.join(TRAINED);
    stage_model(
        options,
        &config,
        &trained_dir,
        &train_tokens,
        &tokenizer_json,
    )?;
    let trained = read_model(&trained_dir)?;

    let window = config.seq_len;
    let transcoder_configs: Vec<TranscoderConfig> = (0..trained.config().n_layer)
        .map(|l| TranscoderConfig::for_layer(l, D_SAE, options.seed))
        .collect();
    let train_windows = windows(&train_tokens, window, TRANSCODER_WINDOWS);
    let folded = dictionaries::upgrade_staged(
        &trained,
        &trained_dir.join("transcoders"),
        &options.work.join(dictionaries::FORMAT_2_MARKER),
    )?;
    if folded > 0 {
        println!("{folded} transcoders staged before pack format 2 now read before ln_2's gain");
    }
    let progress = bar("dictionaries", transcoder_configs.len() as u64);
    let trained_dictionaries = dictionaries::stage(
        &trained,
        &train_windows,
        &transcoder_configs,
        &trained_dir.join("transcoders"),
        &progress,
    )?;
    progress.finish();

    // From here on, everything is measured on what ships.
    let model = ship::model(&trained, &tokenizer_json, &staged)?;
    let dictionaries = ship::transcoders(&trained_dictionaries, &staged)?;
    let quantization: ship::QuantizationReport =
        cached_json(&staged.join(ship::QUANTIZATION_REPORT), || {
            println!("measuring what 8 bits cost");
            ship::measure(
                (&trained, &trained_dictionaries),
                (&model, &dictionaries),
                &eval_tokens,
                window,
            )
        })?;
    let model_report: ModelReport = cached_json(&staged.join(paths::MODEL_REPORT), || {
        println!("measuring the model on held-out text");
        report(
            &model,
            &tokenizer,
            &train_tokens,
            &eval_tokens,
            eval_bytes,
            config.seq_len,
        )
    })?;
    let dictionary_report = cached_json(&staged.join(paths::DICTIONARY_REPORT), || {
        println!("measuring the transcoders on held-out text");
        dictionaries::measure(&model, &dictionaries, &eval_tokens, &train_windows)
    })?;

    let end = tokenizer
        .token_id(bpe::END_OF_TEXT)
        .ok_or_else(|| BuildError::Tokenizer("no <|endoftext|> token".to_owned()))?;
    let corpus = tag_corpus(&tokenizer, &documents, end)?;
    assemble::write_corpus(&staged, &corpus)?;
    if !staged.join(paths::LABELS).exists() {
        stage_features(
            &staged,
            &model,
            &tokenizer,
            &dictionaries,
            &corpus,
            window,
            options.seed,
        )?;
    }

    let manifest = assemble::write_manifest(
        &staged,
        manifest_parts(options, &model, &dictionaries, window),
    )?;
    assemble::publish(&staged, &options.out)?;
    Ok(BuildSummary {
        model: model_report,
        dictionaries: dictionary_report,
        quantization,
        manifest,
    })
}

/// Trains the model (resuming from a checkpoint) unless `staged` has it.
fn stage_model(
    options: &BuildOptions,
    config: &TrainConfig,
    staged: &Path,
    train_tokens: &[u32],
    tokenizer_json: &str,
) -> Result<()> {
    if staged.join(paths::MODEL_WEIGHTS).exists() {
        return Ok(());
    }
    let progress = bar("model", config.steps as u64);
    let stop_at = options.stop_after.unwrap_or(config.steps);
    let trained = train_until(
        config,
        train_tokens,
        &options.work.join("model"),
        &progress,
        stop_at,
    )?;
    progress.finish();
    if stop_at < config.steps {
        return Err(BuildError::Checkpoint(format!(
            "stopped after step {stop_at} of {} as asked; run again to resume",
            config.steps
        )));
    }
    write_model(staged, &trained, tokenizer_json)
}

/// The manifest's sections besides the file list.
fn manifest_parts(
    options: &BuildOptions,
    model: &Gpt2,
    dictionaries: &[glassbox_dict::Dictionary],
    window: usize,
) -> ManifestParts {
    let c = model.config();
    ManifestParts {
        name: "brown".to_owned(),
        description: "A small GPT-2 trained on the Brown Corpus, a TopK transcoder for each \
                      of its MLPs, and every feature measured over the corpus."
            .to_owned(),
        features_method: features::method(window, 0, "LayerNorm"),
        model: ModelInfo {
            format: glassbox_pack::ModelFormat::Gguf,
            config: ship::MODEL_GGUF[0].to_owned(),
            weights: ship::MODEL_GGUF[0].to_owned(),
            splits: ship::MODEL_GGUF[1..]
                .iter()
                .map(|&p| p.to_owned())
                .collect(),
            tokenizer: ship::MODEL_GGUF[0].to_owned(),
            report: Some(paths::MODEL_REPORT.to_owned()),
            dtype: "q8_0".to_owned(),
            n_layer: c.n_layer,
            n_embd: c.n_embd,
            vocab_size: c.vocab_size,
            n_positions: c.n_positions,
        },
        dictionaries: assemble::dictionary_infos(dictionaries),
        window,
        build: BuildInfo {
            command: format!(
                "glassbox pack build --seed {} --steps {}",
                options.seed, options.steps
            ),
            seed: options.seed,
            built_at: assemble::utc_now(),
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        },
    }
}

/// Training windows the transcoders learn from (of 128 tokens: about 410 thousand rows).
pub const TRANSCODER_WINDOWS: usize = 3200;

/// Reads `path` as JSON if it is there and parses, or computes the value and writes it.
pub(crate) fn cached_json<T: Serialize + serde::de::DeserializeOwned>(
    path: &Path,
    compute: impl FnOnce() -> Result<T>,
) -> Result<T> {
    if let Ok(bytes) = std::fs::read(path)
        && let Ok(value) = serde_json::from_slice(&bytes)
    {
        return Ok(value);
    }
    let value = compute()?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    let mut text =
        serde_json::to_string_pretty(&value).map_err(|e| BuildError::Checkpoint(e.to_string()))?;
    text.push('\n');
    std::fs::write(path, text).map_err(io(path))?;
    Ok(value)
}

fn stage_features(
    staged: &Path,
    model: &Gpt2,
    tokenizer: &Tokenizer,
    dictionaries: &[glassbox_dict::Dictionary],
    corpus: &TaggedCorpus,
    window: usize,
    seed: u64,
) -> Result<()> {
    let progress = bar("features", 1);
    progress.set_message("activations over the corpus");
    let model = &Model::from(model.clone());
    let mut activations = features::in_memory(dictionaries);
    features::activations(
        model,
        dictionaries,
        corpus,
        window,
        0,
        0,
        &mut activations,
        &progress,
    )?;
    progress.finish();
    let (tag_totals, genre_totals) = features::totals(corpus);
    let context = RecordContext {
        corpus,
        tokenizer,
        tag_totals: &tag_totals,
        genre_totals: &genre_totals,
        seed,
    };
    let mut layers = Vec::new();
    let progress = bar("records", dictionaries.len() as u64);
    for (layer, (dictionary, activations)) in dictionaries.iter().zip(activations).enumerate() {
        let records = features::records(context, model, layer, dictionary, activations)?;
        assemble::write_shards(staged, layer, &records)?;
        layers.push(records.iter().map(features::label_entry).collect());
        progress.inc(1);
    }
    progress.finish();
    // Written last: its presence marks the stage done.
    assemble::write_labels(staged, &features::label_index(corpus, layers))
}

pub(crate) fn stage_corpus(work: &Path) -> Result<Vec<Document>> {
    let path = work.join("corpus.json");
    if let Ok(bytes) = std::fs::read(&path)
        && let Ok(documents) = serde_json::from_slice(&bytes)
    {
        return Ok(documents);
    }
    let folder = corpus::fetch(&work.join("download"))?;
    let documents = corpus::read(&folder, 10, 3)?;
    let json = serde_json::to_vec(&documents).map_err(|e| BuildError::Corpus(e.to_string()))?;
    std::fs::write(&path, json).map_err(io(&path))?;
    let held_out = documents.iter().filter(|d| d.split == Split::Eval).count();
    println!("corpus: {} documents, {held_out} held out", documents.len());
    Ok(documents)
}

fn stage_tokenizer(work: &Path, documents: &[Document]) -> Result<String> {
    let path = work.join("tokenizer.json");
    if let Ok(json) = std::fs::read_to_string(&path) {
        return Ok(json);
    }
    let json = bpe::train(documents)?;
    std::fs::write(&path, &json).map_err(io(&path))?;
    println!("tokenizer: byte-level BPE, {} tokens", bpe::VOCAB_SIZE);
    Ok(json)
}

/// The training and held-out token streams (documents joined by `<|endoftext|>`), and the
/// held-out text's size in bytes.
pub fn tokenize(
    tokenizer: &Tokenizer,
    documents: &[Document],
) -> Result<(Vec<u32>, Vec<u32>, usize)> {
    let end = tokenizer
        .token_id(bpe::END_OF_TEXT)
        .ok_or_else(|| BuildError::Tokenizer("no <|endoftext|> token".to_owned()))?;
    let mut train = Vec::new();
    let mut eval = Vec::new();
    let mut eval_bytes = 0;
    for document in documents {
        let stream = if document.split == Split::Train {
            &mut train
        } else {
            &mut eval
        };
        stream.push(end);
        stream.extend(tokenizer.encode_ids(&document.text)?);
        if document.split == Split::Eval {
            eval_bytes += document.text.len();
        }
    }
    Ok((train, eval, eval_bytes))
}

fn write_model(staged: &Path, model: &Gpt2, tokenizer_json: &str) -> Result<()> {
    let folder = staged.join("model");
    std::fs::create_dir_all(&folder).map_err(io(&folder))?;
    let config = staged.join(paths::MODEL_CONFIG);
    std::fs::write(&config, model.config().to_hf_json()).map_err(io(&config))?;
    let tensors = model
        .weights()
        .named()
        .into_iter()
        .map(|(name, t)| Ok((name, t.detach().to_dtype(candle_core::DType::F16)?)))
        .collect::<Result<std::collections::HashMap<String, candle_core::Tensor>>>()?;
    let tokenizer = staged.join(paths::TOKENIZER);
    std::fs::write(&tokenizer, tokenizer_json).map_err(io(&tokenizer))?;
    // Weights last: their presence marks the stage done.
    let partial = folder.join("model.safetensors.partial");
    candle_core::safetensors::save(&tensors, &partial)?;
    let weights = staged.join(paths::MODEL_WEIGHTS);
    std::fs::rename(&partial, &weights).map_err(io(&weights))
}

fn read_model(staged: &Path) -> Result<Gpt2> {
    let config_path = staged.join(paths::MODEL_CONFIG);
    let weights_path = staged.join(paths::MODEL_WEIGHTS);
    let config = std::fs::read_to_string(&config_path).map_err(io(&config_path))?;
    let weights = std::fs::read(&weights_path).map_err(io(&weights_path))?;
    Ok(Gpt2::load(&config, &weights)?)
}

fn report(
    model: &Gpt2,
    tokenizer: &Tokenizer,
    train_tokens: &[u32],
    eval_tokens: &[u32],
    eval_bytes: usize,
    seq_len: usize,
) -> Result<ModelReport> {
    let vocab = model.config().vocab_size;
    let bytes_per_token = eval_bytes as f64 / eval_tokens.len() as f64;
    let loss = |name: &str, nats: f64, tokens: usize| {
        HeldOutLoss::new(
            name,
            nats,
            tokens,
            (tokens as f64 * bytes_per_token).round() as usize,
        )
    };
    let (model_nats, counted) = evaluate(model, eval_tokens, seq_len)?;
    let (bigram, bigram_k) = bigram_nats(train_tokens, eval_tokens, vocab);
    let held_out = vec![
        loss("model", model_nats, counted),
        loss(
            "unigram (add-one)",
            unigram_nats(train_tokens, eval_tokens, vocab),
            eval_tokens.len(),
        ),
        loss("bigram (add-k)", bigram, eval_tokens.len() - 1),
    ];
    let mut samples = Vec::new();
    let engine = CpuEngine::new(model.clone());
    for (i, prompt) in [
        "The jury said",
        "In the morning, she",
        "The results of the experiment",
    ]
    .iter()
    .enumerate()
    {
        let ids = tokenizer.encode_ids(prompt)?;
        for sampling in [
            Sampling::greedy(30),
            Sampling {
                temperature: 0.8,
                top_k: Some(40),
                top_p: Some(0.95),
                seed: i as u64,
                ..Sampling::greedy(30)
            },
        ] {
            let mut hooks = Hooks::none();
            let continuation = now(generate(&engine, &ids, &sampling, &[], &mut hooks))
                .ok_or_else(|| {
                    BuildError::Checkpoint(
                        "the CPU engine's generation did not finish at once".into(),
                    )
                })??;
            samples.push((prompt.to_string(), tokenizer.decode(&continuation.tokens)?));
        }
    }
    Ok(ModelReport {
        held_out,
        bigram_k,
        eval_tokens: counted,
        samples,
    })
}

pub(crate) fn bar(stage: &str, steps: u64) -> ProgressBar {
    let bar = ProgressBar::new(steps);
    if let Ok(style) = ProgressStyle::with_template(
        "{prefix:>10} [{elapsed_precise}<{eta_precise}] {wide_bar} {pos}/{len} {msg}",
    ) {
        bar.set_style(style);
    }
    bar.set_prefix(stage.to_owned());
    bar
}
