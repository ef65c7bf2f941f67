//! `glassbox gpu-check`: find a GPU and check the kernels against the CPU reference.

use anyhow::Result;
use clap::ValueEnum;
use glassbox_gpu::check::{MATMUL_CHECK_SHAPES, check_matmul};
use glassbox_gpu::matmul::MatmulKernel;
use glassbox_gpu::{AdapterPreference, GpuContext};

/// The adapter choice on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Adapter {
    /// The fastest adapter there is.
    Gpu,
    /// A software adapter such as lavapipe.
    Software,
}

pub(crate) async fn gpu_check(adapter: Adapter, seed: u64) -> Result<()> {
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
