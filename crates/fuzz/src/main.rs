//! `glassbox-fuzz [--runs N] [--seed S] [TARGET...]`: fuzzes each target (all when none
//! is named) and prints, per target, executions, distinct behaviours kept, crashes and
//! executions per second; exits 1 if anything crashed. `--replay FILE TARGET` runs one
//! saved input; `--list` names the targets.

use std::process::ExitCode;

use glassbox_fuzz::fuzzer::{Options, Report, fuzz, replay};
use glassbox_fuzz::targets::{TARGETS, load};

const USAGE: &str = "\
usage: glassbox-fuzz [--runs N] [--seed S] [TARGET...]
       glassbox-fuzz --replay FILE TARGET
       glassbox-fuzz --list

Fuzzes each TARGET (every target when none is named) for N executions (100000) from
seed S (1); crashing inputs are saved under target/fuzz-crashes/<target>/.";

/// What the command line asks for.
enum Command {
    Fuzz {
        options: Options,
        targets: Vec<String>,
    },
    Replay {
        file: String,
        target: String,
    },
    List,
    Help,
}

fn parse(args: &[String]) -> Result<Command, String> {
    let mut options = Options::new(100_000, 1);
    let mut targets = Vec::new();
    let mut replay_file = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value"))
                .cloned()
        };
        match arg.as_str() {
            "--runs" => {
                options.runs = value("--runs")?
                    .parse()
                    .map_err(|_| "--runs takes a whole number".to_owned())?;
            }
            "--seed" => {
                options.seed = value("--seed")?
                    .parse()
                    .map_err(|_| "--seed takes a whole number".to_owned())?;
            }
            "--replay" => replay_file = Some(value("--replay")?),
            "--list" => return Ok(Command::List),
            "-h" | "--help" => return Ok(Command::Help),
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            name => targets.push(name.to_owned()),
        }
    }
    match replay_file {
        Some(file) => match <[String; 1]>::try_from(targets) {
            Ok([target]) => Ok(Command::Replay { file, target }),
            Err(_) => Err("--replay takes a file and one target".to_owned()),
        },
        None => Ok(Command::Fuzz { options, targets }),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match parse(&args) {
        Ok(Command::Fuzz { options, targets }) => run(&options, &targets),
        Ok(Command::Replay { file, target }) => replay_file(&file, &target),
        Ok(Command::List) => {
            for (name, about) in TARGETS {
                println!("{name:<18} {about}");
            }
            Ok(true)
        }
        Ok(Command::Help) => {
            println!("{USAGE}");
            Ok(true)
        }
        Err(problem) => {
            eprintln!("glassbox-fuzz: {problem}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(problem) => {
            eprintln!("glassbox-fuzz: {problem}");
            ExitCode::from(2)
        }
    }
}

/// Fuzzes the targets in turn; true when nothing crashed.
fn run(options: &Options, names: &[String]) -> Result<bool, String> {
    let names: Vec<String> = if names.is_empty() {
        TARGETS.iter().map(|(name, _)| (*name).to_owned()).collect()
    } else {
        names.to_vec()
    };
    let targets = names
        .iter()
        .map(|name| load(name))
        .collect::<Result<Vec<_>, _>>()?;
    println!(
        "fuzzing {} target(s), {} executions each, seed {}",
        targets.len(),
        options.runs,
        options.seed
    );
    println!("{}", header());
    let mut reports = Vec::new();
    for target in &targets {
        let report = fuzz(target, options).map_err(|e| format!("{}: {e}", target.name))?;
        println!("{}", row(&report));
        reports.push(report);
    }
    for report in &reports {
        if let Some(file) = &report.slowest_file {
            println!(
                "{}: the slowest execution took {:.0} ms (its input is saved as {})",
                report.target,
                report.slowest.as_secs_f64() * 1e3,
                file.display()
            );
        }
    }
    let crashed: Vec<&Report> = reports.iter().filter(|r| r.crashes > 0).collect();
    for report in &crashed {
        for crash in &report.distinct {
            println!(
                "{}: {} (saved as {})",
                report.target,
                crash.problem,
                crash.file.display()
            );
        }
    }
    Ok(crashed.is_empty())
}

fn header() -> String {
    format!(
        "{:<18} {:>11} {:>10} {:>7} {:>8} {:>10} {:>9} {:>11}",
        "target", "executions", "behaviours", "corpus", "crashes", "exec/s", "time s", "slowest ms"
    )
}

fn row(r: &Report) -> String {
    format!(
        "{:<18} {:>11} {:>10} {:>7} {:>8} {:>10.0} {:>9.1} {:>11.1}",
        r.target,
        r.executions,
        r.behaviours,
        r.corpus,
        r.crashes,
        r.rate(),
        r.elapsed.as_secs_f64(),
        r.slowest.as_secs_f64() * 1e3
    )
}

/// Runs one saved input; true when it did not crash.
fn replay_file(file: &str, name: &str) -> Result<bool, String> {
    let input = std::fs::read(file).map_err(|e| format!("{file}: {e}"))?;
    let target = load(name)?;
    match replay(&target, &input) {
        Ok(behaviour) => {
            println!("{name}: no crash; behaviour {behaviour}");
            Ok(true)
        }
        Err(problem) => {
            println!("{name}: {problem}");
            Ok(false)
        }
    }
}
