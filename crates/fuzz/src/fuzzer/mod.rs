//! The fuzzing loop: the seeds run first as they are, then each execution mutates a
//! random corpus entry and runs the target on it. A panic, or an execution that
//! allocates more than [`MEMORY_LIMIT`], is a crash: reported with the target, the seed
//! and the input, saved under `target/fuzz-crashes/<target>/`, and counted; the run goes
//! on, reporting each distinct crash once.

mod execute;

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use execute::{Outcome, execute};

use crate::corpus::Corpus;
use crate::crash::{CrashDir, show};
use crate::mutate::{MAX_INPUT, mutate};
use crate::rng::Rng;
use crate::targets::Target;

/// The most one execution may allocate (its peak above what was live before it). More,
/// for inputs of at most [`MAX_INPUT`] bytes, is a bug: a parser believed a size.
pub const MEMORY_LIMIT: usize = 1 << 30;

/// An execution slower than this has its input saved (as `slowest`), to look into.
pub const SLOW: Duration = Duration::from_millis(100);

/// How long a run is and where it starts.
#[derive(Debug, Clone)]
pub struct Options {
    /// Executions per target (the seeds' own included).
    pub runs: u64,
    /// The random seed: the same seed replays the same inputs.
    pub seed: u64,
    /// Where crashing inputs are saved, one folder per target.
    pub crash_root: PathBuf,
}

impl Options {
    /// `runs` executions from `seed`, crashes saved under the workspace's
    /// `target/fuzz-crashes`.
    #[must_use]
    pub fn new(runs: u64, seed: u64) -> Self {
        Self {
            runs,
            seed,
            crash_root: crate::seeds::workspace().join("target/fuzz-crashes"),
        }
    }
}

/// One distinct crash.
#[derive(Debug, Clone)]
pub struct Crash {
    /// The panic's message and place, or the memory the execution took.
    pub problem: String,
    /// The execution it happened on (`None`: a previous run died on it).
    pub execution: Option<u64>,
    /// The saved input.
    pub file: PathBuf,
}

/// What a run of one target did.
#[derive(Debug, Clone)]
pub struct Report {
    /// The target.
    pub target: &'static str,
    /// Executions run.
    pub executions: u64,
    /// Distinct behaviours seen.
    pub behaviours: usize,
    /// Inputs in the corpus at the end.
    pub corpus: usize,
    /// Executions that crashed.
    pub crashes: u64,
    /// Each distinct crash, first occurrence.
    pub distinct: Vec<Crash>,
    /// How long the run took.
    pub elapsed: Duration,
    /// The slowest execution.
    pub slowest: Duration,
    /// Its input, saved when it took longer than [`SLOW`].
    pub slowest_file: Option<PathBuf>,
}

