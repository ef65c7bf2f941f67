//! `packs/index.json`: the packs served beside the page, for the pack picker. The page's
//! build writes it with the default pack; `cargo xtask serve --pack NAME` adds the packs
//! it serves; anyone publishing packs on a static host lists theirs. Read as untrusted
//! input: capped in size and entries, each path a plain folder name under `packs/`.

use serde::Deserialize;

/// The index file, relative to the page.
pub const INDEX_PATH: &str = "packs/index.json";
/// The largest index read.
pub const MAX_INDEX_BYTES: usize = 64 * 1024;
/// The most packs listed.
pub const MAX_PACKS: usize = 32;

/// One pack the page can open.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PackEntry {
    /// Its short name, e.g. `smollm2-135m`.
    pub name: String,
    /// Its folder under `packs/`, ending in `/`.
    pub path: String,
    /// One sentence on what it holds.
    #[serde(default)]
    pub description: String,
}

#[derive(Deserialize)]
struct Index {
    packs: Vec<PackEntry>,
}

/// The packs listed in `bytes`, or what is wrong with it.
pub fn parse_index(bytes: &[u8]) -> Result<Vec<PackEntry>, String> {
    if bytes.len() > MAX_INDEX_BYTES {
        return Err(format!(
            "{INDEX_PATH} is larger than {MAX_INDEX_BYTES} bytes"
        ));
    }
    let index: Index =
        serde_json::from_slice(bytes).map_err(|e| format!("{INDEX_PATH} cannot be read: {e}"))?;
    if index.packs.len() > MAX_PACKS {
        return Err(format!("{INDEX_PATH} lists more than {MAX_PACKS} packs"));
    }
    for pack in &index.packs {
        let folder = pack.path.strip_suffix('/').unwrap_or(&pack.path);
        let plain = !folder.is_empty()
            && folder.len() <= 64
            && folder
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && !folder.starts_with('.');
        if !plain || pack.name.is_empty() || pack.name.len() > 64 || pack.description.len() > 512 {
            return Err(format!(
                "{INDEX_PATH}: {:?} is not a pack folder name under packs/",
                pack.path
            ));
        }
    }
    Ok(index
        .packs
        .into_iter()
        .map(|p| PackEntry {
            path: format!("{}/", p.path.trim_end_matches('/')),
            ..p
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_lists_folders_under_packs_and_nothing_else() {
        let packs = parse_index(
            br#"{"packs": [{"name": "brown", "path": "brown/", "description": "d"},
                           {"name": "smollm2-135m", "path": "smollm2-135m"}]}"#,
        )
        .unwrap();
        assert_eq!(packs.len(), 2);
        assert_eq!(packs[1].path, "smollm2-135m/");
        for hostile in [
            r#"{"packs": [{"name": "x", "path": "../secret/"}]}"#,
            r#"{"packs": [{"name": "x", "path": "https://evil.example/"}]}"#,
            r#"{"packs": [{"name": "x", "path": "a/b/"}]}"#,
            r#"{"packs": [{"name": "x", "path": ""}]}"#,
            r#"{"packs": [{"name": "", "path": "a/"}]}"#,
            r#"{"packs": 3}"#,
            "not json",
        ] {
            assert!(parse_index(hostile.as_bytes()).is_err(), "{hostile}");
        }
        let many: Vec<String> = (0..40)
            .map(|i| format!(r#"{{"name": "p{i}", "path": "p{i}/"}}"#))
            .collect();
        let many = format!(r#"{{"packs": [{}]}}"#, many.join(","));
        assert!(parse_index(many.as_bytes()).is_err());
        assert!(parse_index(&vec![b' '; MAX_INDEX_BYTES + 1]).is_err());
    }
}
