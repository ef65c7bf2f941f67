//! The committed default pack (`www/packs/brown`): it loads, its references point where
//! they should, its stored activations are what the model computes live, and a corrupted
//! copy of each kind of file is refused with an error naming the file.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use glassbox_model::{HookPoint, Hooks, Norm};
use glassbox_pack::{MANIFEST_FILE, Pack, PackError, PackFiles, QuantileBand, dir};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../www/packs/brown")
}

/// Every file of the pack, by path, with the manifest under its own name.
fn files() -> BTreeMap<String, Vec<u8>> {
    let root = root();
    let manifest = std::fs::read(root.join(MANIFEST_FILE)).expect("the default pack is committed");
    let pack = Pack::parse_manifest(&manifest).unwrap();
    let mut files: BTreeMap<String, Vec<u8>> = pack
        .manifest()
        .files
        .iter()
        .map(|f| (f.path.clone(), std::fs::read(root.join(&f.path)).unwrap()))
        .collect();
    files.insert(MANIFEST_FILE.to_owned(), manifest);
    files
}

/// Loads everything up front plus one shard per block from `files`, as the app does:
/// each file verified once, then loaded.
fn load(files: &BTreeMap<String, Vec<u8>>) -> Result<(), PackError> {
    let get = |path: &str| files.get(path).cloned().unwrap_or_default();
    let pack = Pack::parse_manifest(&get(MANIFEST_FILE))?;
    let mut verified = PackFiles::default();
    for path in pack.required_paths() {
        verified.insert(pack.verify(&path, get(&path))?);
    }
    pack.load(&verified)?;
    for d in &pack.manifest().dictionaries {
        let path = pack.shard_path(d.layer, 0)?;
        pack.load_shard(d.layer, 0, &pack.verify(&path, get(&path))?)?;
    }
    Ok(())
}

#[test]
fn the_default_pack_verifies_and_loads() {
    let files = dir::verify_all(&root()).unwrap();
    let loaded = dir::load(&root()).unwrap();
    let m = loaded.pack.manifest();
    assert_eq!(files, m.files.len());
    assert_eq!(loaded.dictionaries.len(), m.model.n_layer);
    let total: u64 = m.files.iter().map(|f| f.bytes).sum();
    assert!(total <= 30_000_000, "the pack is {total} bytes");
    for (layer, labels) in loaded.labels.layers.iter().enumerate() {
        let live = labels.iter().filter(|l| l.1 > 0.0).count();
        assert!(
            live > labels.len() / 2,
            "block {layer}: {live} live features"
        );
    }
}

#[test]
fn stored_examples_are_what_the_model_computes_live() {
    let loaded = dir::load(&root()).unwrap();
    let m = loaded.pack.manifest().clone();
    for d in &m.dictionaries {
        let dictionary = &loaded.dictionaries[d.layer];
        let mut checked = 0;
        for feature in (0..d.d_sae).step_by(d.d_sae / 8) {
            let shard = dir::load_shard(&root(), &loaded.pack, d.layer, feature).unwrap();
            let record = &shard.features[feature - shard.first];
            assert_eq!(record.index, feature);
            let examples = record
                .top
                .iter()
                .chain(record.quantiles.iter().flat_map(QuantileBand::examples));
            for example in examples.take(3) {
                let (window, at) = loaded
                    .corpus
                    .window_of(example.document(), example.position())
                    .expect("examples point into the corpus");
                let hook = HookPoint::LnNormalized(d.layer, Norm::Ln2);
                let mut hooks = Hooks::none().cache(hook);
                loaded.model.forward_ids(window, &mut hooks).unwrap();
                let input = hooks.take_cache()[&hook].squeeze(0).unwrap();
                let acts = dictionary.encode(&input).unwrap();
                let live: f32 = acts
                    .get(at)
                    .unwrap()
                    .get(feature)
                    .unwrap()
                    .to_scalar()
                    .unwrap();
                let stored = example.activation();
                assert!(
                    (live - stored).abs() <= 2e-3 + 1e-3 * stored.abs(),
                    "block {} feature {feature}: stored {stored}, live {live}",
                    d.layer
                );
                checked += 1;
            }
        }
        assert!(checked > 0, "block {}: no examples checked", d.layer);
    }
}

