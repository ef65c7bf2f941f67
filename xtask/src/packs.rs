//! Packs beside the page: `packs/index.json` (what the page's pack picker lists), and the
//! packs built outside the repository that `cargo xtask serve --pack NAME` serves (built
//! first when missing).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::run::{cmd, run};

/// A pack served beside the page: its folder name under `packs/` and where it is.
#[derive(Debug, Clone)]
pub(crate) struct ServedPack {
    pub(crate) folder: String,
    pub(crate) root: PathBuf,
}

/// The packs `glassbox pack build --preset` makes, which `serve --pack` can build.
const PRESETS: [&str; 1] = ["smollm2-135m"];

/// Where a preset's pack is built.
pub(crate) fn preset_dir(name: &str) -> PathBuf {
    crate::workspace_root().join("target/packs").join(name)
}

/// The pack `name` (a preset), built first if it is not there.
pub(crate) fn ensure_preset(name: &str) -> Result<ServedPack> {
    if !PRESETS.contains(&name) {
        bail!(
            "no pack preset `{name}`; `--pack` takes one of: {}",
            PRESETS.join(", ")
        );
    }
    let root = preset_dir(name);
    if !root.join("manifest.json").exists() {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        // Measured on two cores: about 2.7 hours of transcoder training, 1.5 of feature
        // data, a quarter of measuring; it scales with the cores.
        let hours = 4.5 * 2.0 / cores.min(16) as f64;
        println!(
            "\nThe {name} pack is not built yet ({}). Building it now: about {hours:.1} hours \
             on this machine's {cores} cores, most of it training a transcoder for each \
             of the model's 30 blocks. Interrupt it any time: the same command resumes \
             where it stopped.",
            root.display()
        );
        run(&mut cmd(
            "cargo",
            &[
                "run",
                "--release",
                "-p",
                "glassbox-cli",
                "--",
                "pack",
                "build",
                "--preset",
                name,
            ],
        ))?;
    }
    Ok(ServedPack {
        folder: name.to_owned(),
        root,
    })
}

/// Every pack folder (one holding a `manifest.json`) directly under `dir`.
pub(crate) fn packs_in(dir: &Path) -> Result<Vec<ServedPack>> {
    let mut packs = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.join("manifest.json").is_file()
            && let Some(folder) = path.file_name().and_then(|n| n.to_str())
        {
            packs.push(ServedPack {
                folder: folder.to_owned(),
                root: path.clone(),
            });
        }
    }
    packs.sort_by(|a, b| a.folder.cmp(&b.folder));
    Ok(packs)
}

/// `packs/index.json` for `packs`: each pack's folder, and the name and description its
/// manifest gives.
pub(crate) fn index_json(packs: &[ServedPack]) -> Result<String> {
    let entries = packs
        .iter()
        .map(|pack| {
            let path = pack.root.join("manifest.json");
            let manifest: serde_json::Value = serde_json::from_slice(
                &std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
            )
            .with_context(|| format!("{} is not JSON", path.display()))?;
            let text = |key: &str| {
                manifest
                    .get(key)
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            Ok(serde_json::json!({
                "name": text("name"),
                "path": format!("{}/", pack.folder),
                "description": text("description"),
            }))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut text = serde_json::to_string_pretty(&serde_json::json!({ "packs": entries }))?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_lists_each_pack_folder_with_its_manifests_name() {
        let dir = std::env::temp_dir().join(format!("xtask-packs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (folder, name) in [("brown", "brown"), ("smollm2-135m", "smollm2-135m")] {
            std::fs::create_dir_all(dir.join(folder)).unwrap();
            std::fs::write(
                dir.join(folder).join("manifest.json"),
                format!(r#"{{"name": "{name}", "description": "the {name} pack"}}"#),
            )
            .unwrap();
        }
        std::fs::create_dir_all(dir.join("not-a-pack")).unwrap();
        let packs = packs_in(&dir).unwrap();
        assert_eq!(packs.len(), 2);
        let index: serde_json::Value = serde_json::from_str(&index_json(&packs).unwrap()).unwrap();
        assert_eq!(index["packs"][1]["path"], "smollm2-135m/");
        assert_eq!(index["packs"][0]["description"], "the brown pack");
        assert!(ensure_preset("nonsense").is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
