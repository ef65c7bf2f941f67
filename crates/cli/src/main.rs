//! `glassbox`: the engines and the pack builder from a terminal.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod forward;
mod gpu_check;
mod graph;
mod pack;

use gpu_check::Adapter;

/// Look inside a language model: the Glassbox engines from the command line.
#[derive(Debug, Parser)]
#[command(name = "glassbox", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a model on token ids or text: print the logits (--json) or each position's
    /// most likely next tokens.
    Forward(forward::ForwardArgs),
    /// The attribution graph of a prompt on a pack, as circuit-tracer / Neuronpedia JSON.
    Graph(graph::GraphArgs),
    /// Build packs.
    #[command(subcommand)]
    Pack(pack::PackCommand),
    /// Find a GPU adapter and check the GPU kernels against the CPU reference (candle-core),
    /// as the page does in a browser.
    GpuCheck {
        /// Which adapter to use.
        #[arg(long, value_enum, default_value_t = Adapter::Gpu)]
        adapter: Adapter,
        /// Seed of the random matrices.
        #[arg(long, default_value_t = 2026)]
        seed: u64,
    },
}

fn main() -> ExitCode {
    // Pass after pass reuses the last one's pages, and candle's spare threads leave the
    // cores to the next kernel (see `native_process`).
    #[allow(unsafe_code, reason = "first thing in `main`: no other thread yet")]
    // SAFETY: no other thread runs yet.
    let _prepared = unsafe { glassbox_model::native_process::prepare() };
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Forward(args) => forward::forward(&args),
        Command::Graph(args) => graph::graph(&args),
        Command::Pack(command) => pack::run(command),
        Command::GpuCheck { adapter, seed } => {
            pollster::block_on(gpu_check::gpu_check(adapter, seed))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("glassbox: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
