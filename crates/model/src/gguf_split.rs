//! GGUF models split over files as llama.cpp's `gguf-split` writes them: each file a GGUF
//! file of its own holding some of the tensors, the first one all the model's metadata,
//! and every file `split.no` (from 0), `split.count` and `split.tensors.count` (the
//! tensors of all files), named `NAME-00001-of-00002.gguf` and so on. Read whole, or its
//! first files alone as the model of the blocks they hold (what a page can run while the
//! rest arrives); and a file split in two.

use std::collections::BTreeMap;

use crate::gguf::{Gguf, Value};
use crate::gguf_write::{GgufWriter, MetaValue};
use crate::{ModelError, Result};

/// Which file of a split model this is, counted from 0.
pub const SPLIT_NO: &str = "split.no";
/// How many files the model is split over.
pub const SPLIT_COUNT: &str = "split.count";
/// How many tensors all the files hold together.
pub const SPLIT_TENSORS_COUNT: &str = "split.tensors.count";

/// The name of file `no` (from 0) of a model split over `count` files, as `gguf-split`
/// names it: `split_path("model", 0, 2)` is `model-00001-of-00002.gguf`.
#[must_use]
pub fn split_path(prefix: &str, no: usize, count: usize) -> String {
    format!("{prefix}-{:05}-of-{count:05}.gguf", no + 1)
}

