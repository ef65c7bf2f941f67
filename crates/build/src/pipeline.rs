//! `glassbox pack build`: the stages in order, each writing its output into a work folder
//! and skipped when that output is already there, so an interrupted build resumes.
//!
//! Stages so far: corpus, tokenizer, tokenized corpus, model (with checkpoints), model
//! report. Transcoders, feature data and the pack manifest come next.

use std::path::{Path, PathBuf};

use glassbox_model::generate::{Sampling, generate};
use glassbox_model::{Gpt2, Gpt2Config, Hooks, Tokenizer};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::bpe;
use crate::corpus::{self, Document, Split};
use crate::error::{BuildError, Result, io};
use crate::report::{HeldOutLoss, bigram_nats, unigram_nats};
use crate::train::{TrainConfig, evaluate, train_until};

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
#[derive(Debug, Serialize)]
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

/// Runs every stage not yet done.
pub fn build(options: &BuildOptions) -> Result<ModelReport> {
    std::fs::create_dir_all(&options.work).map_err(io(&options.work))?;
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
    let progress = bar("model", config.steps as u64);
    let stop_at = options.stop_after.unwrap_or(config.steps);
    let model = train_until(
        &config,
        &train_tokens,
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
    write_model(&options.out.join("model"), &model, &tokenizer_json)?;
    let report = report(
        &model,
        &tokenizer,
        &train_tokens,
        &eval_tokens,
        eval_bytes,
        config.seq_len,
    )?;
    let path = options.out.join("model/report.json");
    let json =
        serde_json::to_string_pretty(&report).map_err(|e| BuildError::Checkpoint(e.to_string()))?;
    std::fs::write(&path, json).map_err(io(&path))?;
    Ok(report)
}

fn stage_corpus(work: &Path) -> Result<Vec<Document>> {
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
fn tokenize(tokenizer: &Tokenizer, documents: &[Document]) -> Result<(Vec<u32>, Vec<u32>, usize)> {
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

fn write_model(folder: &Path, model: &Gpt2, tokenizer_json: &str) -> Result<()> {
    std::fs::create_dir_all(folder).map_err(io(folder))?;
    let config = folder.join("config.json");
    std::fs::write(&config, model.config().to_hf_json()).map_err(io(&config))?;
    let tensors: std::collections::HashMap<String, candle_core::Tensor> = model
        .weights()
        .named()
        .into_iter()
        .map(|(name, t)| (name, t.detach()))
        .collect();
    candle_core::safetensors::save(&tensors, folder.join("model.safetensors"))?;
    let tokenizer = folder.join("tokenizer.json");
    std::fs::write(&tokenizer, tokenizer_json).map_err(io(&tokenizer))
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
            let continuation = generate(model, &ids, &sampling, &mut Hooks::none())?;
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

fn bar(stage: &str, steps: u64) -> ProgressBar {
    let bar = ProgressBar::new(steps);
    if let Ok(style) = ProgressStyle::with_template(
        "{prefix:>10} [{elapsed_precise}<{eta_precise}] {wide_bar} {pos}/{len} {msg}",
    ) {
        bar.set_style(style);
    }
    bar.set_prefix(stage.to_owned());
    bar
}
