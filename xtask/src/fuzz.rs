//! `cargo xtask fuzz [--runs N] [--seed S] [TARGET...]`: the parsers' fuzzer
//! (`crates/fuzz`), optimized and with overflow checks on (the `fuzz` profile: release
//! settings, so arithmetic that overflows panics as it does in the tests), 100 000
//! executions per target unless `--runs` says otherwise.

use anyhow::Result;

use crate::run::{cmd, run};

/// Executions per target when `--runs` is not given.
const DEFAULT_RUNS: &str = "100000";

/// Builds and runs the fuzzer with `args` (its own options and target names).
pub(crate) fn fuzz(args: &[String]) -> Result<()> {
    let mut command = cmd(
        "cargo",
        &[
            "run",
            "--profile",
            "fuzz",
            "--locked",
            "-p",
            "glassbox-fuzz",
            "--",
        ],
    );
    if !args.iter().any(|arg| arg == "--runs") {
        command.args(["--runs", DEFAULT_RUNS]);
    }
    run(command.args(args))
}
