//! The page's release build, the one `cargo xtask serve` serves and `cargo xtask test`
//! tests: both wasm binaries of `www` built for the browser (the engine worker twice, with
//! relaxed SIMD and without: [`crate::simd_builds`]), their JS glue made by wasm-bindgen,
//! shrunk by wasm-opt, and the page, its styles, icon, service worker and the default pack
//! laid out in `target/dist`.
//!
//! Every script, module and style gets a content-hashed name, the engine worker's too (the
//! page reads its loader's name from `<meta name="glassbox-worker">`; the loader picks the
//! build the browser can run), so a browser's HTTP cache can never pair a new page with an
//! old worker; the service worker gets this build's cache name and worker files written
//! in.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::run::{cmd, run};
use crate::simd_builds::{Simd, pick};
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
/// The line of `sw.js` that names its cache, replaced by this build's.
const SHELL_MARKER: &str = "const SHELL = 'glassbox-shell-dev';";
/// The line of `sw.js` that lists the engine worker's files, replaced by this build's.
const WORKER_FILES_MARKER: &str = "const WORKER_FILES = [];";

/// The folder the page is built into.
pub(crate) fn dist_dir() -> PathBuf {
    workspace_root().join("target/dist")
}

/// Builds the page into [`dist_dir`] (replacing what was there once the new build is
/// complete).
pub(crate) fn build() -> Result<()> {
    let root = workspace_root();
    let target = target_dir();
    // The page and the worker; then the worker again, with relaxed SIMD.
    cargo_build(&["--package", PAGE, "--bins"], Simd::Simd128)?;
    cargo_build(&["--package", PAGE, "--bin", WORKER], Simd::Relaxed)?;
    let staging = root.join("target/dist.staging");
    if staging.exists() {
        std::fs::remove_dir_all(&staging).context("clearing target/dist.staging")?;
    }
    std::fs::create_dir_all(&staging).context("creating target/dist.staging")?;

    let binaries = |simd: Simd| simd.target_dir(&target).join(WASM_TARGET).join(PROFILE);
    bindgen(
        &binaries(Simd::Simd128).join(format!("{PAGE}.wasm")),
        "web",
        &staging,
        PAGE,
    )?;
    optimize(&staging.join(format!("{PAGE}_bg.wasm")))?;
    // The page's and the worker builds' files under content-hashed names.
    let page = hash_names(&staging, PAGE)?;
    // Each worker build's files, under names with the build's suffix and a content hash.
    let worker = |simd: Simd| -> Result<String> {
        let name = format!("{WORKER}{}", simd.suffix());
        bindgen(
            &binaries(simd).join(format!("{WORKER}.wasm")),
            "no-modules",
            &staging,
            &name,
        )?;
        optimize(&staging.join(format!("{name}_bg.wasm")))?;
        hash_names(&staging, &name)
    };
    let relaxed = worker(Simd::Relaxed)?;
    let simd128 = worker(Simd::Simd128)?;
    // The loader's name changes with either build.
    let loader = format!(
        "{WORKER}-{}_loader.js",
        short_hash(&[relaxed.as_bytes(), simd128.as_bytes()])
    );
    std::fs::write(
        staging.join(&loader),
        format!(
            r#"const engine = {};importScripts(engine + ".js");wasm_bindgen(engine + "_bg.wasm");"#,
            pick(&format!("./{relaxed}"), &format!("./{simd128}"))
        ),
    )
    .context("writing the worker's loader")?;
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
    html = html.replace(SCRIPT_MARKER, &page_script(&page, &loader));
    std::fs::write(staging.join("index.html"), &html)?;
    let build = short_hash(&[html.as_bytes()]);
    std::fs::write(
        staging.join("sw.js"),
        service_worker(
            &std::fs::read_to_string(www.join("sw.js")).context("reading www/sw.js")?,
            &build,
            &loader,
            &pick(&relaxed, &simd128),
        )?,
    )?;
    copy_dir(&www.join("packs"), &staging.join("packs"))?;
    // The pack picker's list: the packs built into the page (`serve --pack` adds more).
    let packs = crate::packs::packs_in(&staging.join("packs"))?;
    std::fs::write(
        staging.join("packs/index.json"),
        crate::packs::index_json(&packs)?,
    )?;

    let dist = dist_dir();
    if dist.exists() {
        std::fs::remove_dir_all(&dist).context("clearing target/dist")?;
    }
    std::fs::rename(&staging, &dist).context("moving the build to target/dist")?;
    println!("the page is built in {}", dist.display());
    Ok(())
}

