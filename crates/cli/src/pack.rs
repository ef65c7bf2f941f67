//! `glassbox pack build` (the default pack, from a clean machine), `glassbox pack verify`
//! and `glassbox pack upgrade` (an older pack's files rewritten in the current format).

use std::path::PathBuf;

use anyhow::Result;
use glassbox_build::dictionaries::DictionaryReport;
use glassbox_build::pipeline::{BuildOptions, build};
use glassbox_build::ship::QuantizationReport;
use glassbox_build::smollm2::{self, SmolLm2Options};

/// Pack commands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum PackCommand {
    /// Build a pack. The default (`--preset brown`): the Brown Corpus, a BPE tokenizer, a
    /// GPT-2 trained on it. `--preset smollm2-135m`: SmolLM2-135M-Instruct with a
    /// transcoder for each of its 30 blocks (hours on a CPU). Each stage's output is kept
    /// in --work, so an interrupted build resumes where it stopped.
    Build {
        /// Which pack.
        #[arg(long, value_enum, default_value_t = Preset::Brown)]
        preset: Preset,
        /// The pack folder to write [default: www/packs/brown, or
        /// target/packs/smollm2-135m].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Scratch space: downloads, checkpoints, intermediate files [default:
        /// target/pack-build, or target/pack-build/smollm2-135m].
        #[arg(long)]
        work: Option<PathBuf>,
        /// Seed of everything random.
        #[arg(long, default_value_t = 2026)]
        seed: u64,
        /// Training steps: of the model (32 sequences of 128 tokens each) for brown
        /// [default: 1200]; of the transcoders (8 windows of 128 tokens) for
        /// smollm2-135m [default: 2400].
        #[arg(long)]
        steps: Option<usize>,
        /// Stop training after this step; the next run resumes from there.
        #[arg(long)]
        stop_after: Option<usize>,
    },
    /// Check every file of a pack against its manifest (sizes and SHA-256), then load it.
    Verify {
        /// The pack folder.
        #[arg(default_value = "www/packs/brown")]
        pack: PathBuf,
    },
    /// List the lessons in a pack's `lessons/` folder in its manifest (each checked to read
    /// as a lesson first): for lessons written after the pack was built.
    Lessons {
        /// The pack folder.
        pack: PathBuf,
    },
    /// Rewrite an older pack as the current version, in place: a version-1 pack's
    /// transcoders then read
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
            preset: Preset::Smollm2_135m,
            out,
            work,
            seed,
            steps,
            stop_after,
        } => build_smollm2(out, work, seed, steps, stop_after),
        PackCommand::Build {
            preset: Preset::Brown,
            out,
            work,
            seed,
            steps,
            stop_after,
        } => {
            let out = out.unwrap_or_else(|| PathBuf::from("www/packs/brown"));
            let work = work.unwrap_or_else(|| PathBuf::from("target/pack-build"));
            let steps = steps.unwrap_or(1200);
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
            print_transcoder_report(&summary.dictionaries);
            print_quantization_report(&summary.quantization);
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
                loaded.model.dims().n_layer,
                features,
                loaded.corpus.tokens.len()
            );
            Ok(())
        }
        PackCommand::Upgrade { pack } => upgrade(&pack),
        PackCommand::Lessons { pack } => lessons(&pack),
    }
}

/// The transcoders' held-out measurements, one line per block.
fn print_transcoder_report(d: &DictionaryReport) {
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
}

/// What shipping in 8 bits costs, as `model/quantization.json` records it.
fn print_quantization_report(q: &QuantizationReport) {
    println!(
        "\nshipped in 8 bits ({} held-out tokens): loss {:.4} → {:.4} nats/token, KL {:.6} nats, \
         same likeliest token {:.1}%, largest logit change {:.3}",
        q.tokens,
        q.nats_f16,
        q.nats_8bit,
        q.kl_nats,
        100.0 * q.top1_agreement,
        q.max_logit_change
    );
    for t in &q.transcoders {
        println!(
            "  block {}: FVU {:.4} → {:.4}",
            t.layer, t.fvu_f16, t.fvu_8bit
        );
    }
}

/// The packs `glassbox pack build` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Preset {
    /// The default pack: a GPT-2 trained here on the Brown Corpus.
    Brown,
    /// SmolLM2-135M-Instruct with a transcoder per block.
    #[value(name = "smollm2-135m")]
    Smollm2_135m,
}

/// `glassbox pack build --preset smollm2-135m`.
fn build_smollm2(
    out: Option<PathBuf>,
    work: Option<PathBuf>,
    seed: u64,
    steps: Option<usize>,
    stop_after: Option<usize>,
) -> Result<()> {
    let preset = smollm2::PRESET;
    let options = SmolLm2Options {
        out: out.unwrap_or_else(|| PathBuf::from(format!("target/packs/{preset}"))),
        work: work.unwrap_or_else(|| PathBuf::from(format!("target/pack-build/{preset}"))),
        transcoders: smollm2::transcoder_config(seed, steps.unwrap_or(2400)),
        stop_after,
    };
    let Some(summary) = smollm2::build(&options)? else {
        println!("stopped as asked; run the same command again to resume");
        return Ok(());
    };
    print_transcoder_report(&summary.report);
    println!(
        "\nattribution graphs (at most {} features):",
        glassbox_build::graph_report::MAX_FEATURES
    );
    for g in &summary.graphs {
        println!(
            "  {:?} → {:?} ({:.2}): {} tokens, {} active features, replacement {:.3}, completeness {:.3}",
            g.prompt,
            g.top_logit.0,
            g.top_logit.1,
            g.tokens,
            g.active_features,
            g.replacement,
            g.completeness
        );
    }
    let bytes: u64 = summary.manifest.files.iter().map(|f| f.bytes).sum();
    println!(
        "\nwrote {} ({} files, {:.1} MB)",
        options.out.display(),
        summary.manifest.files.len() + 1,
        bytes as f64 / 1e6
    );
    Ok(())
}

/// See [`PackCommand::Lessons`].
fn lessons(root: &std::path::Path) -> Result<()> {
    let folder = root.join(glassbox_build::assemble::LESSONS_DIR);
    if let Ok(entries) = std::fs::read_dir(&folder) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json") {
                let bytes = std::fs::read(&path)?;
                glassbox_lab::Lesson::parse(&bytes)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            }
        }
    }
    let listed = glassbox_build::assemble::relist_lessons(root)?;
    println!(
        "{}: {} lesson{} listed{}",
        root.display(),
        listed.len(),
        if listed.len() == 1 { "" } else { "s" },
        if listed.is_empty() {
            String::new()
        } else {
            format!(": {}", listed.join(", "))
        }
    );
    Ok(())
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
