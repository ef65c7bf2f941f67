//! `glassbox forward` as other tools call it: its JSON against the reference logits, its
//! table for text, and one clear line for each kind of bad input.
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use candle_core::{DType, Device};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../model/tests/fixtures");

fn glassbox(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_glassbox"))
        .args(args)
        .output()
        .unwrap()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(FIXTURES).join(name)
}

/// A copy of a fixture model directory, to break.
fn copy_of(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    dir
}

/// Runs a command that must fail: exit code 1, and one line on stderr that contains `what`.
fn fails_with(args: &[&str], what: &str) {
    let output = glassbox(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "{args:?}: not one line: {stderr}"
    );
    assert!(
        stderr.starts_with("glassbox: ") && stderr.contains(what),
        "{args:?}: {stderr}"
    );
    assert!(output.stdout.is_empty(), "{args:?} printed to stdout");
}

#[test]
fn json_logits_match_the_reference() {
    let expected =
        candle_core::safetensors::load(fixture("tiny").join("expected.safetensors"), &Device::Cpu)
            .unwrap();
    let tokens: Vec<i64> = expected["tokens"].flatten_all().unwrap().to_vec1().unwrap();
    let list = tokens
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let output = glassbox(&[
        "forward",
        "--model",
        fixture("tiny").to_str().unwrap(),
        "--tokens",
        &list,
        "--json",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let rows: Vec<Vec<f32>> = serde_json::from_value(json["logits"].clone()).unwrap();
    let reference: Vec<Vec<f32>> = expected["logits"]
        .squeeze(0)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
        .to_vec2()
        .unwrap();
    assert_eq!(rows.len(), tokens.len());
    for (ours, theirs) in rows.iter().zip(&reference) {
        assert_eq!(ours.len(), 97);
        for (a, b) in ours.iter().zip(theirs) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }
}

#[test]
fn a_sharded_llama_folder_runs_and_prints_tokens_and_logits() {
    let folder = fixture("llama_mqa_bias_f16");
    let expected =
        candle_core::safetensors::load(folder.join("expected.safetensors"), &Device::Cpu).unwrap();
    let tokens: Vec<u32> = expected["tokens"]
        .to_dtype(DType::U32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let list = tokens
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let output = glassbox(&[
        "forward",
        "--model",
        folder.to_str().unwrap(),
        "--tokens",
        &list,
        "--json",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let printed: Vec<u32> = serde_json::from_value(json["tokens"].clone()).unwrap();
    assert_eq!(printed, tokens);
    let rows: Vec<Vec<f32>> = serde_json::from_value(json["logits"].clone()).unwrap();
    let reference: Vec<Vec<f32>> = expected["logits"].squeeze(0).unwrap().to_vec2().unwrap();
    assert_eq!(rows.len(), reference.len());
    for (ours, theirs) in rows.iter().zip(&reference) {
        for (a, b) in ours.iter().zip(theirs) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }
}

#[test]
fn text_shows_each_token_and_its_top_predictions() {
    let model = fixture("with_tokenizer");
    let output = glassbox(&[
        "forward",
        "--model",
        model.to_str().unwrap(),
        "--text",
        "The jury said",
        "--top",
        "3",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.len() >= 3, "{stdout}");
    assert!(lines[0].contains("\"The\""), "{stdout}");
    for line in &lines {
        let predictions = line.split('→').nth(1).unwrap();
        let probabilities: Vec<f32> = predictions
            .split(", ")
            .map(|p| p.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(probabilities.len(), 3, "{line}");
        assert!(probabilities.windows(2).all(|w| w[0] >= w[1]), "{line}");
        assert!(
            probabilities.iter().all(|p| (0.0..=1.0).contains(p)),
            "{line}"
        );
    }
}

#[test]
fn bad_input_gives_one_clear_line() {
    let tiny = fixture("tiny");
    let tiny = tiny.to_str().unwrap();
    fails_with(
        &["forward", "--model", "/no/such/dir", "--tokens", "1"],
        "no such file or folder",
    );
    fails_with(
        &["forward", "--model", "/dev/zero", "--tokens", "1"],
        "no such file or folder",
    );
    let llama = fixture("llama_gqa");
    fails_with(
        &[
            "forward",
            "--model",
            llama.to_str().unwrap(),
            "--text",
            "hello",
        ],
        "no tokenizer to read --text with",
    );
    fails_with(
        &[
            "forward",
            "--model",
            &format!("{tiny}/config.json"),
            "--tokens",
            "1",
        ],
        "config.json: not a GGUF file",
    );
    fails_with(
        &["forward", "--model", tiny, "--tokens", "1,abc"],
        "token `abc` is not a token id",
    );
    fails_with(
        &["forward", "--model", tiny, "--tokens", "1,97"],
        "token id 97 is out of range",
    );
    let long = vec!["1"; 25].join(",");
    fails_with(
        &["forward", "--model", tiny, "--tokens", &long],
        "more than the model's context of 24",
    );
    fails_with(
        &["forward", "--model", tiny, "--text", "hello"],
        "no tokenizer to read --text with",
    );

    // Copies of the tiny model, each broken in one way.
    let fails_after = |edit: &dyn Fn(&Path), what: &str| {
        let dir = copy_of("tiny");
        edit(dir.path());
        fails_with(
            &[
                "forward",
                "--model",
                dir.path().to_str().unwrap(),
                "--tokens",
                "1",
            ],
            what,
        );
    };
    let weights = |dir: &Path| dir.join("model.safetensors");
    fails_after(
        &|dir| std::fs::remove_file(weights(dir)).unwrap(),
        "model.safetensors",
    );
    fails_after(
        &|dir| {
            let bytes = std::fs::read(weights(dir)).unwrap();
            std::fs::write(weights(dir), &bytes[..bytes.len() - 100]).unwrap();
        },
        "bad weights",
    );
    fails_after(
        &|dir| {
            // A well-formed header that claims a 4 GB tensor in a file of a few bytes.
            let header = br#"{"wte.weight":{"dtype":"F32","shape":[99999999,9999],"data_offsets":[0,3999999600]}}"#;
            let mut file = (header.len() as u64).to_le_bytes().to_vec();
            file.extend_from_slice(header);
            std::fs::write(weights(dir), file).unwrap();
        },
        "bad weights",
    );
    let with_width = |width: &'static str| {
        move |dir: &Path| {
            let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
            let config = config.replace("\"n_embd\": 32", &format!("\"n_embd\": {width}"));
            std::fs::write(dir.join("config.json"), config).unwrap();
        }
    };
    fails_after(&with_width("30"), "n_head = 4 does not divide n_embd = 30");
    fails_after(
        &with_width("64"),
        "has shape [32], but the config implies [64]",
    );
}
