//! The page's release build, the one `cargo xtask serve` serves and `cargo xtask test`
//! tests: both wasm binaries of `www` built for the browser, their JS glue made by
//! wasm-bindgen, shrunk by wasm-opt, and the page, its styles, icon, service worker and
//! the default pack laid out in `target/dist`.
//!
//! The page's own files get content-hashed names, so a browser never mixes an old one
//! with a new page; the engine worker's keep fixed names (the page asks for
//! `glassbox-worker_loader.js`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::run::{cmd, run};
use crate::tools::{WASM_TARGET, tools_path};
use crate::workspace_root;

/// The cargo profile of the page (`Cargo.toml`: small and fast wasm).
const PROFILE: &str = "release-wasm";
/// The page's binary: the yew app.
const PAGE: &str = "glassbox-web";
/// The engine worker's binary.
const WORKER: &str = "glassbox-worker";
/// Where the page's template, styles and static files are.
const WWW: &str = "www";
/// Where `index.html` says the page's script goes.
const SCRIPT_MARKER: &str = "<!-- the page's script -->";

/// The folder the page is built into.
pub(crate) fn dist_dir() -> PathBuf {
    workspace_root().join("target/dist")
}

/// Builds the page into [`dist_dir`] (replacing what was there once the new build is
/// complete).
pub(crate) fn build() -> Result<()> {
    let root = workspace_root();
    run(&mut cmd(
        "cargo",
        &[
            "build",
            "--locked",
            "--package",
            PAGE,
            "--bins",
            "--target",
            WASM_TARGET,
            "--profile",
            PROFILE,
        ],
    ))?;
    let target = target_dir();
    let binaries = target.join(WASM_TARGET).join(PROFILE);
    let staging = root.join("target/dist.staging");
    if staging.exists() {
        std::fs::remove_dir_all(&staging).context("clearing target/dist.staging")?;
    }
    std::fs::create_dir_all(&staging).context("creating target/dist.staging")?;

    bindgen(
        &binaries.join(format!("{PAGE}.wasm")),
        "web",
        &staging,
        PAGE,
    )?;
    bindgen(
        &binaries.join(format!("{WORKER}.wasm")),
        "no-modules",
        &staging,
        WORKER,
    )?;
    for name in [PAGE, WORKER] {
        optimize(&staging.join(format!("{name}_bg.wasm")))?;
    }
    std::fs::write(
        staging.join(format!("{WORKER}_loader.js")),
        format!(r#"importScripts("./{WORKER}.js");wasm_bindgen("./{WORKER}_bg.wasm");"#),
    )
    .context("writing the worker's loader")?;

    // The page's files under content-hashed names.
    let glue = std::fs::read(staging.join(format!("{PAGE}.js")))?;
    let module = std::fs::read(staging.join(format!("{PAGE}_bg.wasm")))?;
    let hashed = format!("{PAGE}-{}", short_hash(&[&glue, &module]));
    std::fs::rename(
        staging.join(format!("{PAGE}.js")),
        staging.join(format!("{hashed}.js")),
    )?;
    std::fs::rename(
        staging.join(format!("{PAGE}_bg.wasm")),
        staging.join(format!("{hashed}_bg.wasm")),
    )?;
    let www = root.join(WWW);
    let mut html =
        std::fs::read_to_string(www.join("index.html")).context("reading www/index.html")?;
    for asset in ["style.css", "favicon.svg"] {
        let bytes =
            std::fs::read(www.join(asset)).with_context(|| format!("reading www/{asset}"))?;
        let (stem, extension) = asset.split_once('.').unwrap_or((asset, ""));
        let name = format!("{stem}-{}.{extension}", short_hash(&[&bytes]));
        std::fs::write(staging.join(&name), &bytes)?;
        let reference = format!("href=\"{asset}\"");
        if !html.contains(&reference) {
            bail!("www/index.html does not link {asset} as {reference}");
        }
        html = html.replace(&reference, &format!("href=\"./{name}\""));
    }
    if !html.contains(SCRIPT_MARKER) {
        bail!("www/index.html has no `{SCRIPT_MARKER}` for the page's script");
    }
    html = html.replace(SCRIPT_MARKER, &page_script(&hashed));
    std::fs::write(staging.join("index.html"), html)?;
    std::fs::copy(www.join("sw.js"), staging.join("sw.js")).context("copying www/sw.js")?;
    copy_dir(&www.join("packs"), &staging.join("packs"))?;

    let dist = dist_dir();
    if dist.exists() {
        std::fs::remove_dir_all(&dist).context("clearing target/dist")?;
    }
    std::fs::rename(&staging, &dist).context("moving the build to target/dist")?;
    println!("the page is built in {}", dist.display());
    Ok(())
}

/// The script that starts the page, and hints that fetch its JS and wasm early.
fn page_script(hashed: &str) -> String {
    format!(
        r#"<link rel="modulepreload" href="./{hashed}.js" />
    <link rel="preload" href="./{hashed}_bg.wasm" as="fetch" type="application/wasm" crossorigin />
    <script type="module">
      import init from './{hashed}.js';
      await init({{ module_or_path: './{hashed}_bg.wasm' }});
    </script>"#
    )
}

/// wasm-bindgen's JS glue for `wasm` (for `target` `web` or `no-modules`) into `out`.
fn bindgen(wasm: &Path, target: &str, out: &Path, name: &str) -> Result<()> {
    run(cmd(
        "wasm-bindgen",
        &[
            &format!("--target={target}"),
            &format!("--out-dir={}", out.display()),
            &format!("--out-name={name}"),
            "--no-typescript",
            &wasm.display().to_string(),
        ],
    )
    .env("PATH", tools_path()))
}

/// Shrinks `wasm` in place with wasm-opt (`-Os`).
fn optimize(wasm: &Path) -> Result<()> {
    let optimized = wasm.with_extension("opt.wasm");
    run(cmd(
        "wasm-opt",
        &[
            &format!("--output={}", optimized.display()),
            "-Os",
            &wasm.display().to_string(),
        ],
    )
    .env("PATH", tools_path()))?;
    std::fs::rename(&optimized, wasm)
        .with_context(|| format!("replacing {} with its optimized copy", wasm.display()))
}

/// The first 16 hex digits of the SHA-256 of `parts`, in order.
fn short_hash(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher
        .finalize()
        .iter()
        .take(8)
        .fold(String::new(), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

/// Cargo's target folder (`CARGO_TARGET_DIR`, or `target` in the workspace).
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// Copies the folder `from` to `to`, recursively.
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("listing {}", from.display()))? {
        let entry = entry?;
        let path = entry.path();
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&path, &target)?;
        } else {
            std::fs::copy(&path, &target).with_context(|| format!("copying {}", path.display()))?;
        }
    }
    Ok(())
}