impl<'a> Gguf<'a> {
    /// The model in `files` (name, bytes): one GGUF file, or every file of a split one
    /// in any order, read as one (the metadata of the first, the tensors of all).
    pub fn parse_files(files: &[(&str, &'a [u8])]) -> Result<Self> {
        let merged = Self::merge(files)?;
        if let Some(count) = merged.split_count()? {
            if files.len() != count {
                return Err(merged.error(format!(
                    "the model is split over {count} files; {} given",
                    files.len()
                )));
            }
            let expected = merged.size(SPLIT_TENSORS_COUNT)?;
            if merged.tensors.len() != expected {
                return Err(merged.error(format!(
                    "the files hold {} tensors, {SPLIT_TENSORS_COUNT} says {expected}",
                    merged.tensors.len()
                )));
            }
        }
        Ok(merged)
    }

    /// The first files of a split model (the first of them at least; the rest still to
    /// come) read as the model of the blocks they hold: its block count
    /// (`ARCH.block_count`) becomes the number of blocks, from block 0, whose tensors
    /// they hold. `gguf-split` and [`split_gguf`] split between blocks, so each is whole;
    /// one that is not is reported missing a tensor when the model is read.
    pub fn parse_first_files(files: &[(&str, &'a [u8])]) -> Result<Self> {
        let mut merged = Self::merge(files)?;
        let blocks = (0..merged.tensors.len())
            .take_while(|b| {
                let prefix = format!("blk.{b}.");
                merged.tensors.keys().any(|name| name.starts_with(&prefix))
            })
            .count();
        if blocks == 0 {
            return Err(merged.error("its first files hold no block of the model"));
        }
        let key = format!("{}.block_count", merged.text("general.architecture")?);
        let blocks = blocks.min(merged.size(&key)?);
        merged.metadata.insert(key, Value::Unsigned(blocks as u64));
        Ok(merged)
    }

    /// `files` as one: each parsed, put in order by `split.no`, which must run from 0
    /// without a gap; tensors named once.
    fn merge(files: &[(&str, &'a [u8])]) -> Result<Self> {
        let mut parsed = files
            .iter()
            .map(|(name, bytes)| Gguf::parse(name, bytes))
            .collect::<Result<Vec<_>>>()?;
        if parsed.is_empty() {
            return Err(ModelError::Weights("no GGUF file given".to_owned()));
        }
        if parsed.len() == 1 && parsed[0].split_count()?.is_none() {
            return Ok(parsed.remove(0));
        }
        let mut numbered = Vec::with_capacity(parsed.len());
        for file in parsed {
            let count = file.split_count()?.ok_or_else(|| {
                file.error("given with other files, but it is not part of a split model")
            })?;
            let no = file.size(SPLIT_NO)?;
            if no >= count {
                return Err(file.error(format!("{SPLIT_NO} is {no} of {count} files")));
            }
            numbered.push((no, count, file));
        }
        numbered.sort_by_key(|(no, _, _)| *no);
        let count = numbered[0].1;
        for (i, (no, this_count, file)) in numbered.iter().enumerate() {
            if *this_count != count {
                return Err(file.error(format!(
                    "{SPLIT_COUNT} is {this_count}, another file's is {count}"
                )));
            }
            if *no != i {
                return Err(file.error(format!(
                    "file {} of {count} given without file {}",
                    no + 1,
                    i + 1
                )));
            }
        }
        let mut files = numbered.into_iter().map(|(_, _, file)| file);
        let mut merged = files
            .next()
            .ok_or_else(|| ModelError::Weights("no GGUF file given".to_owned()))?;
        for (index, file) in files.enumerate() {
            for (name, mut info) in file.tensors {
                info.file = index + 1;
                if merged.tensors.insert(name.clone(), info).is_some() {
                    return Err(file_error(
                        &file.name,
                        &format!("tensor `{name}` is in two files"),
                    ));
                }
            }
            merged.data.extend(file.data);
        }
        Ok(merged)
    }

    /// `split.count`, if the file is part of a split model.
    fn split_count(&self) -> Result<Option<usize>> {
        if self.metadata.contains_key(SPLIT_COUNT) {
            self.size(SPLIT_COUNT).map(Some)
        } else {
            Ok(None)
        }
    }
}

fn file_error(name: &str, problem: &str) -> ModelError {
    ModelError::Weights(format!("{name}: {problem}"))
}

/// Picks, for [`split_gguf`], the tensors outside the blocks (embeddings, final norm,
/// unembedding) and those of the blocks before `block`.
pub fn outside_or_before_block(block: usize) -> impl Fn(&str) -> bool {
    move |name| {
        name.strip_prefix("blk.")
            .and_then(|rest| rest.split('.').next())
            .and_then(|n| n.parse::<usize>().ok())
            .is_none_or(|n| n < block)
    }
}

/// The GGUF file `bytes` (called `name` in errors) split in two as `gguf-split` would:
/// the tensors `in_first` picks, with all the metadata, in the first file; the others in
/// the second. Tensors are copied as they are stored. The file must use the default
/// alignment (32) and must not be split already; each part must hold a tensor.
pub fn split_gguf(
    name: &str,
    bytes: &[u8],
    in_first: impl Fn(&str) -> bool,
) -> Result<[Vec<u8>; 2]> {
    let file = Gguf::parse(name, bytes)?;
    if file.split_count()?.is_some() {
        return Err(file.error("it is split already"));
    }
    if matches!(file.metadata.get("general.alignment"), Some(a) if *a != Value::Unsigned(32)) {
        return Err(file.error("only files aligned to 32 bytes are split"));
    }
    let mut parts = [GgufWriter::new(), GgufWriter::new()];
    for entry in &file.raw_metadata {
        parts[0].raw_meta(entry);
    }
    let total =
        i32::try_from(file.tensors.len()).map_err(|_| file.error("too many tensors to split"))?;
    for (no, part) in (0_u16..).zip(&mut parts) {
        part.meta(SPLIT_NO, MetaValue::U16(no))
            .meta(SPLIT_COUNT, MetaValue::U16(2))
            .meta(SPLIT_TENSORS_COUNT, MetaValue::I32(total));
    }
    // In the order the file stores them.
    let mut stored: Vec<_> = file.tensors.iter().collect();
    stored.sort_by_key(|(_, info)| info.offset);
    for (tensor, info) in stored {
        let raw = &file.data[info.file][info.offset..info.offset + info.bytes];
        parts[usize::from(!in_first(tensor))].raw_tensor(tensor, &info.shape, info.kind, raw);
    }
    if parts.iter().any(|part| part.tensor_count() == 0) {
        return Err(file.error("one of the two parts would hold no tensor"));
    }
    Ok(parts.map(|part| part.to_bytes()))
}

/// The tensors of `gguf` by name, as stored (its encoding, shape and bytes): what two
/// readings of a model compare on.
#[must_use]
pub fn stored_tensors<'a>(gguf: &'a Gguf<'_>) -> BTreeMap<&'a str, (Vec<usize>, &'a [u8])> {
    gguf.tensors
        .iter()
        .map(|(name, info)| {
            let raw = &gguf.data[info.file][info.offset..info.offset + info.bytes];
            (name.as_str(), (info.shape.clone(), raw))
        })
        .collect()
}