#[test]
fn a_corrupted_copy_of_each_kind_of_file_is_refused_by_name() {
    let files = files();
    load(&files).unwrap();
    let pack = Pack::parse_manifest(&files[MANIFEST_FILE]).unwrap();
    let m = pack.manifest();
    let kinds = [
        m.model.config.clone(),
        m.model.weights.clone(),
        m.model.tokenizer.clone(),
        m.dictionaries[0].cfg.clone(),
        m.dictionaries[0].weights.clone(),
        m.corpus.index.clone(),
        m.corpus.tokens.clone(),
        m.features.labels.clone(),
        pack.shard_path(0, 0).unwrap(),
    ];
    for path in &kinds {
        // One flipped byte: the hash catches it.
        let mut flipped = files.clone();
        let bytes = flipped.get_mut(path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        let error = load(&flipped).unwrap_err();
        assert!(
            matches!(&error, PackError::Hash { path: p } if p == path),
            "{path}: {error}"
        );
        assert!(error.to_string().contains(path.as_str()));
        // Truncated: the size catches it.
        let mut truncated = files.clone();
        truncated.get_mut(path).unwrap().truncate(middle);
        let error = load(&truncated).unwrap_err();
        assert!(
            matches!(&error, PackError::Size { path: p, .. } if p == path),
            "{path}: {error}"
        );
        // Missing.
        let mut missing = files.clone();
        missing.get_mut(path).unwrap().clear();
        assert!(load(&missing).is_err(), "{path}");
    }
}

/// `files` with `path` replaced and the manifest's size and hash updated to match, so the
/// content checks (not the hash) must catch what is wrong.
fn replaced(
    files: &BTreeMap<String, Vec<u8>>,
    path: &str,
    bytes: Vec<u8>,
) -> BTreeMap<String, Vec<u8>> {
    let mut files = files.clone();
    let mut manifest: serde_json::Value = serde_json::from_slice(&files[MANIFEST_FILE]).unwrap();
    for entry in manifest["files"].as_array_mut().unwrap() {
        if entry["path"] == path {
            entry["bytes"] = bytes.len().into();
            entry["sha256"] = glassbox_pack::sha256_hex(&bytes).into();
        }
    }
    files.insert(
        MANIFEST_FILE.to_owned(),
        serde_json::to_vec(&manifest).unwrap(),
    );
    files.insert(path.to_owned(), bytes);
    files
}

#[test]
fn well_hashed_but_wrong_contents_are_refused_with_the_reason() {
    let files = files();
    let pack = Pack::parse_manifest(&files[MANIFEST_FILE]).unwrap();
    let m = pack.manifest().clone();

    // A token id outside the vocabulary.
    let mut tokens = files[&m.corpus.tokens].clone();
    tokens[2..4].copy_from_slice(&u16::MAX.to_le_bytes());
    let error = load(&replaced(&files, &m.corpus.tokens, tokens)).unwrap_err();
    assert!(
        error.to_string().contains("outside the vocabulary"),
        "{error}"
    );

    // A dictionary config that claims another width.
    let cfg = String::from_utf8(files[&m.dictionaries[0].cfg].clone()).unwrap();
    let cfg = cfg.replace(
        &format!("\"d_sae\": {}", m.dictionaries[0].d_sae),
        "\"d_sae\": 7",
    );
    let error = load(&replaced(&files, &m.dictionaries[0].cfg, cfg.into_bytes())).unwrap_err();
    assert!(
        error.to_string().contains(&m.dictionaries[0].weights),
        "{error}"
    );

    // Labels for too few features.
    let error = load(&replaced(
        &files,
        &m.features.labels,
        b"{\"layers\": [[]], \"tag_names\": []}".to_vec(),
    ))
    .unwrap_err();
    assert!(error.to_string().contains("labels per block"), "{error}");

    // A shard that holds another block's features.
    let shard_path = pack.shard_path(0, 0).unwrap();
    let mut shard: serde_json::Value = serde_json::from_slice(&files[&shard_path]).unwrap();
    shard["layer"] = 3.into();
    let error = load(&replaced(
        &files,
        &shard_path,
        serde_json::to_vec(&shard).unwrap(),
    ))
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("expected features from 0 of block 0"),
        "{error}"
    );

    // Not JSON at all.
    let error = load(&replaced(&files, &m.model.config, b"{not json".to_vec())).unwrap_err();
    assert!(error.to_string().contains(&m.model.config), "{error}");
}

