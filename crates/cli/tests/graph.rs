//! `glassbox graph` on the committed default pack writes a graph file that reads back.
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

use std::path::Path;
use std::process::Command;

use glassbox_circuits::GraphFile;

/// `glassbox graph` on the default pack for `text`, written to `file`, with `extra`
/// arguments.
fn glassbox_graph(file: &Path, text: &str, extra: &[&str]) -> std::process::Output {
    let pack = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../www/packs/brown");
    Command::new(env!("CARGO_BIN_EXE_glassbox"))
        .args(["graph", "--pack"])
        .arg(&pack)
        .args(["--text", text, "--out"])
        .arg(file)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn writes_a_graph_file_that_reads_back() {
    let pack = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../www/packs/brown");
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("graph.json");
    let run = glassbox_graph(&file, "In the morning the jury", &[]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let graph = GraphFile::parse(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(graph.metadata.prompt, "In the morning the jury");
    assert_eq!(graph.metadata.prompt_tokens.len(), 5);
    assert!(graph.nodes.iter().any(|n| n.feature_type == "logit"));
    assert!(!graph.links.is_empty());
    // Said in the file: position embeddings are input nodes beside the tokens.
    assert_eq!(
        graph.metadata.input_nodes,
        ["token embeddings", "position embeddings"]
    );
    assert!(graph.nodes.iter().any(|n| n.node_id.starts_with("P_")));

    // With a cap, at most that many features (5 tokens have 640 active ones).
    let capped = Command::new(env!("CARGO_BIN_EXE_glassbox"))
        .args(["graph", "--pack"])
        .arg(&pack)
        .args([
            "--text",
            "In the morning the jury",
            "--max-feature-nodes",
            "40",
            "--node-threshold",
            "1",
            "--edge-threshold",
            "1",
            "--out",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(capped.status.success());
    let graph = GraphFile::parse(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let features = graph
        .nodes
        .iter()
        .filter(|n| n.feature_type == "cross layer transcoder")
        .count();
    assert!((1..=40).contains(&features), "{features}");
    assert!(graph.metadata.active_features.unwrap() > 40);

    // Every feature of a long prompt in too little memory: refused before any work, with
    // the estimate.
    let long = "the jury said that the city of Atlanta ".repeat(12);
    let too_big = Command::new(env!("CARGO_BIN_EXE_glassbox"))
        .args(["graph", "--pack"])
        .arg(&pack)
        .args([
            "--text",
            &long,
            "--all-features",
            "--memory-gb",
            "0.5",
            "--out",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!too_big.status.success());
    let stderr = String::from_utf8_lossy(&too_big.stderr);
    assert!(
        stderr.contains("needs about") && stderr.contains("more than the 0.5 GB"),
        "{stderr}"
    );

    let refused = Command::new(env!("CARGO_BIN_EXE_glassbox"))
        .args(["graph", "--pack"])
        .arg(&pack)
        .args(["--text", "x", "--edge-threshold", "1.5", "--out"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--edge-threshold"));
}

#[test]
fn versus_attributes_a_logit_difference() {
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("graph.json");
    let run = |extra: &[&str]| glassbox_graph(&file, "The men said that they", extra);
    let done = run(&["--token", " were", "--versus", " was"]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let graph = GraphFile::parse(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let logits: Vec<_> = graph
        .nodes
        .iter()
        .filter(|n| n.feature_type == "logit")
        .collect();
    assert_eq!(logits.len(), 1);
    assert!(logits[0].is_target_logit);
    assert!(
        logits[0].clerp.contains("\" were\" rather than \" was\""),
        "{}",
        logits[0].clerp
    );
    // Not one token, or the same token twice: refused with the reason.
    for (extra, reason) in [
        (["--token", " were", "--versus", " was not"], "is 2 tokens"),
        (
            ["--token", " was", "--versus", " was"],
            "two different tokens",
        ),
    ] {
        let refused = run(&extra);
        assert!(!refused.status.success());
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(stderr.contains(reason), "{stderr}");
    }
}

/// `--bos` begins the prompt with `<|endoftext|>` as circuit-tracer does, and the graph
/// leaves that position's features out: the same graph as a prompt typed with it.
#[test]
fn bos_begins_the_prompt_as_circuit_tracer_does() {
    let out = tempfile::tempdir().unwrap();
    let graph_of = |text: &str, extra: &[&str]| {
        let file = out.path().join("graph.json");
        let run = glassbox_graph(&file, text, extra);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        GraphFile::parse(&std::fs::read_to_string(&file).unwrap()).unwrap()
    };
    let plain = graph_of("The jury said", &[]);
    let bos = graph_of("The jury said", &["--bos"]);
    let typed = graph_of("<|endoftext|>The jury said", &[]);
    let at_first = |g: &GraphFile| {
        g.nodes
            .iter()
            .filter(|n| n.ctx_idx == 0 && n.feature_type == "cross layer transcoder")
            .count()
    };
    assert_eq!(plain.metadata.prompt_tokens.len(), 3);
    assert_eq!(bos.metadata.prompt_tokens.len(), 4);
    assert_eq!(bos.metadata.prompt_tokens[0], "<|endoftext|>");
    assert!(at_first(&plain) > 0);
    assert_eq!(at_first(&bos), 0);
    assert_eq!(bos.nodes, typed.nodes);
    assert_eq!(bos.links, typed.links);
}
