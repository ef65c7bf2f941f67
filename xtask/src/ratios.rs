//! The side-by-side table `cargo xtask bench` ends with: each time the CPU engine's
//! benchmark printed next to the reference's for the same row (PyTorch's
//! `forward_torch.py` prints the same labels), as a speed ratio next to its goal.

use std::fmt::Write as _;

/// The speed ratio the CPU engine aims for against a reference: as fast or faster.
pub(crate) const GOAL: f64 = 1.0;

/// Each timed row of a benchmark's output, in order: its label (what comes before
/// `: median` or `: N ms per token`) and its milliseconds.
pub(crate) fn timed_rows(output: &str) -> Vec<(String, f64)> {
    output
        .lines()
        .filter_map(|line| {
            let (label, rest) = line.rsplit_once(": ")?;
            let rest = rest.strip_prefix("median ").unwrap_or(rest);
            let (number, unit) = rest.split_once(' ')?;
            if !unit.starts_with("ms") {
                return None;
            }
            Some((label.trim().to_owned(), number.parse().ok()?))
        })
        .collect()
}

/// The [`timed_rows`] of the lines of `output` that begin with `engine: ` (a page that
/// times two engines in turns prints each row under its engine's name), that name removed.
pub(crate) fn rows_of(output: &str, engine: &str) -> Vec<(String, f64)> {
    let prefix = format!("{engine}: ");
    let lines: Vec<&str> = output
        .lines()
        .filter_map(|line| line.strip_prefix(prefix.as_str()))
        .collect();
    timed_rows(&lines.join("\n"))
}

/// The table of `ours` against `reference` (both [`timed_rows`]), row by row where both
/// timed the same label: milliseconds, the ratio `reference / ours` (above 1: ours is
/// faster) and whether it meets `goal` (`None`: a pairing shown for context, which no
/// goal is set for); rows only one side timed are listed as such.
pub(crate) fn table(
    ours: &[(String, f64)],
    reference: &[(String, f64)],
    names: (&str, &str),
    goal: Option<f64>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<72} {:>10} {:>10} {:>7}  goal",
        "row (ms)", names.0, names.1, "ratio"
    );
    for (label, ms) in ours {
        match reference.iter().find(|(l, _)| l == label) {
            Some((_, theirs)) => {
                let ratio = theirs / ms;
                let verdict = match goal {
                    Some(goal) if ratio >= goal => format!(">= {goal:.1} met"),
                    Some(goal) => format!(">= {goal:.1} not yet"),
                    None => "no goal".to_owned(),
                };
                let _ = writeln!(
                    out,
                    "{label:<72} {ms:>10.1} {theirs:>10.1} {ratio:>7.2}  {verdict}"
                );
            }
            None => {
                let _ = writeln!(out, "{label:<72} {ms:>10.1} {:>10}", "(none)");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "glassbox-model CPU engine (candle-core), 2 threads
default-pack shape (4 layers), 64 tokens: median 15.1 ms over 50 runs
SmolLM2-135M (Q4_1 GGUF, f32 on the CPU): loaded in 852 ms
SmolLM2-135M, decode after a 64-token prompt: 50.3 ms per token, 19.9 tokens/s (median of 4 runs of 32)
GPT-2 small shape, 1 tokens: median 9.0 ms over 50 runs
";
    const TORCH: &str = "PyTorch 2.15.0 CPU, 2 threads
default-pack shape (4 layers), 64 tokens: median 15.6 ms over 50 runs
SmolLM2-135M, decode after a 64-token prompt: 70.4 ms per token, 14.2 tokens/s (median of 4 runs of 32)
";

    #[test]
    fn timed_rows_are_read_by_label_and_loading_lines_are_not() {
        let rows = timed_rows(OURS);
        assert_eq!(
            rows,
            vec![
                ("default-pack shape (4 layers), 64 tokens".to_owned(), 15.1),
                (
                    "SmolLM2-135M, decode after a 64-token prompt".to_owned(),
                    50.3
                ),
                ("GPT-2 small shape, 1 tokens".to_owned(), 9.0),
            ]
        );
    }

    #[test]
    fn the_table_gives_each_shared_row_its_ratio_and_verdict() {
        let table = table(
            &timed_rows(OURS),
            &timed_rows(TORCH),
            ("Glassbox", "PyTorch"),
            Some(GOAL),
        );
        let line = |start: &str| {
            table
                .lines()
                .find(|l| l.starts_with(start))
                .unwrap()
                .to_owned()
        };
        // 15.6 / 15.1 = 1.03: met; 70.4 / 50.3 = 1.40: met.
        assert!(line("default-pack").contains("1.03  >= 1.0 met"), "{table}");
        assert!(
            line("SmolLM2-135M, decode").contains("1.40  >= 1.0 met"),
            "{table}"
        );
        assert!(line("GPT-2 small").contains("(none)"), "{table}");
        let slower = table_of(20.0, 10.0, Some(GOAL));
        assert!(slower.contains("0.50  >= 1.0 not yet"), "{slower}");
    }

    #[test]
    fn a_pairing_without_a_goal_gives_its_ratio_and_no_verdict() {
        let context = table_of(20.0, 10.0, None);
        let row = context.lines().find(|l| l.starts_with("a row")).unwrap();
        assert!(row.ends_with("0.50  no goal"), "{context}");
        assert!(
            !context.contains("not yet") && !context.contains("met"),
            "{context}"
        );
    }

    #[test]
    fn rows_of_one_engine_are_read_from_a_page_that_timed_two() {
        let page = "onnxruntime-web, 1 thread (wasm backend) and Glassbox's CPU engine, 2 cores
default shape: ONNX model 21.3 MB
  64 tokens: logits agree to 1.4e-6 (largest 2.05)
Glassbox, beside 1: default shape, 64 tokens: median 31.4 ms over 9 rounds
onnxruntime-web, 1 thread: default shape, 64 tokens: median 64.8 ms over 9 rounds
";
        assert_eq!(
            rows_of(page, "Glassbox, beside 1"),
            vec![("default shape, 64 tokens".to_owned(), 31.4)]
        );
        assert_eq!(
            rows_of(page, "onnxruntime-web, 1 thread"),
            vec![("default shape, 64 tokens".to_owned(), 64.8)]
        );
        assert!(rows_of(page, "onnxruntime-web, 2 threads").is_empty());
    }

    fn table_of(ours: f64, theirs: f64, goal: Option<f64>) -> String {
        let row = |ms| vec![("a row".to_owned(), ms)];
        table(&row(ours), &row(theirs), ("Glassbox", "PyTorch"), goal)
    }
}