#[test]
fn manifests_of_other_versions_or_shapes_are_refused() {
    let files = files();
    let mut manifest: serde_json::Value = serde_json::from_slice(&files[MANIFEST_FILE]).unwrap();
    manifest["format_version"] = 99.into();
    let error = Pack::parse_manifest(&serde_json::to_vec(&manifest).unwrap()).unwrap_err();
    assert!(matches!(error, PackError::Version { .. }), "{error}");
    assert!(error.to_string().contains("version 99"), "{error}");

    let error = Pack::parse_manifest(b"[1, 2").unwrap_err();
    assert!(matches!(error, PackError::Manifest(_)), "{error}");

    let mut manifest: serde_json::Value = serde_json::from_slice(&files[MANIFEST_FILE]).unwrap();
    manifest["files"][0]["path"] = "../../etc/passwd".into();
    let error = Pack::parse_manifest(&serde_json::to_vec(&manifest).unwrap()).unwrap_err();
    assert!(error.to_string().contains("not a relative path"), "{error}");
}

#[test]
fn a_packs_lessons_must_be_json_files_it_lists() {
    let files = files();
    let manifest: serde_json::Value = serde_json::from_slice(&files[MANIFEST_FILE]).unwrap();
    let with_lessons = |lessons: serde_json::Value| {
        let mut changed = manifest.clone();
        changed["lessons"] = lessons;
        Pack::parse_manifest(&serde_json::to_vec(&changed).unwrap())
    };
    // A JSON file the pack lists is a lesson it carries (what it holds is read later).
    let pack = with_lessons(serde_json::json!(["corpus/documents.json"])).unwrap();
    assert_eq!(pack.lesson_paths(), ["corpus/documents.json"]);
    let error = with_lessons(serde_json::json!(["lessons/absent.json"]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("lessons/absent.json"), "{error}");
    let error = with_lessons(serde_json::json!(["corpus/tokens.bin"]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("is not a .json file"), "{error}");
    let pack = Pack::parse_manifest(&files[MANIFEST_FILE]).unwrap();
    assert!(pack.lesson_paths().is_empty());
}

#[test]
fn the_features_load_block_by_block_as_they_load_whole() {
    // A page fetches the labels and block 0's transcoder first, the other blocks after.
    let files = files();
    let pack = Pack::parse_manifest(&files[MANIFEST_FILE]).unwrap();
    let n = pack.manifest().dictionaries.len();
    let first = [
        vec![pack.labels_path().to_owned()],
        pack.dictionary_paths(0..1),
    ]
    .concat();
    let rest = pack.dictionary_paths(1..n);
    assert_eq!(
        [first.clone(), rest.clone()].concat(),
        pack.feature_paths(),
        "the two steps fetch every feature file once"
    );
    let mut verified = PackFiles::default();
    for path in pack.model_paths().iter().chain(&first) {
        verified.insert(pack.verify(path, files[path].clone()).unwrap());
    }
    let (model, _) = pack.load_model(&verified).unwrap();
    let labels = pack.load_labels(&verified).unwrap();
    let block_0 = pack.load_dictionaries(&verified, &model, 0..1).unwrap();
    // The other blocks' files are not there yet: asking for them names the first missing.
    let missing = pack.load_dictionaries(&verified, &model, 1..n).unwrap_err();
    assert!(missing.to_string().contains(&rest[0]), "{missing}");
    for path in &rest {
        verified.insert(pack.verify(path, files[path].clone()).unwrap());
    }
    let others = pack.load_dictionaries(&verified, &model, 1..n).unwrap();
    let whole = pack.load_features(&verified, &model).unwrap();
    assert_eq!(labels, whole.labels);
    let by_block: Vec<_> = block_0.iter().chain(&others).collect();
    assert_eq!(by_block.len(), whole.dictionaries.len());
    for (part, all) in by_block.iter().zip(&whole.dictionaries) {
        assert_eq!(part.config, all.config);
        let (a, b) = (
            part.w_dec.flatten_all().unwrap(),
            all.w_dec.flatten_all().unwrap(),
        );
        assert_eq!(a.to_vec1::<f32>().unwrap(), b.to_vec1::<f32>().unwrap());
    }
    // Blocks the pack does not have are refused, not read as fewer.
    assert!(pack.load_dictionaries(&verified, &model, 0..n + 1).is_err());
    assert!(pack.dictionary_paths(n..n + 2).is_empty());
}

#[test]
fn the_models_first_file_runs_block_0_as_the_whole_model_does() {
    // A page fetches the model's first file (block 0, the embeddings, the tokenizer) and
    // shows block 0's features before the second arrives.
    let files = files();
    let pack = Pack::parse_manifest(&files[MANIFEST_FILE]).unwrap();
    assert!(pack.model_is_split());
    let first = pack.first_model_paths();
    assert_eq!(first, ["model/model-00001-of-00002.gguf"]);
    assert_eq!(
        pack.model_paths(),
        [
            "model/model-00001-of-00002.gguf",
            "model/model-00002-of-00002.gguf"
        ]
    );
    let mut verified = PackFiles::default();
    for path in first.iter().chain(&pack.dictionary_paths(0..1)) {
        verified.insert(pack.verify(path, files[path].clone()).unwrap());
    }
    let (head, head_tokenizer) = pack.load_first_blocks(&verified).unwrap();
    assert_eq!(head.dims().n_layer, 1);
    // The second file is not there: the whole model names it.
    let missing = pack.load_model(&verified).unwrap_err();
    assert!(
        missing.to_string().contains("model-00002-of-00002.gguf"),
        "{missing}"
    );
    let second = &pack.model_paths()[1];
    verified.insert(pack.verify(second, files[second].clone()).unwrap());
    let (model, tokenizer) = pack.load_model(&verified).unwrap();
    assert_eq!(model.dims().n_layer, 4);
    let text = "The jury said that the city of Atlanta";
    let ids = tokenizer.encode_ids(text).unwrap();
    assert_eq!(head_tokenizer.encode_ids(text).unwrap(), ids);
    let transcoder = &pack.load_dictionaries(&verified, &model, 0..1).unwrap()[0];
    let read = |m: &glassbox_model::Model| {
        let point = HookPoint::LnNormalized(0, Norm::Ln2);
        let mut hooks = Hooks::none().cache(point);
        m.forward_ids(&ids, &mut hooks).unwrap();
        let input = hooks
            .take_cache()
            .remove(&point)
            .unwrap()
            .squeeze(0)
            .unwrap();
        transcoder
            .encode(&input)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    let (from_head, from_whole) = (read(&head), read(&model));
    assert!(from_whole.iter().filter(|&&a| a > 0.0).count() > ids.len());
    assert_eq!(from_head, from_whole, "block 0's features");
}

#[test]
fn a_version_1_pack_loads_with_its_transcoders_read_before_the_gain() {
    // A version-1 pack's transcoders read ln2's output (after the gain and bias): make
    // one from the committed pack by unfolding each encoder, then load both.
    let files = files();
    let current = dir::load(&root()).unwrap();
    let mut old = files.clone();
    for (info, dictionary) in current
        .pack
        .manifest()
        .dictionaries
        .iter()
        .zip(&current.dictionaries)
    {
        let gpt2 = current
            .model
            .as_gpt2()
            .expect("the Brown pack holds a GPT-2");
        let ln = &gpt2.weights().blocks[info.layer].ln_2;
        let w_enc = dictionary
            .w_enc
            .broadcast_div(&ln.weight.unsqueeze(1).unwrap())
            .unwrap();
        let shift = ln
            .bias
            .unsqueeze(0)
            .unwrap()
            .matmul(&w_enc)
            .unwrap()
            .squeeze(0)
            .unwrap();
        let b_enc = (&dictionary.b_enc - shift).unwrap();
        let tensors = [
            ("W_enc", &w_enc),
            ("b_enc", &b_enc),
            ("W_dec", &dictionary.w_dec),
            ("b_dec", &dictionary.b_dec),
        ];
        old = replaced(
            &old,
            &info.weights,
            safetensors::serialize(tensors, None).unwrap(),
        );
    }
    let mut manifest: serde_json::Value = serde_json::from_slice(&old[MANIFEST_FILE]).unwrap();
    manifest["format_version"] = 1.into();
    old.insert(
        MANIFEST_FILE.to_owned(),
        serde_json::to_vec(&manifest).unwrap(),
    );

    let get = |path: &str| old.get(path).cloned().unwrap_or_default();
    let pack = Pack::parse_manifest(&get(MANIFEST_FILE)).unwrap();
    assert_eq!(pack.manifest().format_version, 1);
    let mut verified = PackFiles::default();
    for path in pack.required_paths() {
        verified.insert(pack.verify(&path, get(&path)).unwrap());
    }
    let loaded = pack.load(&verified).unwrap();
    let tokens = current.corpus.tokens[..40].to_vec();
    for (layer, (folded, dictionary)) in loaded
        .dictionaries
        .iter()
        .zip(&current.dictionaries)
        .enumerate()
    {
        let input = HookPoint::LnNormalized(layer, Norm::Ln2);
        let mut hooks = Hooks::none().cache(input);
        current.model.forward_ids(&tokens, &mut hooks).unwrap();
        let x = hooks.take_cache()[&input].squeeze(0).unwrap();
        let expected: Vec<Vec<f32>> = dictionary.encode(&x).unwrap().to_vec2().unwrap();
        let found: Vec<Vec<f32>> = folded.encode(&x).unwrap().to_vec2().unwrap();
        for (e, f) in expected.iter().flatten().zip(found.iter().flatten()) {
            assert!((e - f).abs() < 1e-3, "block {layer}: {e} vs {f}");
        }
    }
}

/// A copy of the default pack's required files in a fresh folder under `target`.
fn copy_of_pack(name: &str) -> PathBuf {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    if out.exists() {
        std::fs::remove_dir_all(&out).unwrap();
    }
    let pack = dir::open(&root()).unwrap();
    for path in pack
        .required_paths()
        .into_iter()
        .chain([MANIFEST_FILE.to_owned()])
    {
        let target = out.join(&path);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(root().join(&path), &target).unwrap();
    }
    out
}

#[test]
fn files_on_disk_are_sized_before_they_are_read() {
    let pack = dir::open(&root()).unwrap();
    let weights = pack.manifest().model.weights.clone();
    // Longer than the manifest says: refused from its size, with both numbers.
    let longer = copy_of_pack("pack-longer");
    let expected = std::fs::metadata(longer.join(&weights)).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(longer.join(&weights))
        .unwrap();
    file.set_len(expected + 10_000_000).unwrap();
    let error = dir::load(&longer).unwrap_err();
    assert!(
        matches!(&error, PackError::Size { path, expected: e, actual } if *path == weights && *e == expected && *actual == expected + 10_000_000),
        "{error}"
    );
    // A link to an endless device instead of a file: refused at once, never read.
    #[cfg(unix)]
    {
        let linked = copy_of_pack("pack-device");
        std::fs::remove_file(linked.join(&weights)).unwrap();
        std::os::unix::fs::symlink("/dev/zero", linked.join(&weights)).unwrap();
        let error = dir::load(&linked).unwrap_err().to_string();
        assert!(
            error.contains(&weights) && error.contains("not a regular file"),
            "{error}"
        );
    }
}

#[test]
fn a_corpus_index_whose_offsets_overflow_is_refused_not_wrapped() {
    let files = files();
    let pack = Pack::parse_manifest(&files[MANIFEST_FILE]).unwrap();
    let index_path = pack.manifest().corpus.index.clone();
    let mut index: serde_json::Value = serde_json::from_slice(&files[&index_path]).unwrap();
    index["documents"][0]["start"] = u64::MAX.into();
    index["documents"][0]["len"] = 2.into();
    let error = load(&replaced(
        &files,
        &index_path,
        serde_json::to_vec(&index).unwrap(),
    ))
    .unwrap_err()
    .to_string();
    assert!(
        error.contains(&index_path)
            && error.contains("spans 2 tokens from token 18446744073709551615"),
        "{error}"
    );
}

/// The prompts of `fixtures/make_brown_gguf_reference.py`, in its order.
const GGUF_REFERENCE_PROMPTS: [&str; 3] = [
    "The jury said that the city of Atlanta",
    "In the morning, she",
    "<|endoftext|>The men said that they",
];

/// transformers' own GGUF reader on the pack's model files, joined
/// (`fixtures/make_brown_gguf_reference.py`), gives the tokens and last-position logits that
/// Glassbox's does: the file is llama.cpp's GPT-2 layout as the field's tools read it.
#[test]
fn the_shipped_gguf_reads_as_transformers_reads_it() {
    use candle_core::{DType, Device};
    let reference = candle_core::safetensors::load(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/brown_gguf_reference.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let parts = [
        "model/model-00001-of-00002.gguf",
        "model/model-00002-of-00002.gguf",
    ]
    .map(|path| (path, std::fs::read(root().join(path)).unwrap()));
    let files = parts
        .each_ref()
        .map(|(path, bytes)| (*path, bytes.as_slice()));
    let (model, tokenizer) = glassbox_model::Model::from_gguf_files(&files).unwrap();
    for (i, prompt) in GGUF_REFERENCE_PROMPTS.iter().enumerate() {
        let ids = tokenizer.encode_ids(prompt).unwrap();
        let expected: Vec<u32> = reference[&format!("tokens_{i}")]
            .to_dtype(DType::U32)
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(ids, expected, "{prompt}");
        let logits = model.forward_ids(&ids, &mut Hooks::none()).unwrap();
        let last = logits.get(ids.len() - 1).unwrap();
        let diff: f32 = (last - &reference[&format!("logits_{i}")])
            .unwrap()
            .abs()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar()
            .unwrap();
        assert!(diff < 1e-3, "{prompt}: logits differ by {diff}");
    }
}

/// The tokenizer inside the pack's GGUF (rebuilt from `tokenizer.ggml.*`) tokenizes the
/// corpus as the build's `tokenizer.json` did: the first documents' stored ids, decoded
/// and encoded again, come back the same.
#[test]
fn the_shipped_gguf_tokenizes_the_corpus_as_the_build_did() {
    let loaded = dir::load(&root()).unwrap();
    let tokens = &loaded.corpus.tokens;
    let end = loaded.tokenizer.token_id("<|endoftext|>").unwrap();
    // The first 40 documents, each begun with <|endoftext|>.
    let cut = tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| **t == end)
        .nth(40)
        .map(|(i, _)| i)
        .unwrap();
    let text = loaded.tokenizer.decode(&tokens[..cut]).unwrap();
    assert!(text.len() > 100_000, "{} bytes", text.len());
    let again = loaded.tokenizer.encode_ids(&text).unwrap();
    let first_difference = again.iter().zip(&tokens[..cut]).position(|(a, b)| a != b);
    assert_eq!(first_difference, None);
    assert_eq!(again.len(), cut);
}
