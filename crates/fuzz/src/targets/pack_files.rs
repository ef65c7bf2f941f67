//! `pack-files`: a pack's files through the one path that loads them, `Pack::verify` then
//! `Pack::load` (and `Pack::load_shard` for a feature shard), with one file replaced by the
//! input and the manifest's size and SHA-256 for it updated to match, so that the content
//! parsers see the input.
//!
//! The pack is the default pack made small enough to load thousands of times a second:
//! its manifest, corpus index, labels, a feature shard and transcoder config, cut down to
//! the model crate's `with_tokenizer` fixture (one block of width 16, 400 tokens), whose
//! model and tokenizer it takes, with a transcoder of 8 features written here. The input's
//! first byte picks which file it replaces ([`FILES`], modulo their number); the rest is
//! that file's bytes.

use glassbox_pack::{Corpus, FeatureShard, Pack, PackFiles, QuantileBand, sha256_hex};
use serde_json::{Value, json};

use super::Target;
use super::manifest::BROWN_MANIFEST;
use crate::Behaviour;
use crate::seeds::{Dtype, repo_file, safetensors, values};

/// The small pack's files, in the order the first byte picks them.
const FILES: [&str; 9] = [
    "model/config.json",
    "model/model.safetensors",
    "model/tokenizer.json",
    "transcoders/layer_0/cfg.json",
    "transcoders/layer_0/sae_weights.safetensors",
    "corpus/documents.json",
    "corpus/tokens.bin",
    "features/labels.json",
    "features/layer_0/0.json",
];
/// The shard's index in [`FILES`].
const SHARD: usize = 8;

const FIXTURE: &str = "crates/model/tests/fixtures/with_tokenizer";
const BROWN: &str = "www/packs/brown";
/// The fixture model's width.
const D_MODEL: usize = 16;
/// Its vocabulary.
const VOCAB: usize = 400;
/// The transcoder's features.
const D_SAE: usize = 8;
/// Documents of the default pack's corpus kept.
const DOCUMENTS: usize = 4;
/// Tokens of each.
const DOCUMENT_TOKENS: usize = 48;

/// The small pack: its manifest (as JSON, to update) and files.
struct SmallPack {
    manifest: Value,
    files: Vec<Vec<u8>>,
    /// Its files verified, loaded once.
    verified: PackFiles,
    corpus: Corpus,
}

pub(super) fn target() -> Result<Target, String> {
    let small = small_pack()?;
    let seeds = small
        .files
        .iter()
        .enumerate()
        .map(|(i, file)| [&[i as u8][..], file].concat())
        .collect();
    Ok(Target {
        name: "pack-files",
        text: true,
        seeds,
        run: Box::new(move |input| run(&small, input)),
    })
}

fn run(small: &SmallPack, input: &[u8]) -> Behaviour {
    let mut b = Behaviour::default();
    let Some((&pick, bytes)) = input.split_first() else {
        return b;
    };
    let which = usize::from(pick) % FILES.len();
    let path = FILES[which];
    b.note(path);
    let manifest = with_entry(&small.manifest, path, bytes);
    let Some(pack) = b.stage("manifest", Pack::parse_manifest(&manifest)) else {
        return b;
    };
    let Some(file) = b.stage("verify", pack.verify(path, bytes.to_vec())) else {
        return b;
    };
    if which == SHARD {
        for feature in [0, D_SAE - 1] {
            if let Some(shard) = b.stage("shard", pack.load_shard(0, feature, &file)) {
                follow_examples(&small.corpus, &shard);
            }
        }
        return b;
    }
    let mut files = small.verified.clone();
    files.insert(file);
    if let Some(loaded) = b.stage("load", pack.load(&files)) {
        read_corpus(&loaded.corpus);
    }
    b
}

/// The manifest with `path`'s size and hash those of `bytes`.
fn with_entry(manifest: &Value, path: &str, bytes: &[u8]) -> Vec<u8> {
    let mut manifest = manifest.clone();
    if let Some(files) = manifest["files"].as_array_mut() {
        for entry in files.iter_mut().filter(|e| e["path"] == path) {
            entry["bytes"] = json!(bytes.len());
            entry["sha256"] = json!(sha256_hex(bytes));
        }
    }
    manifest.to_string().into_bytes()
}

/// What the app reads of a corpus: each document, and windows at its ends.
fn read_corpus(corpus: &Corpus) {
    for document in 0..corpus.index.documents.len() {
        let len = corpus.document(document).map_or(0, <[u32]>::len);
        for position in [0, len.saturating_sub(1), len, usize::MAX] {
            let _ = corpus.window_of(document, position);
        }
    }
}

/// What the app does with a shard's examples: finds each in the corpus.
fn follow_examples(corpus: &Corpus, shard: &FeatureShard) {
    for record in &shard.features {
        let quantiles = record.quantiles.iter().flat_map(QuantileBand::examples);
        for example in record.top.iter().chain(quantiles) {
            let _ = corpus.window_of(example.document(), example.position());
        }
    }
}

/// The default pack cut down to the `with_tokenizer` fixture, verified against its own
/// manifest.
fn small_pack() -> Result<SmallPack, String> {
    let files = vec![
        repo_file(&format!("{FIXTURE}/config.json"))?,
        repo_file(&format!("{FIXTURE}/model.safetensors"))?,
        repo_file(&format!("{FIXTURE}/tokenizer.json"))?,
        small_cfg()?,
        small_transcoder(),
        small_index()?,
        small_tokens()?,
        small_labels()?,
        small_shard()?,
    ];
    let manifest = small_manifest(&files)?;
    let pack = Pack::parse_manifest(manifest.to_string().as_bytes())
        .map_err(|e| format!("the small pack's manifest: {e}"))?;
    let mut verified = PackFiles::default();
    for (path, bytes) in FILES.iter().zip(&files) {
        verified.insert(
            pack.verify(path, bytes.clone())
                .map_err(|e| e.to_string())?,
        );
    }
    let loaded = pack
        .load(&verified)
        .map_err(|e| format!("the small pack does not load: {e}"))?;
    Ok(SmallPack {
        manifest,
        files,
        verified,
        corpus: loaded.corpus,
    })
}

