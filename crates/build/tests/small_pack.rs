//! The pack stages end to end on a tiny model and a two-document corpus: what the
//! pipeline writes, `glassbox-pack` reads back and checks, and the feature data measures
//! what it says.
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

mod common;

use common::document;

use glassbox_build::assemble::{self, ManifestParts, paths};
use glassbox_build::dictionaries::{collect_all, windows};
use glassbox_build::features::{self, RecordContext, tag_corpus};
use glassbox_build::transcoder::{self, TranscoderConfig};
use glassbox_dict::Dictionary;
use glassbox_model::{Gpt2, Gpt2Config, Gpt2Weights, Tokenizer};
use glassbox_pack::{BuildInfo, LabelIndex, ModelInfo, dir};

fn tokenizer() -> Tokenizer {
    let json = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../model/tests/fixtures/tokenizer/tokenizer.json"),
    )
    .unwrap();
    Tokenizer::from_json(&json).unwrap()
}

/// Builds a small pack in `root`, as the pipeline does; returns its feature records and
/// the number of corpus tokens.
fn write_small_pack(root: &std::path::Path) -> (Vec<Vec<glassbox_pack::FeatureRecord>>, usize) {
    let tokenizer = tokenizer();
    let vocab_size = tokenizer.vocab_size();
    let config = Gpt2Config {
        n_layer: 2,
        n_head: 2,
        n_embd: 16,
        n_positions: 16,
        vocab_size,
        layer_norm_epsilon: 1e-5,
        n_inner: None,
        activation_function: glassbox_model::Activation::GeluTanh,
    };
    let model = Gpt2::new(config.clone(), Gpt2Weights::init(&config, 7).unwrap()).unwrap();
    let sentence: Vec<(&str, &str)> = [
        ("The", "at"),
        ("dogs", "nns"),
        ("ran", "vbd"),
        ("to", "in"),
        ("the", "at"),
        ("Houses-Tl", "nns-tl"),
        (".", "."),
    ]
    .repeat(6);
    let documents = vec![
        document("ca01", 'a', &sentence),
        document("cb01", 'b', &sentence[..14]),
    ];
    let end = tokenizer.token_id("<|endoftext|>").unwrap_or(0);
    let corpus = tag_corpus(&tokenizer, &documents, end).unwrap();
    assert_eq!(corpus.documents.len(), 2);
    assert_eq!(corpus.tokens[0], end);
    assert!(
        corpus.tag_names.contains(&"NNS".to_owned()),
        "{:?}",
        corpus.tag_names
    );
    assert!(!corpus.tag_names.iter().any(|t| t.contains("TL")));

    let window = 16;
    let train = windows(&corpus.tokens, window, 100);
    let data = collect_all(&model, &train).unwrap();
    let dictionaries: Vec<_> = (0..2)
        .map(|layer| {
            let c = TranscoderConfig {
                k: 4,
                steps: 30,
                batch_size: 64,
                dead_after_rows: 256,
                k_aux: 4,
                ..TranscoderConfig::for_layer(layer, 32, 3)
            };
            transcoder::train(&c, &data[layer]).unwrap()
        })
        .collect();

    let _ = std::fs::remove_dir_all(root);
    write_model(root, &config, &model);
    for (layer, d) in dictionaries.iter().enumerate() {
        transcoder::save(d, &root.join(paths::transcoder(layer))).unwrap();
    }
    // Measure with what was saved (f16), as the pipeline does.
    let dictionaries: Vec<_> = (0..2)
        .map(|l| transcoder::load(&root.join(paths::transcoder(l))).unwrap())
        .collect();
    assemble::write_corpus(root, &corpus).unwrap();
    let hidden = indicatif::ProgressBar::hidden();
    let model = glassbox_model::Model::from(model.clone());
    let mut activations = features::in_memory(&dictionaries);
    features::activations(
        &model,
        &dictionaries,
        &corpus,
        window,
        0,
        0,
        &mut activations,
        &hidden,
    )
    .unwrap();
    let (tag_totals, genre_totals) = features::totals(&corpus);
    let context = RecordContext {
        corpus: &corpus,
        tokenizer: &tokenizer,
        tag_totals: &tag_totals,
        genre_totals: &genre_totals,
        seed: 1,
    };
    let mut labels = LabelIndex {
        layers: Vec::new(),
        tag_names: Vec::new(),
    };
    let mut all_records = Vec::new();
    for (layer, (d, acts)) in dictionaries.iter().zip(activations).enumerate() {
        let records = features::records(context, &model, layer, d, acts).unwrap();
        assemble::write_shards(root, layer, &records).unwrap();
        labels
            .layers
            .push(records.iter().map(features::label_entry).collect());
        all_records.push(records);
    }
    assemble::write_labels(root, &labels).unwrap();
    assemble::write_manifest(root, parts(&dictionaries, vocab_size, window)).unwrap();
    (all_records, corpus.tokens.len())
}

