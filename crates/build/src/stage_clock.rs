//! The wall time of each stage of a resumable build, added up over every run that worked
//! on it and kept in the work folder, so the pack can say what each stage cost even when
//! the build was stopped and resumed.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::error::{BuildError, Result, io};

/// Seconds per stage, in the order the stages first ran.
#[derive(Debug)]
pub struct StageClock {
    path: PathBuf,
    stages: Vec<(String, f64)>,
}

impl StageClock {
    /// The clock kept at `path`; empty when there is none yet (or it is unreadable: the
    /// times are a report, never a reason to stop a build).
    #[must_use]
    pub fn open(path: &Path) -> Self {
        let stages = std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Vec<(String, f64)>>(&bytes).ok())
            .unwrap_or_default();
        Self {
            path: path.to_owned(),
            stages,
        }
    }

    /// Runs `work` as `stage`, adding its wall time to the stage's (a stage already done
    /// adds the moment it takes to see so), and keeps the clock.
    pub fn time<T>(&mut self, stage: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
        let started = Instant::now();
        let result = work();
        self.add(stage, started.elapsed().as_secs_f64());
        self.save()?;
        result
    }

    /// Sets `stage`'s time outright (one measured elsewhere, such as training's, which
    /// its checkpoints keep over every run, including the ones that were killed).
    pub fn set(&mut self, stage: &str, seconds: f64) -> Result<()> {
        match self.stages.iter_mut().find(|(name, _)| name == stage) {
            Some((_, total)) => *total = seconds,
            None => self.stages.push((stage.to_owned(), seconds)),
        }
        self.save()
    }

    fn add(&mut self, stage: &str, seconds: f64) {
        match self.stages.iter_mut().find(|(name, _)| name == stage) {
            Some((_, total)) => *total += seconds,
            None => self.stages.push((stage.to_owned(), seconds)),
        }
    }

    fn save(&self) -> Result<()> {
        let json = serde_json::to_vec_pretty(&self.stages)
            .map_err(|e| BuildError::Checkpoint(format!("stage times: {e}")))?;
        std::fs::write(&self.path, json).map_err(io(&self.path))
    }

    /// Each stage's seconds, in the order they first ran.
    #[must_use]
    pub fn stages(&self) -> &[(String, f64)] {
        &self.stages
    }

    /// One line: each stage and its time, in hours, minutes or seconds.
    #[must_use]
    pub fn summary(&self) -> String {
        self.stages
            .iter()
            .map(|(name, seconds)| format!("{name} {}", duration(*seconds)))
            .collect::<Vec<_>>()
            .join(" · ")
    }
}

/// `seconds` as a person reads it: `2.3 h`, `14 min`, `8 s`.
fn duration(seconds: f64) -> String {
    if seconds >= 5400.0 {
        format!("{:.1} h", seconds / 3600.0)
    } else if seconds >= 90.0 {
        format!("{:.0} min", seconds / 60.0)
    } else {
        format!("{seconds:.0} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_add_up_over_runs_and_a_set_time_replaces() {
        let folder = std::env::temp_dir().join(format!("stage-clock-{}", std::process::id()));
        std::fs::create_dir_all(&folder).unwrap();
        let path = folder.join("stages.json");
        let _ = std::fs::remove_file(&path);
        let mut clock = StageClock::open(&path);
        clock.add("corpus", 3.0);
        clock.time("report", || Ok(())).unwrap();
        // A second run (the build resumed) adds to what the first kept.
        let mut again = StageClock::open(&path);
        again.add("corpus", 2.0);
        again.set("transcoders", 7200.0).unwrap();
        again.set("transcoders", 9000.0).unwrap();
        let kept = StageClock::open(&path);
        let names: Vec<&str> = kept.stages().iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["corpus", "report", "transcoders"]);
        assert!((kept.stages()[0].1 - 5.0).abs() < 1e-9);
        assert!((kept.stages()[2].1 - 9000.0).abs() < 1e-9);
        assert_eq!(duration(9000.0), "2.5 h");
        assert_eq!(duration(840.0), "14 min");
        assert!(kept.summary().starts_with("corpus 5 s · report 0 s"));
        // An unreadable clock starts again rather than stopping the build.
        std::fs::write(&path, b"not json").unwrap();
        assert!(StageClock::open(&path).stages().is_empty());
        std::fs::remove_dir_all(&folder).unwrap();
    }
}
