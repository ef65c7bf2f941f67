//! `glassbox pack build` (the default pack, from a clean machine), `glassbox pack verify`
//! and `glassbox pack upgrade` (an older pack's files rewritten in the current format).

use std::path::PathBuf;

use anyhow::Result;
use glassbox_build::pipeline::{BuildOptions, build};

/// Pack commands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum PackCommand {
    /// Build the default pack: the Brown Corpus, a BPE tokenizer, a GPT-2 trained on it.
    /// Each stage's output is kept in --work, so an interrupted build resumes.
    Build {
        /// The pack folder to write.
        #[arg(long, default_value = "www/packs/brown")]
        out: PathBuf,
        /// Scratch space: downloads, checkpoints, intermediate files.
        #[arg(long, default_value = "target/pack-build")]
        work: PathBuf,
        /// Seed of everything random.
        #[arg(long, default_value_t = 2026)]
        seed: u64,
        /// Model training steps (32 sequences of 128 tokens each).
        #[arg(long, default_value_t = 1200)]
        steps: usize,
        /// Stop model training after this step; the next run resumes from there.
        #[arg(long)]
        stop_after: Option<usize>,
    },
    /// Check every file of a pack against its manifest (sizes and SHA-256), then load it.
    Verify {
        /// The pack folder.
        #[arg(default_value = "www/packs/brown")]
        pack: PathBuf,
    },
    /// Rewrite a version-1 pack as version 2, in place: each transcoder then reads
    /// `ln2.hook_normalized` before the LayerNorm's gain and bias, as TransformerLens
    /// defines it (the gain and bias folded into its encoder: the same features), and the
    /// manifest's sizes and hashes follow.
    Upgrade {
        /// The pack folder.
        #[arg(default_value = "www/packs/brown")]
        pack: PathBuf,
    },
}

pub(crate) fn run(command: PackCommand) -> Result<()> {
    match command {
        PackCommand::Build {
            out,
            work,
            seed,
            steps,
            stop_after,
        } => {
            let summary = build(&BuildOptions {
                out: out.clone(),
                work,
                seed,
                steps,
                stop_after,
            })?;
            println!("\nheld-out loss:");
            for loss in &summary.model.held_out {
                println!(
                    "  {:<20} {:.3} nats/token  {:.3} bits/byte",
                    loss.name, loss.nats_per_token, loss.bits_per_byte
                );
            }
            println!("\nsamples:");
            for (prompt, continuation) in &summary.model.samples {
                println!("  {prompt}|{continuation}");
            }
            let d = &summary.dictionaries;
            println!("\ntranscoders (held-out):");
            for layer in &d.layers {
                println!(
                    "  block {}: FVU {:.3}, mean L0 {:.1}, dead {:.1}%, loss with this MLP replaced {:.3}",
                    layer.layer,
                    layer.fvu,
                    layer.mean_l0,
                    100.0 * layer.dead_fraction,
                    layer.loss_this_layer_spliced
                );
            }
            println!(
                "  loss: model {:.3}, every MLP replaced {:.3}, replaced with error terms {:.3}",
                d.loss_model, d.loss_all_spliced, d.loss_all_spliced_with_errors
            );
            let bytes: u64 = summary.manifest.files.iter().map(|f| f.bytes).sum();
            println!(
                "\nwrote {} ({} files, {:.1} MB)",
                out.display(),
                summary.manifest.files.len() + 1,
                bytes as f64 / 1e6
            );
            Ok(())
        }
        PackCommand::Verify { pack } => {
            let files = glassbox_pack::dir::verify_all(&pack)?;
            let loaded = glassbox_pack::dir::load(&pack)?;
            let features: usize = loaded.dictionaries.iter().map(|d| d.config.d_sae).sum();
            println!(
                "{}: {files} files match the manifest; model of {} blocks, {} features, {} corpus tokens",
                pack.display(),
                loaded.model.config().n_layer,
                features,
                loaded.corpus.tokens.len()
            );
            Ok(())
        }
        PackCommand::Upgrade { pack } => upgrade(&pack),
    }
}

/// See [`PackCommand::Upgrade`].
fn upgrade(root: &std::path::Path) -> Result<()> {
    glassbox_pack::dir::verify_all(root)?;
    // Loading a version-1 pack folds its transcoders: they are what is written.
    let loaded = glassbox_pack::dir::load(root)?;
    let mut manifest = loaded.pack.manifest().clone();
    if manifest.format_version == glassbox_pack::FORMAT_VERSION {
        println!(
            "{}: already version {}",
            root.display(),
            manifest.format_version
        );
        return Ok(());
    }
    for (info, dictionary) in manifest.dictionaries.iter().zip(&loaded.dictionaries) {
        let folder = root.join(&info.weights);
        let folder = folder
            .parent()
            .ok_or_else(|| anyhow::anyhow!("{}: no folder", info.weights))?;
        glassbox_build::transcoder::save(dictionary, folder)?;
    }
    for file in &mut manifest.files {
        let bytes = std::fs::read(root.join(&file.path))?;
        file.bytes = bytes.len() as u64;
        file.sha256 = glassbox_pack::sha256_hex(&bytes);
    }
    manifest.format_version = glassbox_pack::FORMAT_VERSION;
    let mut text = serde_json::to_string_pretty(&manifest)?;
    text.push('\n');
    std::fs::write(root.join(glassbox_pack::MANIFEST_FILE), text)?;
    let files = glassbox_pack::dir::verify_all(root)?;
    println!(
        "{}: version {}, {files} files match the manifest; {} transcoders read before the LayerNorm's gain",
        root.display(),
        manifest.format_version,
        loaded.dictionaries.len()
    );
    Ok(())
}
