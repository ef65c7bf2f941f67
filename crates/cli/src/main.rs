//! `glassbox`: the engines and the pack builder from a terminal.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use glassbox_gpu::check::{MATMUL_CHECK_SHAPES, check_matmul};
use glassbox_gpu::matmul::MatmulKernel;
use glassbox_gpu::{AdapterPreference, GpuContext};

/// Look inside a language model: the Glassbox engines from the command line.
#[derive(Debug, Parser)]
#[command(name = "glassbox", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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

/// The adapter choice on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Adapter {
    /// The fastest adapter there is.
    Gpu,
    /// A software adapter such as lavapipe.
    Software,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::GpuCheck { adapter, seed } => pollster::block_on(gpu_check(adapter, seed)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("glassbox: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn gpu_check(adapter: Adapter, seed: u64) -> Result<()> {
    let preference = match adapter {
        Adapter::Gpu => AdapterPreference::HighPerformance,
        Adapter::Software => AdapterPreference::Software,
    };
    let ctx = GpuContext::new(preference).await?;
    println!("adapter: {}", ctx.adapter());
    let kernel = MatmulKernel::new(&ctx).await?;
    let checks = check_matmul(&ctx, &kernel, &MATMUL_CHECK_SHAPES, seed).await?;
    println!(
        "{:<18} {:>12} {:>12}  result",
        "shape", "max error", "allowed"
    );
    for check in &checks {
        println!(
            "{:<18} {:>12.2e} {:>12.2e}  {}",
            check.shape.to_string(),
            check.max_abs_error,
            check.tolerance,
            if check.passed() { "pass" } else { "FAIL" }
        );
    }
    let failed = checks.iter().filter(|c| !c.passed()).count();
    anyhow::ensure!(
        failed == 0,
        "{failed} of {} kernel checks failed",
        checks.len()
    );
    println!("kernel check passed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
