//! The fuzz targets: each a parser of untrusted input, its seeds, and what one execution
//! calls on an input (the real parser, and what the app does next with what it loaded).
//! Loaded or refused is all the same to the fuzzer; only a panic or a huge allocation is
//! a crash. An execution's [`Behaviour`] is the corpus's proxy for new behaviour.

mod dictionary;
mod gguf;
mod graph;
mod manifest;
mod model;
mod pack_files;
mod query;
mod tokenizer;

use crate::Behaviour;

/// What one execution calls.
type Run = Box<dyn Fn(&[u8]) -> Behaviour>;

/// One target.
pub struct Target {
    /// Its name on the command line.
    pub name: &'static str,
    /// Whether inputs are text (token-level mutations apply as well as byte-level ones).
    pub text: bool,
    /// The inputs the corpus starts from.
    pub seeds: Vec<Vec<u8>>,
    pub(crate) run: Run,
}

impl Target {
    /// One execution on `input`.
    #[must_use]
    pub fn run(&self, input: &[u8]) -> Behaviour {
        (self.run)(input)
    }
}

/// Every target, by name, with what it reads.
pub const TARGETS: [(&str, &str); 9] = [
    ("manifest", "Pack::parse_manifest on manifest.json"),
    (
        "pack-files",
        "Pack::verify and Pack::load (and load_shard) with one file of a small pack replaced",
    ),
    (
        "safetensors-model",
        "Model::from_hf on safetensors weights, under the fixtures' GPT-2 and Llama configs",
    ),
    (
        "config",
        "Model::from_hf on config.json with the fixtures' weights; checkpoint::shard_names",
    ),
    ("gguf", "Gguf::parse, then .llama() and .tokenizer()"),
    (
        "dictionary",
        "Dictionary::load on cfg.json and safetensors weights",
    ),
    (
        "graph-json",
        "GraphFile::parse, then what the circuit view does with a file",
    ),
    (
        "query",
        "the page's links: parse_link, parse_steer_features, parse_supernodes, pack_from_query",
    ),
    (
        "tokenizer",
        "Tokenizer::from_json, then encoding and decoding",
    ),
];

/// The target called `name`, with its seeds read.
pub fn load(name: &str) -> Result<Target, String> {
    match name {
        "manifest" => manifest::target(),
        "pack-files" => pack_files::target(),
        "safetensors-model" => model::weights_target(),
        "config" => model::config_target(),
        "gguf" => Ok(gguf::target()),
        "dictionary" => dictionary::target(),
        "graph-json" => Ok(graph::target()),
        "query" => Ok(query::target()),
        "tokenizer" => tokenizer::target(),
        other => Err(format!(
            "no target `{other}`; the targets are {}",
            TARGETS.map(|(name, _)| name).join(", ")
        )),
    }
}

/// An input as text, as a browser or `fs::read_to_string` would have refused it, mapped
/// lossily so that text targets see every input.
fn text(input: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(input)
}

#[cfg(test)]
mod tests {
    use super::{TARGETS, load};
    use crate::fuzzer::{ONE_AT_A_TIME, Options, fuzz};

    /// Every target, 2000 executions from a fixed seed: `cargo test` always runs a short
    /// pass (`cargo xtask fuzz` runs long ones).
    #[test]
    fn every_target_survives_a_short_pass() {
        let _turn = ONE_AT_A_TIME.lock();
        let mut options = Options::new(2000, 7);
        // Apart from the command line's, whose leftovers are its own to report.
        options.crash_root = options.crash_root.join("cargo-test");
        for (name, _) in TARGETS {
            let target = load(name).unwrap();
            let report = fuzz(&target, &options).unwrap();
            let problems: Vec<String> = report.distinct.iter().map(|c| c.problem.clone()).collect();
            assert_eq!(report.crashes, 0, "{name} crashed: {problems:#?}");
            assert_eq!(report.executions, 2000);
            assert!(report.behaviours > 1, "{name}: every input behaved alike");
        }
    }
}
