//! `glassbox pack build`: build the default pack from a clean machine.

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
            let report = build(&BuildOptions {
                out: out.clone(),
                work,
                seed,
                steps,
                stop_after,
            })?;
            println!("\nheld-out loss:");
            for loss in &report.held_out {
                println!(
                    "  {:<20} {:.3} nats/token  {:.3} bits/byte",
                    loss.name, loss.nats_per_token, loss.bits_per_byte
                );
            }
            println!("\nsamples:");
            for (prompt, continuation) in &report.samples {
                println!("  {prompt}|{continuation}");
            }
            println!("\nwrote {}", out.join("model").display());
            Ok(())
        }
    }
}