/// Renames `{name}.js` and `{name}_bg.wasm` in `dir` to `{name}-{hash}…` after their
/// contents; returns the new stem.
fn hash_names(dir: &Path, name: &str) -> Result<String> {
    let glue = std::fs::read(dir.join(format!("{name}.js")))?;
    let module = std::fs::read(dir.join(format!("{name}_bg.wasm")))?;
    let hashed = format!("{name}-{}", short_hash(&[&glue, &module]));
    for suffix in [".js", "_bg.wasm"] {
        std::fs::rename(
            dir.join(format!("{name}{suffix}")),
            dir.join(format!("{hashed}{suffix}")),
        )?;
    }
    Ok(hashed)
}

/// `sw.js` with this build's cache name (`glassbox-shell-{build}`) and worker files: the
/// `loader` and the files of the worker build that `engine` (a script expression, the
/// build's stem) picks in the browser, as the loader picks.
fn service_worker(template: &str, build: &str, loader: &str, engine: &str) -> Result<String> {
    for marker in [SHELL_MARKER, WORKER_FILES_MARKER] {
        if !template.contains(marker) {
            bail!("www/sw.js has no `{marker}` line for the build to fill in");
        }
    }
    Ok(template
        .replace(
            SHELL_MARKER,
            &format!("const SHELL = 'glassbox-shell-{build}';"),
        )
        .replace(
            WORKER_FILES_MARKER,
            &format!(
                "const ENGINE = {engine};\nconst WORKER_FILES = ['{loader}', `${{ENGINE}}.js`, `${{ENGINE}}_bg.wasm`];"
            ),
        ))
}

/// The script that starts the page, hints that fetch its JS and wasm early, and the name
/// of this build's engine worker loader.
fn page_script(hashed: &str, loader: &str) -> String {
    format!(
        r#"<meta name="glassbox-worker" content="./{loader}" />
    <link rel="modulepreload" href="./{hashed}.js" />
    <link rel="preload" href="./{hashed}_bg.wasm" as="fetch" type="application/wasm" crossorigin />
    <script type="module">
      import init from './{hashed}.js';
      await init({{ module_or_path: './{hashed}_bg.wasm' }});
    </script>"#
    )
}

/// The side-by-side benchmark's wasm module (`crates/browser-bench`), built as the page's
/// engine is built (same profile, wasm-bindgen, wasm-opt), into `target/browser-bench`;
/// returns that folder.
pub(crate) fn build_browser_bench(simd: Simd) -> Result<PathBuf> {
    const BENCH: &str = "glassbox_browser_bench";
    cargo_build(&["--package", "glassbox-browser-bench", "--lib"], simd)?;
    let out = workspace_root().join(format!("target/browser-bench{}", simd.suffix()));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let wasm = simd
        .target_dir(&target_dir())
        .join(WASM_TARGET)
        .join(PROFILE)
        .join(format!("{BENCH}.wasm"));
    bindgen(&wasm, "web", &out, BENCH)?;
    optimize(&out.join(format!("{BENCH}_bg.wasm")))?;
    Ok(out)
}

/// `cargo build` of `what` (packages and targets) for the browser, in the page's profile,
/// with `simd`.
fn cargo_build(what: &[&str], simd: Simd) -> Result<()> {
    run(cmd(
        "cargo",
        &[
            "build",
            "--locked",
            "--target",
            WASM_TARGET,
            "--profile",
            PROFILE,
        ],
    )
    .args(what)
    .args(simd.cargo_args(&target_dir())))
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
pub(crate) fn target_dir() -> PathBuf {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_worker_gets_this_builds_cache_and_worker_files() {
        let template = std::fs::read_to_string(workspace_root().join("www/sw.js")).unwrap();
        let filled = service_worker(&template, "abc123", "w-1_loader.js", "\"w-2\"").unwrap();
        assert!(filled.contains("const SHELL = 'glassbox-shell-abc123';"));
        assert!(filled.contains(
            "const ENGINE = \"w-2\";\nconst WORKER_FILES = ['w-1_loader.js', `${ENGINE}.js`, `${ENGINE}_bg.wasm`];"
        ));
        assert!(!filled.contains(SHELL_MARKER) && !filled.contains(WORKER_FILES_MARKER));
        let error = service_worker("const SHELL = 'x';", "abc", "l.js", "\"w\"").unwrap_err();
        assert!(error.to_string().contains("has no"), "{error}");
    }
}