impl Report {
    /// Executions per second.
    #[must_use]
    pub fn rate(&self) -> f64 {
        self.executions as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Tests that fuzz take turns: what an execution allocates is measured for the whole
/// process.
#[cfg(test)]
pub(crate) static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Fuzzes `target` as `options` say, printing each distinct crash as it is found. What
/// each execution allocates is measured for the whole process: one loop at a time.
pub fn fuzz(target: &Target, options: &Options) -> io::Result<Report> {
    let (mut dir, died_on) = CrashDir::open(&options.crash_root, target.name)?;
    let mut report = Report {
        target: target.name,
        executions: 0,
        behaviours: 0,
        corpus: 0,
        crashes: 0,
        distinct: Vec::new(),
        elapsed: Duration::ZERO,
        slowest: Duration::ZERO,
        slowest_file: None,
    };
    let mut slowest_input = Vec::new();
    if let Some((input, file)) = died_on {
        let problem = "a previous run died on this input (an abort: memory past the \
                       allocator's cap, or a stack overflow)"
            .to_owned();
        print_crash(target, options, None, &problem, &input, &file);
        report.crashes += 1;
        report.distinct.push(Crash {
            problem,
            execution: None,
            file,
        });
    }
    let started = Instant::now();
    let mut rng = Rng::new(options.seed);
    let mut corpus = Corpus::new(
        target
            .seeds
            .iter()
            .map(|s| s[..s.len().min(MAX_INPUT)].to_vec())
            .collect(),
    );
    let seeds = corpus.entries().len() as u64;
    let mut problems = HashSet::new();
    for execution in 0..options.runs {
        let input = if execution < seeds {
            corpus.entries()[execution as usize].clone()
        } else {
            let mut input = corpus.pick(&mut rng).to_vec();
            mutate(&mut rng, &mut input, corpus.entries(), target.text);
            input
        };
        dir.in_flight(&input)?;
        let run = execute(target, &input);
        dir.landed()?;
        report.executions += 1;
        if run.took > report.slowest {
            report.slowest = run.took;
            slowest_input.clone_from(&input);
        }
        let problem = match run.outcome {
            Outcome::Panicked(message) => Some(format!("panicked: {message}")),
            Outcome::Returned(_) if run.allocated > MEMORY_LIMIT => Some(format!(
                "allocated {} MiB at once for an input of {} bytes (the limit is {} MiB)",
                run.allocated >> 20,
                input.len(),
                MEMORY_LIMIT >> 20
            )),
            Outcome::Returned(behaviour) if execution < seeds => {
                corpus.record(behaviour);
                None
            }
            Outcome::Returned(behaviour) => {
                corpus.consider(&input, behaviour);
                None
            }
        };
        let Some(problem) = problem else { continue };
        report.crashes += 1;
        if problems.insert(crash_kind(&problem)) {
            let file = dir.save(&input)?;
            print_crash(target, options, Some(execution), &problem, &input, &file);
            report.distinct.push(Crash {
                problem,
                execution: Some(execution),
                file,
            });
        }
    }
    if report.slowest > SLOW {
        report.slowest_file = Some(dir.save_as("slowest", &slowest_input)?);
    }
    dir.close()?;
    report.elapsed = started.elapsed();
    report.behaviours = corpus.behaviours();
    report.corpus = corpus.entries().len();
    Ok(report)
}

/// What makes two crashes the same: the panic's place (or the memory limit).
fn crash_kind(problem: &str) -> String {
    match problem.rsplit_once(" at ") {
        Some((_, place)) if problem.starts_with("panicked") => place.to_owned(),
        _ => problem
            .split(|c: char| c.is_ascii_digit())
            .next()
            .unwrap_or(problem)
            .to_owned(),
    }
}

fn print_crash(
    target: &Target,
    options: &Options,
    execution: Option<u64>,
    problem: &str,
    input: &[u8],
    file: &Path,
) {
    let when = execution.map_or_else(
        || "a previous run".to_owned(),
        |e| format!("seed {}, execution {e}", options.seed),
    );
    eprintln!(
        "\nCRASH in {} ({when}): {problem}\n  input ({} bytes, saved as {}): {}\n  replay: \
         cargo run -p glassbox-fuzz -- --replay {} {}",
        target.name,
        input.len(),
        file.display(),
        show(input, target.text),
        file.display(),
        target.name
    );
}

/// Runs `target` once on `input`: its behaviour, or the crash.
pub fn replay(target: &Target, input: &[u8]) -> Result<String, String> {
    let run = execute(target, input);
    match run.outcome {
        Outcome::Panicked(message) => Err(format!("panicked: {message}")),
        Outcome::Returned(_) if run.allocated > MEMORY_LIMIT => {
            Err(format!("allocated {} MiB at once", run.allocated >> 20))
        }
        Outcome::Returned(behaviour) => Ok(behaviour.key().to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::{MEMORY_LIMIT, ONE_AT_A_TIME, Options, fuzz};
    use crate::Behaviour;
    use crate::targets::Target;

    fn target(name: &'static str, run: fn(&[u8]) -> Behaviour) -> Target {
        Target {
            name,
            text: false,
            seeds: vec![b"seed".to_vec()],
            run: Box::new(run),
        }
    }

    fn options() -> Options {
        let mut options = Options::new(50, 3);
        options.crash_root =
            std::env::temp_dir().join(format!("glassbox-fuzz-{}", std::process::id()));
        options
    }

    #[test]
    fn a_panic_is_a_crash_reported_once_with_its_input_saved() {
        let crashing = target("panics", |input| {
            assert!(input.len() < 5, "too long");
            Behaviour::default()
        });
        let _turn = ONE_AT_A_TIME.lock();
        let report = fuzz(&crashing, &options()).unwrap();
        assert!(report.crashes > 0);
        assert_eq!(report.distinct.len(), 1);
        let crash = &report.distinct[0];
        assert!(crash.problem.contains("too long"), "{}", crash.problem);
        assert!(std::fs::read(&crash.file).unwrap().len() >= 5);
        let _ = std::fs::remove_dir_all(options().crash_root);
    }

    #[test]
    fn allocating_more_than_the_limit_is_a_crash() {
        let greedy = target("allocates", |_| {
            // Zeroed pages are not touched: this costs address space, not memory.
            let buffer = vec![0_u8; MEMORY_LIMIT + 1];
            let mut b = Behaviour::default();
            b.note(if buffer.is_empty() { "none" } else { "some" });
            b
        });
        let _turn = ONE_AT_A_TIME.lock();
        let report = fuzz(&greedy, &options()).unwrap();
        assert_eq!(report.crashes, 50);
        let _ = std::fs::remove_dir_all(options().crash_root);
        assert!(
            report.distinct[0].problem.starts_with("allocated 1024 MiB"),
            "{:?}",
            report.distinct
        );
    }
}