fn json_file(path: &str) -> Result<Value, String> {
    serde_json::from_slice(&repo_file(path)?).map_err(|e| format!("seed file {path}: {e}"))
}

/// The default pack's manifest, describing the small pack's files and shapes.
fn small_manifest(files: &[Vec<u8>]) -> Result<Value, String> {
    let mut manifest = json_file(BROWN_MANIFEST)?;
    manifest["files"] = FILES
        .iter()
        .zip(files)
        .map(|(path, bytes)| json!({"path": path, "bytes": bytes.len(), "sha256": sha256_hex(bytes)}))
        .collect();
    let model = &mut manifest["model"];
    // A Hugging Face folder, whatever the default pack's model is written as.
    model["format"] = json!("safetensors");
    model["config"] = json!(FILES[0]);
    model["weights"] = json!(FILES[1]);
    model["tokenizer"] = json!(FILES[2]);
    if let Some(model) = model.as_object_mut() {
        // In one file.
        model.remove("splits");
    }
    model["report"] = Value::Null;
    model["dtype"] = json!("f32");
    model["n_layer"] = json!(1);
    model["n_embd"] = json!(D_MODEL);
    model["vocab_size"] = json!(VOCAB);
    model["n_positions"] = json!(32);
    let first = manifest["dictionaries"][0].clone();
    manifest["dictionaries"] = json!([first]);
    manifest["dictionaries"][0]["d_sae"] = json!(D_SAE);
    manifest["corpus"]["window"] = json!(32);
    Ok(manifest)
}

/// Block 0's transcoder config, at the small sizes.
fn small_cfg() -> Result<Vec<u8>, String> {
    let mut cfg = json_file(&format!("{BROWN}/transcoders/layer_0/cfg.json"))?;
    cfg["d_in"] = json!(D_MODEL);
    cfg["d_sae"] = json!(D_SAE);
    cfg["k"] = json!(4);
    Ok(cfg.to_string().into_bytes())
}

/// A transcoder's weights at the small sizes.
fn small_transcoder() -> Vec<u8> {
    safetensors(
        &[
            ("W_enc", vec![D_MODEL, D_SAE], values(1, D_MODEL * D_SAE)),
            ("b_enc", vec![D_SAE], values(2, D_SAE)),
            ("W_dec", vec![D_SAE, D_MODEL], values(3, D_SAE * D_MODEL)),
            ("b_dec", vec![D_MODEL], values(4, D_MODEL)),
        ],
        Dtype::F32,
    )
}

/// The corpus index's first documents, each cut short.
fn small_index() -> Result<Vec<u8>, String> {
    let mut index = json_file(&format!("{BROWN}/corpus/documents.json"))?;
    let documents: Vec<Value> = index["documents"]
        .as_array()
        .ok_or("the corpus index has no documents")?
        .iter()
        .take(DOCUMENTS)
        .enumerate()
        .map(|(i, d)| {
            let mut d = d.clone();
            d["start"] = json!(i * DOCUMENT_TOKENS);
            d["len"] = json!(DOCUMENT_TOKENS);
            d
        })
        .collect();
    index["documents"] = json!(documents);
    Ok(index.to_string().into_bytes())
}

/// Those documents' first tokens, brought into the fixture's vocabulary.
fn small_tokens() -> Result<Vec<u8>, String> {
    let index = json_file(&format!("{BROWN}/corpus/documents.json"))?;
    let tokens = repo_file(&format!("{BROWN}/corpus/tokens.bin"))?;
    let mut out = Vec::new();
    for d in index["documents"]
        .as_array()
        .into_iter()
        .flatten()
        .take(DOCUMENTS)
    {
        let start = d["start"].as_u64().ok_or("a document without a start")? as usize;
        let bytes = tokens
            .get(start * 2..(start + DOCUMENT_TOKENS) * 2)
            .ok_or("the token file is shorter than its index")?;
        for pair in bytes.chunks_exact(2) {
            let token = u16::from_le_bytes([pair[0], pair[1]]) % VOCAB as u16;
            out.extend(token.to_le_bytes());
        }
    }
    Ok(out)
}

/// Block 0's first labels.
fn small_labels() -> Result<Vec<u8>, String> {
    let mut labels = json_file(&format!("{BROWN}/features/labels.json"))?;
    let first: Vec<Value> = labels["layers"][0]
        .as_array()
        .ok_or("the labels have no block 0")?
        .iter()
        .take(D_SAE)
        .cloned()
        .collect();
    labels["layers"] = json!([first]);
    Ok(labels.to_string().into_bytes())
}

/// Block 0's first shard, its first features.
fn small_shard() -> Result<Vec<u8>, String> {
    let mut shard = json_file(&format!("{BROWN}/features/layer_0/0.json"))?;
    let first: Vec<Value> = shard["features"]
        .as_array()
        .ok_or("the shard has no features")?
        .iter()
        .take(D_SAE)
        .cloned()
        .collect();
    shard["features"] = json!(first);
    Ok(shard.to_string().into_bytes())
}
