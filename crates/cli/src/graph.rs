//! `glassbox graph`: the attribution graph of a prompt on a pack, pruned, written as
//! circuit-tracer / Neuronpedia graph JSON (computed by the lab, as the page does).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use glassbox_circuits::{AttributionOptions, Thresholds, threshold};
use glassbox_engine::now;
use glassbox_lab::Lab;
use glassbox_pack::dir;

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
    /// `max_feature_nodes`); every active feature when not given.
    #[arg(long)]
    max_feature_nodes: Option<usize>,
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
        max_feature_nodes: args.max_feature_nodes,
        ..AttributionOptions::default()
    };
    let started = Instant::now();
    let (file, nodes) = now(lab.graph(&args.text, thresholds, &options))
        .ok_or_else(|| anyhow!("the CPU engine's graph did not finish at once"))??;
    let took = started.elapsed();
    std::fs::write(&args.out, file.to_json()?)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "{}: {} tokens, {nodes} nodes ({} kept), {} edges kept, computed in {:.2} s",
        args.out.display(),
        file.metadata.prompt_tokens.len(),
        file.nodes.len(),
        file.links.len(),
        took.as_secs_f64()
    );
    Ok(())
}
