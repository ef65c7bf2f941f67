//! The engine's two wasm builds: one with relaxed SIMD, whose fused multiply-add the CPU
//! engine's matrix products use (`glassbox-model`'s `simd_tiles`), for the browsers that
//! have it (Chromium, Firefox), and one with simd128 alone for those that do not (Safari);
//! and the script expression that picks, in the browser, the build it can run.

use std::path::{Path, PathBuf};

/// Which SIMD a wasm build of the engine may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Simd {
    /// simd128 alone (`.cargo/config.toml`'s flags): every browser with wasm SIMD.
    Simd128,
    /// simd128 and relaxed SIMD.
    Relaxed,
}

/// The cargo `--config` that adds relaxed SIMD to the wasm32 flags (cargo joins the
/// command line's list to `.cargo/config.toml`'s).
const RELAXED_SIMD_CONFIG: &str =
    r#"target.wasm32-unknown-unknown.rustflags=["-C", "target-feature=+relaxed-simd"]"#;

/// A wasm module whose one function is `f32x4.relaxed_madd` of its three arguments: it
/// validates only where the browser has relaxed SIMD.
const RELAXED_SIMD_PROBE: [u8; 37] = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
    0x01, 0x08, 0x01, 0x60, 0x03, 0x7b, 0x7b, 0x7b, 0x01, 0x7b, // type: (v128 ×3) → v128
    0x03, 0x02, 0x01, 0x00, // one function of that type
    0x0a, 0x0d, 0x01, 0x0b, 0x00, // its code: 11 bytes, no locals
    0x20, 0x00, 0x20, 0x01, 0x20, 0x02, // local.get 0, 1, 2
    0xfd, 0x85, 0x02, // f32x4.relaxed_madd
    0x0b, // end
];

impl Simd {
    /// What this build adds to `cargo build`'s arguments, for `target` (cargo's target
    /// folder): a build with other flags gets its own folder, or each build would undo the
    /// other's.
    pub(crate) fn cargo_args(self, target: &Path) -> Vec<String> {
        match self {
            Self::Simd128 => Vec::new(),
            Self::Relaxed => vec![
                "--config".to_owned(),
                RELAXED_SIMD_CONFIG.to_owned(),
                "--target-dir".to_owned(),
                self.target_dir(target).display().to_string(),
            ],
        }
    }

    /// Where this build's artifacts go, under cargo's target folder `target`.
    pub(crate) fn target_dir(self, target: &Path) -> PathBuf {
        match self {
            Self::Simd128 => target.to_path_buf(),
            Self::Relaxed => target.join("relaxed-simd"),
        }
    }

    /// The suffix of this build's file names.
    pub(crate) fn suffix(self) -> &'static str {
        match self {
            Self::Simd128 => "",
            Self::Relaxed => "-relaxed-simd",
        }
    }
}

/// A script expression, for a page or a worker: `relaxed` where the browser has relaxed
/// SIMD, otherwise `simd128` (both written as JS string literals).
pub(crate) fn pick(relaxed: &str, simd128: &str) -> String {
    let bytes: Vec<String> = RELAXED_SIMD_PROBE.iter().map(u8::to_string).collect();
    format!(
        "(WebAssembly.validate(new Uint8Array([{}])) ? {relaxed:?} : {simd128:?})",
        bytes.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_is_a_module_of_the_size_it_says() {
        // The code section's size byte counts what follows it.
        let code = RELAXED_SIMD_PROBE
            .iter()
            .position(|&b| b == 0x0a)
            .expect("a code section");
        assert_eq!(
            usize::from(RELAXED_SIMD_PROBE[code + 1]),
            RELAXED_SIMD_PROBE.len() - code - 2
        );
        let expression = pick("a", "b");
        assert!(expression.starts_with("(WebAssembly.validate(new Uint8Array([0,97,115,109,"));
        assert!(expression.ends_with(r#"])) ? "a" : "b")"#));
    }

    #[test]
    fn only_the_relaxed_build_changes_cargos_flags_and_folder() {
        let target = Path::new("/t");
        assert!(Simd::Simd128.cargo_args(target).is_empty());
        assert_eq!(Simd::Simd128.target_dir(target), target);
        let args = Simd::Relaxed.cargo_args(target);
        assert!(args.iter().any(|a| a.contains("+relaxed-simd")));
        assert_eq!(args.last().map(String::as_str), Some("/t/relaxed-simd"));
    }
}
