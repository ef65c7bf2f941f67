//! Activations too many to keep in memory (30 blocks × thousands of features over a
//! million tokens), spilled to one file per block as they are found and read back one
//! block at a time. Every few minutes the files are flushed and their lengths recorded
//! with the windows done, so an interrupted pass resumes at the last record with the
//! files cut back to it.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{BuildError, Result, io};
use crate::features::{ActivationSink, LayerActivations};

/// Bytes per activation: feature (u32), token (u32), activation (f32), little-endian.
const RECORD: usize = 12;

/// How often the files are flushed and the progress recorded.
const RECORD_EVERY: Duration = Duration::from_mins(5);

/// What is safely on disk.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Progress {
    windows_done: usize,
    /// Each block's file length at `windows_done`.
    lengths: Vec<u64>,
    /// Every window was read.
    complete: bool,
}

/// The spill folder of one pass.
#[derive(Debug)]
pub struct Spill {
    folder: PathBuf,
    writers: Vec<BufWriter<File>>,
    progress: Progress,
    recorded_at: Instant,
}

impl Spill {
    /// Opens (or starts) the spill in `folder` for `n_layer` blocks, its files cut back to
    /// the last recorded progress.
    pub fn open(folder: &Path, n_layer: usize) -> Result<Self> {
        std::fs::create_dir_all(folder).map_err(io(folder))?;
        let progress_path = folder.join("progress.json");
        let progress: Progress = match std::fs::read(&progress_path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| BuildError::Checkpoint(format!("{}: {e}", progress_path.display())))?,
            Err(_) => Progress {
                lengths: vec![0; n_layer],
                ..Progress::default()
            },
        };
        if progress.lengths.len() != n_layer {
            return Err(BuildError::Checkpoint(format!(
                "{} is for {} blocks, not {n_layer}; remove it to start again",
                folder.display(),
                progress.lengths.len()
            )));
        }
        let writers = (0..n_layer)
            .map(|l| {
                let path = layer_path(folder, l);
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(io(&path))?;
                file.set_len(progress.lengths[l]).map_err(io(&path))?;
                Ok(BufWriter::with_capacity(1 << 20, file))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            folder: folder.to_owned(),
            writers,
            progress,
            recorded_at: Instant::now(),
        })
    }

    /// Windows already spilled: the pass resumes after them.
    #[must_use]
    pub fn windows_done(&self) -> usize {
        self.progress.windows_done
    }

    /// Whether the pass finished.
    #[must_use]
    pub fn complete(&self) -> bool {
        self.progress.complete
    }

    /// Flushes everything and records the pass as finished.
    pub fn finish(&mut self) -> Result<()> {
        self.record(self.progress.windows_done, true)
    }

    fn record(&mut self, windows_done: usize, complete: bool) -> Result<()> {
        for (l, writer) in self.writers.iter_mut().enumerate() {
            let path = layer_path(&self.folder, l);
            writer.flush().map_err(io(&path))?;
            writer.get_ref().sync_data().map_err(io(&path))?;
            self.progress.lengths[l] = writer.get_ref().metadata().map_err(io(&path))?.len();
        }
        self.progress.windows_done = windows_done;
        self.progress.complete = complete;
        let path = self.folder.join("progress.json");
        let partial = self.folder.join("progress.json.partial");
        let json = serde_json::to_vec(&self.progress)
            .map_err(|e| BuildError::Checkpoint(e.to_string()))?;
        std::fs::write(&partial, json).map_err(io(&partial))?;
        std::fs::rename(&partial, &path).map_err(io(&path))?;
        self.recorded_at = Instant::now();
        Ok(())
    }

    /// Block `layer`'s activations, per feature (`d_sae` of them), in the order found.
    pub fn read_layer(&self, layer: usize, d_sae: usize) -> Result<LayerActivations> {
        let path = layer_path(&self.folder, layer);
        let file = File::open(&path).map_err(io(&path))?;
        let length = self.progress.lengths[layer];
        let mut reader = BufReader::with_capacity(1 << 20, file.take(length));
        let mut out: LayerActivations = vec![Vec::new(); d_sae];
        let mut record = [0_u8; RECORD];
        for _ in 0..length / RECORD as u64 {
            reader.read_exact(&mut record).map_err(io(&path))?;
            let word = |i: usize| [record[i], record[i + 1], record[i + 2], record[i + 3]];
            let feature = u32::from_le_bytes(word(0)) as usize;
            let token = u32::from_le_bytes(word(4));
            let activation = f32::from_le_bytes(word(8));
            let entries = out.get_mut(feature).ok_or_else(|| {
                BuildError::Checkpoint(format!(
                    "{}: feature {feature} of a dictionary of {d_sae}",
                    path.display()
                ))
            })?;
            entries.push((token, activation));
        }
        Ok(out)
    }
}

impl ActivationSink for Spill {
    fn put(&mut self, layer: usize, feature: usize, token: u32, activation: f32) -> Result<()> {
        let mut record = [0_u8; RECORD];
        record[..4].copy_from_slice(&(feature as u32).to_le_bytes());
        record[4..8].copy_from_slice(&token.to_le_bytes());
        record[8..].copy_from_slice(&activation.to_le_bytes());
        let path = || layer_path(&self.folder, layer);
        self.writers[layer].write_all(&record).map_err(io(path()))
    }

    fn windows_done(&mut self, windows_done: usize) -> Result<()> {
        if self.recorded_at.elapsed() >= RECORD_EVERY {
            self.record(windows_done, false)?;
        } else {
            self.progress.windows_done = windows_done;
        }
        Ok(())
    }
}

fn layer_path(folder: &Path, layer: usize) -> PathBuf {
    folder.join(format!("layer_{layer}.bin"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spill_reads_back_what_was_put_and_resumes_from_its_last_record() {
        let folder = std::env::temp_dir().join(format!("glassbox-spill-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&folder);
        let mut spill = Spill::open(&folder, 2).unwrap();
        spill.put(0, 3, 10, 1.5).unwrap();
        spill.put(1, 0, 11, 0.25).unwrap();
        spill.record(1, false).unwrap();
        // Put after the last record, then interrupted: cut back on reopening.
        spill.put(0, 1, 12, 9.0).unwrap();
        spill.writers[0].flush().unwrap();
        drop(spill);
        let mut spill = Spill::open(&folder, 2).unwrap();
        assert_eq!(spill.windows_done(), 1);
        spill.put(0, 2, 13, 2.0).unwrap();
        spill.finish().unwrap();
        let spill = Spill::open(&folder, 2).unwrap();
        assert!(spill.complete());
        let layer0 = spill.read_layer(0, 4).unwrap();
        assert_eq!(
            layer0,
            vec![vec![], vec![], vec![(13, 2.0)], vec![(10, 1.5)]]
        );
        assert_eq!(spill.read_layer(1, 4).unwrap()[0], vec![(11, 0.25)]);
        assert!(
            spill.read_layer(0, 2).is_err(),
            "a feature beyond d_sae is refused"
        );
        std::fs::remove_dir_all(&folder).ok();
    }
}
