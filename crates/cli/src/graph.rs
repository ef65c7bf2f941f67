//! `glassbox graph`: the attribution graph of a prompt on a pack, pruned, written as
//! circuit-tracer / Neuronpedia graph JSON.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use glassbox_circuits::{
    AttributionOptions, ExportContext, GraphFile, Influence, Replacement, Thresholds, attribute,
};
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
    #[arg(long, default_value_t = 0.8)]
    node_threshold: f32,
    /// Keep edges until this share of the edge scores is covered.
    #[arg(long, default_value_t = 0.98)]
    edge_threshold: f32,
    /// Attribute at most this many feature nodes, the most influential (circuit-tracer's
    /// `max_feature_nodes`); every active feature when not given.
    #[arg(long)]
    max_feature_nodes: Option<usize>,
}

pub(crate) fn graph(args: &GraphArgs) -> Result<()> {
    for (name, value) in [
        ("--node-threshold", args.node_threshold),
        ("--edge-threshold", args.edge_threshold),
    ] {
        if !(0.0..=1.0).contains(&value) {
            bail!("{name} must be between 0 and 1, not {value}");
        }
    }
    let loaded = dir::load(&args.pack)
        .with_context(|| format!("loading the pack at {}", args.pack.display()))?;
    let tokens = loaded.tokenizer.encode_ids(&args.text)?;
    if tokens.is_empty() {
        bail!("the prompt has no tokens");
    }
    let n_positions = loaded.model.config().n_positions;
    if tokens.len() > n_positions {
        bail!(
            "the prompt is {} tokens long; this model reads at most {n_positions}",
            tokens.len()
        );
    }
    let started = Instant::now();
    let transcoders: Vec<_> = loaded.dictionaries.into_iter().map(Arc::new).collect();
    let replacement = Replacement::trace(&loaded.model, &transcoders, &tokens)?;
    let options = AttributionOptions {
        max_feature_nodes: args.max_feature_nodes,
        ..AttributionOptions::default()
    };
    let graph = attribute(&loaded.model, &replacement, &options)?;
    let thresholds = Thresholds {
        nodes: args.node_threshold,
        edges: args.edge_threshold,
    };
    let pruned = Influence::of(&graph).prune(&graph, thresholds);
    let took = started.elapsed();
    let token_text = |t: u32| {
        loaded
            .tokenizer
            .token_text(t)
            .unwrap_or_else(|_| format!("[{t}]"))
    };
    let label = |l: usize, f: usize| {
        loaded
            .labels
            .layers
            .get(l)
            .and_then(|layer| layer.get(f))
            .map_or_else(String::new, |entry| entry.0.clone())
    };
    let manifest = loaded.pack.manifest();
    let context = ExportContext {
        slug: &slug(&args.text),
        scan: &manifest.name,
        prompt: &args.text,
        d_sae: transcoders.first().map_or(0, |t| t.config.d_sae),
        n_layer: loaded.model.config().n_layer,
        token_text: &token_text,
        label: &label,
    };
    let file = GraphFile::export(&graph, &pruned, thresholds, &context);
    std::fs::write(&args.out, file.to_json()?)
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "{}: {} tokens, {} nodes ({} kept), {} edges kept, computed in {:.2} s",
        args.out.display(),
        tokens.len(),
        graph.len(),
        file.nodes.len(),
        file.links.len(),
        took.as_secs_f64()
    );
    Ok(())
}

/// A short name from the prompt: its first words, lower case, joined by dashes.
fn slug(text: &str) -> String {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(6)
        .map(str::to_lowercase)
        .collect();
    if words.is_empty() {
        "graph".to_owned()
    } else {
        words.join("-")
    }
}
