//! The files of a Hugging Face checkpoint folder: which safetensors shards it has.

use serde::Deserialize;

use crate::{ModelError, Result};

/// The single-file checkpoint's weights.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// A sharded checkpoint's index, mapping each tensor to its shard.
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// The shard files a `model.safetensors.index.json` names, each once, in order. Names
/// must be plain file names ending in `.safetensors` (an index cannot point elsewhere).
pub fn shard_names(index_json: &str) -> Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Index {
        weight_map: std::collections::BTreeMap<String, String>,
    }
    let index: Index = serde_json::from_str(index_json)
        .map_err(|e| ModelError::Weights(format!("{INDEX_FILE}: {e}")))?;
    let mut names: Vec<String> = index.weight_map.into_values().collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Err(ModelError::Weights(format!("{INDEX_FILE} names no shards")));
    }
    if let Some(bad) = names.iter().find(|name| {
        !name.ends_with(".safetensors") || name.contains(['/', '\\']) || name.starts_with('.')
    }) {
        return Err(ModelError::Weights(format!(
            "{INDEX_FILE} names `{bad}`, not a safetensors file in the same folder"
        )));
    }
    Ok(names)
}

/// How many bytes the tensors of these safetensors files take as f32 (what loading them
/// allocates), from their headers alone.
pub fn f32_bytes(shards: &[(&str, &[u8])]) -> Result<u64> {
    let mut total = 0_u64;
    for (name, bytes) in shards {
        let (_, metadata) = safetensors::SafeTensors::read_metadata(bytes).map_err(|e| {
            ModelError::Weights(format!("{name}: not a valid safetensors file: {e}"))
        })?;
        for info in metadata.tensors().values() {
            let elements = info
                .shape
                .iter()
                .try_fold(1_u64, |n, &d| n.checked_mul(d as u64));
            total = elements
                .and_then(|n| n.checked_mul(4))
                .and_then(|n| total.checked_add(n))
                .ok_or_else(|| ModelError::Weights(format!("{name}: impossible tensor shapes")))?;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_listed_once_and_must_stay_in_the_folder() {
        let index = r#"{"metadata": {}, "weight_map": {"a": "model-2.safetensors",
            "b": "model-1.safetensors", "c": "model-2.safetensors"}}"#;
        assert_eq!(
            shard_names(index).unwrap(),
            ["model-1.safetensors", "model-2.safetensors"]
        );
        let escaping = r#"{"weight_map": {"a": "../../etc/passwd.safetensors"}}"#;
        assert!(
            shard_names(escaping)
                .unwrap_err()
                .to_string()
                .contains("same folder")
        );
        assert!(shard_names(r#"{"weight_map": {}}"#).is_err());
    }
}