#[test]
fn a_small_pack_is_written_read_back_and_measured() {
    let root = std::env::temp_dir().join(format!("glassbox-small-pack-{}", std::process::id()));
    let (all_records, total_tokens) = write_small_pack(&root);
    let manifest = dir::open(&root).unwrap().manifest().clone();
    // Read back through the pack crate.
    assert_eq!(dir::verify_all(&root).unwrap(), manifest.files.len());
    let loaded = dir::load(&root).unwrap();
    assert_eq!(loaded.labels.layers[0].len(), 32);
    let shard = dir::load_shard(&root, &loaded.pack, 1, 31).unwrap();
    assert_eq!(shard.features.last().unwrap().index, 31);

    check_records(&all_records, total_tokens as f32);
    let live = all_records
        .iter()
        .flatten()
        .filter(|r| r.frequency > 0.0)
        .count();
    assert!(live > 0);
    let _ = std::fs::remove_dir_all(&root);
}

fn parts(dictionaries: &[Dictionary], vocab_size: usize, window: usize) -> ManifestParts {
    ManifestParts {
        name: "brown".to_owned(),
        description: "A small test pack.".to_owned(),
        features_method: features::method(window, 0, "LayerNorm"),
        model: ModelInfo {
            format: glassbox_pack::ModelFormat::Safetensors,
            config: paths::MODEL_CONFIG.to_owned(),
            weights: paths::MODEL_WEIGHTS.to_owned(),
            splits: Vec::new(),
            tokenizer: paths::TOKENIZER.to_owned(),
            report: None,
            dtype: "f32".to_owned(),
            n_layer: 2,
            n_embd: 16,
            vocab_size,
            n_positions: 16,
        },
        dictionaries: assemble::dictionary_infos(dictionaries),
        window,
        build: BuildInfo {
            command: "test".to_owned(),
            seed: 1,
            built_at: assemble::rfc3339(0),
            tool_version: "test".to_owned(),
        },
    }
}

/// The numbers mean what they say: frequencies from the firing counts, histograms summing
/// to the firings, precision the share of the best tag, examples strongest first.
fn check_records(all_records: &[Vec<glassbox_pack::FeatureRecord>], total_tokens: f32) {
    for records in all_records {
        for record in records {
            let fired: u32 = record.histogram.counts.iter().sum();
            let frequency = fired as f32 / total_tokens;
            assert!((record.frequency - frequency).abs() <= 1e-3 * frequency);
            let tag_counts: u32 = record.profile.tags.iter().map(|t| t.1).sum();
            if let (Some(tag), Some(first)) = (&record.profile.tag, record.profile.tags.first()) {
                assert_eq!(tag.key, first.0);
                assert!(tag.precision >= first.1 as f32 / fired as f32 - 1e-3);
                assert!(tag_counts <= fired);
            }
            let acts: Vec<f32> = record
                .top
                .iter()
                .map(glassbox_pack::Example::activation)
                .collect();
            assert!(acts.windows(2).all(|w| w[0] >= w[1]), "{acts:?}");
            if fired == 0 {
                assert!(record.label.starts_with("dead"));
            } else {
                assert!((record.top[0].activation() - record.histogram.max).abs() < 1e-6);
                assert!(record.top.len() <= 6 && record.quantiles.len() == 4);
            }
        }
    }
}

#[test]
fn the_same_inputs_build_the_same_files() {
    let base = std::env::temp_dir().join(format!("glassbox-repro-{}", std::process::id()));
    let (a, b) = (base.join("a"), base.join("b"));
    write_small_pack(&a);
    write_small_pack(&b);
    let files = |root: &std::path::Path| dir::open(root).unwrap().manifest().files.clone();
    assert_eq!(files(&a), files(&b));
    assert!(files(&a).len() > 8);
    let _ = std::fs::remove_dir_all(&base);
}

fn write_model(root: &std::path::Path, config: &Gpt2Config, model: &Gpt2) {
    std::fs::create_dir_all(root.join("model")).unwrap();
    std::fs::write(root.join(paths::MODEL_CONFIG), config.to_hf_json()).unwrap();
    let tensors: std::collections::HashMap<_, _> = model.weights().named().into_iter().collect();
    candle_core::safetensors::save(&tensors, root.join(paths::MODEL_WEIGHTS)).unwrap();
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../model/tests/fixtures/tokenizer/tokenizer.json"),
        root.join(paths::TOKENIZER),
    )
    .unwrap();
}

#[test]
fn lessons_put_in_a_built_pack_are_listed_and_verified() {
    let root = std::env::temp_dir().join(format!("glassbox-lesson-pack-{}", std::process::id()));
    write_small_pack(&root);
    assert!(dir::open(&root).unwrap().lesson_paths().is_empty());
    std::fs::create_dir_all(root.join("lessons")).unwrap();
    std::fs::write(root.join("lessons/first.json"), b"{\"title\":\"t\"}").unwrap();
    std::fs::write(root.join("lessons/notes.txt"), b"not a lesson file").unwrap();
    let listed = assemble::relist_lessons(&root).unwrap();
    assert_eq!(listed, ["lessons/first.json"]);
    let pack = dir::open(&root).unwrap();
    assert_eq!(pack.lesson_paths(), ["lessons/first.json"]);
    // Every file the manifest names matches it, the lesson too.
    assert!(dir::verify_all(&root).is_ok());
    // A lesson changed or removed later is listed again as it is.
    std::fs::remove_file(root.join("lessons/first.json")).unwrap();
    assert!(assemble::relist_lessons(&root).unwrap().is_empty());
    assert!(dir::open(&root).unwrap().lesson_paths().is_empty());
    assert!(dir::verify_all(&root).is_ok());
    std::fs::remove_dir_all(&root).unwrap();
}
