//! `glassbox graph`: the attribution graph of a prompt on a pack, pruned, written as
//! circuit-tracer / Neuronpedia graph JSON (computed by the lab, as the page does).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use glassbox_circuits::{AttributionOptions, Thresholds, threshold};
use glassbox_dict::Architecture;
use glassbox_engine::now;
use glassbox_lab::{Contrast, DOCUMENT_START, Lab, MAX_CIRCUIT_FEATURES};
use glassbox_pack::dir;

/// Memory a graph may take when the machine does not say what it has.
const DEFAULT_BUDGET: u64 = 8 << 30;

/// What to attribute and where to write it.
#[derive(Debug, clap::Args)]
pub(crate) struct GraphArgs {
    /// The pack (a folder with `manifest.json`).
    #[arg(long, default_value = "www/packs/brown")]
    pack: PathBuf,
    /// The prompt.
    #[arg(long)]
    text: String,
    /// Where to write the graph JSON.
    #[arg(long)]
    out: PathBuf,
    /// Keep nodes until this share of the influence on the logits is covered.
    #[arg(long, default_value_t = 0.8, value_parser = share("node"))]
    node_threshold: f32,
    /// Keep edges until this share of the edge scores is covered.
    #[arg(long, default_value_t = 0.98, value_parser = share("edge"))]
    edge_threshold: f32,
    /// Attribute at most this many feature nodes, the most influential (circuit-tracer's
    /// `max_feature_nodes`); the page's cap by default.
    #[arg(long, default_value_t = MAX_CIRCUIT_FEATURES, conflicts_with = "all_features")]
    max_feature_nodes: usize,
    /// Attribute every active feature (refused, with the estimate, when the graph would
    /// not fit in memory).
    #[arg(long)]
    all_features: bool,
    /// The memory a graph may take, in GB; by default what this machine has free.
    #[arg(long)]
    memory_gb: Option<f64>,
    /// Attribute a logit difference instead of the likeliest tokens: the next token
    /// (`--token`, by default the likeliest) rather than this one, e.g. " was".
    #[arg(long)]
    versus: Option<String>,
    /// With `--versus`: the token preferred (by default the model's likeliest).
    #[arg(long, requires = "versus")]
    token: Option<String>,
    /// Begin the prompt with `<|endoftext|>`, as circuit-tracer begins every prompt with
    /// its BOS, and leave that position's features and errors out of the graph as it does
    /// (a prompt that already begins with it is read so without this).
    #[arg(long)]
    bos: bool,
}

/// Reads a threshold, checked as the lab checks it.
fn share(what: &'static str) -> impl Fn(&str) -> Result<f32, String> + Clone {
    move |text| {
        let value: f32 = text.parse().map_err(|e| format!("{e}"))?;
        threshold(what, value).map_err(|e| e.to_string())
    }
}

pub(crate) fn graph(args: &GraphArgs) -> Result<()> {
    let loaded = dir::load(&args.pack)
        .with_context(|| format!("loading the pack at {}", args.pack.display()))?;
    let lab = Lab::from_pack(loaded)?;
    let thresholds = Thresholds {
        nodes: args.node_threshold,
        edges: args.edge_threshold,
    };
    let options = AttributionOptions {
        max_feature_nodes: (!args.all_features).then_some(args.max_feature_nodes),
        ..AttributionOptions::default()
    };
    let text = if args.bos && !args.text.starts_with(DOCUMENT_START) {
        format!("{DOCUMENT_START}{}", args.text)
    } else {
        args.text.clone()
    };
    let tokens = lab.prompt_ids(&text)?.len();
    let features = match options.max_feature_nodes {
        Some(cap) => cap.min(most_active_features(&lab, tokens)),
        None => most_active_features(&lab, tokens),
    };
    let needed = graph_bytes(&lab, tokens, features, options.max_logits);
    let budget = args
        .memory_gb
        .map_or_else(memory_budget, |gb| (gb.max(0.0) * 1e9) as u64);
    if needed > budget {
        anyhow::bail!(
            "a graph of {tokens} tokens with up to {features} features needs about {:.1} GB \
             (its dense matrices), more than the {:.1} GB it may take (--memory-gb, by default what is \
             free); lower --max-feature-nodes (the page uses {MAX_CIRCUIT_FEATURES}) or the prompt",
            needed as f64 / 1e9,
            budget as f64 / 1e9
        );
    }
    let started = Instant::now();
    let contrast = args.versus.as_ref().map(|versus| Contrast {
        token: args.token.clone(),
        versus: versus.clone(),
    });
    let graph = lab.graph(&text, thresholds, &options, contrast.as_ref());
    let (file, nodes, scores) =
        now(graph).ok_or_else(|| anyhow!("the CPU engine's graph did not finish at once"))??;
    let took = started.elapsed();
    std::fs::write(&args.out, file.to_json()?)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "{}: {} tokens, {nodes} nodes ({} kept), {} edges kept, computed in {:.2} s; \
         replacement score {:.3}, completeness {:.3}",
        args.out.display(),
        file.metadata.prompt_tokens.len(),
        file.nodes.len(),
        file.links.len(),
        took.as_secs_f64(),
        scores.replacement,
        scores.completeness
    );
    Ok(())
}

/// The most features that can be active over `tokens` tokens: a TopK transcoder's `k` per
/// position and block, any other's whole dictionary.
fn most_active_features(lab: &Lab, tokens: usize) -> usize {
    lab.dictionaries
        .iter()
        .map(|d| {
            let per_token = match d.config.architecture {
                Architecture::TopK => d.config.k.unwrap_or(d.config.d_sae),
                _ => d.config.d_sae,
            };
            per_token.saturating_mul(tokens)
        })
        .fold(0, usize::saturating_add)
}

/// An estimate of a graph's memory: its adjacency matrix over every node (features, one
/// error per block and token, the tokens, the logits) and the influence computed over
/// it, f32 each.
fn graph_bytes(lab: &Lab, tokens: usize, features: usize, logits: usize) -> u64 {
    let blocks = lab.model().dims().n_layer;
    let nodes = features
        .saturating_add(blocks.saturating_mul(tokens))
        .saturating_add(tokens)
        .saturating_add(logits) as u64;
    nodes.saturating_mul(nodes).saturating_mul(2 * 4)
}

/// The memory this machine has free (Linux's `MemAvailable`), else [`DEFAULT_BUDGET`].
fn memory_budget() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("MemAvailable:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .map_or(DEFAULT_BUDGET, |kib| kib * 1024)
}
