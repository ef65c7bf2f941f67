//! `safetensors-model` and `config`: a Hugging Face checkpoint through `Model::from_hf`,
//! with the model crate's golden fixtures (GPT-2 in f16 and with erf GELU; Llama with
//! grouped-query attention, with tied embeddings and Llama 3 rope scaling, and a sharded
//! one with biases in f16). `safetensors-model` loads the input as the weights under every
//! fixture's config; `config` loads it as the config with every fixture's weights, and
//! reads it as a sharded checkpoint's index too.

use glassbox_model::Model;
use glassbox_model::checkpoint::{self, WEIGHTS_FILE};

use super::{Target, text};
use crate::Behaviour;
use crate::seeds::repo_file;

const FIXTURES: &str = "crates/model/tests/fixtures";
/// Single-file fixtures.
const SINGLE: [&str; 4] = ["tiny_f16", "wide_mlp_erf", "llama_gqa", "llama_tied_llama3"];
/// The sharded fixture and its shards.
const SHARDED: &str = "llama_mqa_bias_f16";
const SHARDS: [&str; 2] = [
    "model-00001-of-00002.safetensors",
    "model-00002-of-00002.safetensors",
];

/// One fixture: its config and its shards (name, bytes).
struct Fixture {
    config: String,
    shards: Vec<(String, Vec<u8>)>,
}

fn fixtures() -> Result<Vec<Fixture>, String> {
    let config = |name: &str| -> Result<String, String> {
        String::from_utf8(repo_file(&format!("{FIXTURES}/{name}/config.json"))?)
            .map_err(|_| format!("{name}/config.json is not UTF-8"))
    };
    let mut fixtures = SINGLE
        .iter()
        .map(|name| {
            Ok(Fixture {
                config: config(name)?,
                shards: vec![(
                    WEIGHTS_FILE.to_owned(),
                    repo_file(&format!("{FIXTURES}/{name}/{WEIGHTS_FILE}"))?,
                )],
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    fixtures.push(Fixture {
        config: config(SHARDED)?,
        shards: SHARDS
            .iter()
            .map(|shard| {
                Ok((
                    (*shard).to_owned(),
                    repo_file(&format!("{FIXTURES}/{SHARDED}/{shard}"))?,
                ))
            })
            .collect::<Result<_, String>>()?,
    });
    Ok(fixtures)
}

pub(super) fn weights_target() -> Result<Target, String> {
    let fixtures = fixtures()?;
    let seeds = fixtures
        .iter()
        .flat_map(|f| f.shards.iter().map(|(_, bytes)| bytes.clone()))
        .collect();
    let configs: Vec<String> = fixtures.into_iter().map(|f| f.config).collect();
    Ok(Target {
        name: "safetensors-model",
        // The header is JSON: token-level mutations reach its shapes and offsets.
        text: true,
        seeds,
        run: Box::new(move |input| {
            let mut b = Behaviour::default();
            let shards = [(WEIGHTS_FILE, input)];
            b.stage("size", checkpoint::f32_bytes(&shards));
            for config in &configs {
                if let Some(model) = b.stage("load", Model::from_hf(config, &shards)) {
                    let _ = model.hook_points();
                }
            }
            b
        }),
    })
}

pub(super) fn config_target() -> Result<Target, String> {
    let fixtures = fixtures()?;
    let mut seeds: Vec<Vec<u8>> = fixtures
        .iter()
        .map(|f| f.config.clone().into_bytes())
        .collect();
    seeds.push(repo_file(&format!(
        "{FIXTURES}/{SHARDED}/{}",
        checkpoint::INDEX_FILE
    ))?);
    Ok(Target {
        name: "config",
        text: true,
        seeds,
        run: Box::new(move |input| {
            let mut b = Behaviour::default();
            let config = text(input);
            b.stage("index", checkpoint::shard_names(&config));
            for fixture in &fixtures {
                let shards: Vec<(&str, &[u8])> = fixture
                    .shards
                    .iter()
                    .map(|(name, bytes)| (name.as_str(), bytes.as_slice()))
                    .collect();
                if let Some(model) = b.stage("load", Model::from_hf(&config, &shards)) {
                    let _ = model.hook_points();
                }
            }
            b
        }),
    })
}
