//! The lab's answers on the committed default pack, checked against the model run by
//! hand and against the pack's own stored numbers.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use candle_core::Tensor;
use glassbox_engine::LogitsRead;
use glassbox_lab::{
    AdapterPreference, Contrast, FeatureSteer, Lab, NodeEdit, PassRequest, SearchQuery, SteerMode,
    SteerRequest,
};
use glassbox_model::{HookPoint, Hooks, Norm};
use glassbox_pack::dir;
use pollster::block_on;

fn load() -> Lab {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../www/packs/brown");
    Lab::from_pack(dir::load(&root).unwrap()).unwrap()
}

/// The default pack on the CPU engine.
fn lab() -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    LAB.get_or_init(load)
}

/// The default pack on the GPU engine (lavapipe, or a GPU with `GLASSBOX_ADAPTER=gpu`);
/// no adapter fails the test.
fn gpu_lab() -> &'static Lab {
    static LAB: OnceLock<Lab> = OnceLock::new();
    LAB.get_or_init(|| {
        let lab = load();
        let info = block_on(lab.start_gpu(AdapterPreference::from_env(), true)).unwrap();
        assert!(info.gpu.is_some());
        lab
    })
}

const PROMPT: &str = "The jury said that the city of Atlanta";

/// Asserts that `result` is an error whose message says `expected`.
fn assert_refused<T: std::fmt::Debug>(result: glassbox_lab::Result<T>, expected: &str) {
    let message = result.unwrap_err().to_string();
    assert!(message.contains(expected), "{message}");
}

#[test]
fn a_prompt_is_tokenized_predicted_and_decomposed_into_features() {
    let lab = lab();
    let analysis = block_on(lab.analyze(PROMPT, 10, 5)).unwrap();
    let joined: String = analysis.tokens.iter().map(|t| t.text.as_str()).collect();
    assert_eq!(joined, PROMPT);
    let p: Vec<f32> = analysis.predictions.iter().map(|p| p.probability).collect();
    assert_eq!(p.len(), 10);
    assert!(p.windows(2).all(|w| w[0] >= w[1]));
    assert!(p.iter().sum::<f32>() <= 1.0 + 1e-5 && p[0] > 0.0);
    assert_eq!(analysis.features.len(), analysis.tokens.len());
    for (position, per_layer) in analysis.features.iter().enumerate() {
        assert_eq!(per_layer.len(), lab.dictionaries.len());
        for (layer, features) in per_layer.iter().enumerate() {
            assert!(!features.is_empty() && features.len() <= 5);
            assert!(
                features
                    .windows(2)
                    .all(|w| w[0].activation >= w[1].activation)
            );
            // The strongest feature's activation is what the feature computes on its own.
            let top = &features[0];
            assert_eq!(top.layer, layer);
            let ids: Vec<u32> = analysis.tokens.iter().map(|t| t.id).collect();
            let alone = block_on(lab.feature_activations(&ids, layer, top.feature)).unwrap();
            assert!((alone[position] - top.activation).abs() < 1e-4);
        }
    }
}

#[test]
fn prompts_the_model_cannot_read_are_refused_with_the_reason() {
    let lab = lab();
    let long = "word ".repeat(400);
    let error = block_on(lab.analyze(&long, 5, 5)).unwrap_err().to_string();
    assert!(error.contains("at most 128"), "{error}");
    let error = block_on(lab.analyze("", 5, 5)).unwrap_err().to_string();
    assert!(error.contains("empty"), "{error}");
    // A megabyte of text is refused before it is tokenized, wherever text enters.
    let huge = "a".repeat(1 << 20);
    for error in [
        block_on(lab.analyze(&huge, 5, 5)).unwrap_err(),
        block_on(lab.search(&SearchQuery::Token(huge.clone()), 5)).unwrap_err(),
        block_on(lab.logit_lens(&huge, 5)).unwrap_err(),
    ] {
        let error = error.to_string();
        assert!(
            error.contains("1048576 bytes long; at most 65536"),
            "{error}"
        );
    }
    let error = block_on(lab.feature_activations(&[1, 2], 9, 0))
        .unwrap_err()
        .to_string();
    assert!(error.contains("no block 9"), "{error}");
    let error = block_on(lab.example(0, 0, 100_000, 0, 5))
        .unwrap_err()
        .to_string();
    assert!(error.contains("no token"), "{error}");
}

#[test]
fn a_corpus_example_recomputes_to_its_stored_activation() {
    let lab = lab();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../www/packs/brown");
    let pack =
        glassbox_pack::Pack::parse_manifest(&std::fs::read(root.join("manifest.json")).unwrap())
            .unwrap();
    let shard = dir::load_shard(&root, &pack, 2, 5).unwrap();
    let record = shard.features.iter().find(|r| !r.top.is_empty()).unwrap();
    let stored = record.top[0];
    let example =
        block_on(lab.example(2, record.index, stored.document(), stored.position(), 8)).unwrap();
    assert!(example.tokens.len() <= 17);
    assert_eq!(example.tokens.len(), example.activations.len());
    let live = example.activations[example.at];
    assert!(
        (live - stored.activation()).abs() < 2e-3,
        "{live} vs {stored:?}"
    );
}

#[test]
fn search_finds_features_by_label_tag_token_and_text() {
    let lab = lab();
    let tags = lab.tags();
    assert!(!tags.is_empty());
    let tag = tags.iter().find(|t| *t == "NN").unwrap_or(&tags[0]).clone();
    assert_eq!(
        SearchQuery::parse(&tag, &tags),
        SearchQuery::Tag(tag.clone())
    );
    let hits = block_on(lab.search(&SearchQuery::Tag(tag.clone()), 1000)).unwrap();
    assert!(!hits.is_empty());
    for hit in &hits {
        assert_eq!(
            lab.labels.layers[hit.layer][hit.feature].2.as_deref(),
            Some(tag.as_str())
        );
    }
    assert!(hits.windows(2).all(|w| w[0].frequency >= w[1].frequency));

    let word = hits[0]
        .label
        .split_whitespace()
        .next()
        .unwrap()
        .to_lowercase();
    let by_label = block_on(lab.search(&SearchQuery::Label(word.clone()), 50)).unwrap();
    assert!(
        by_label
            .iter()
            .all(|h| h.label.to_lowercase().contains(&word))
    );
    assert!(!by_label.is_empty());

    let of = lab.tokenizer.encode_ids(" of").unwrap();
    let by_token = block_on(lab.search(&SearchQuery::parse("token:\" of\"", &tags), 50)).unwrap();
    assert!(!by_token.is_empty());
    for hit in &by_token {
        assert!(lab.labels.layers[hit.layer][hit.feature].3.contains(&of[0]));
    }

    let by_text = block_on(lab.search(&SearchQuery::Text(PROMPT.to_owned()), 10)).unwrap();
    assert_eq!(by_text.len(), 10);
    assert!(
        by_text
            .windows(2)
            .all(|w| w[0].activation >= w[1].activation)
    );
    let analysis = block_on(lab.analyze(PROMPT, 0, usize::MAX)).unwrap();
    let strongest = analysis
        .features
        .iter()
        .flatten()
        .flatten()
        .map(|f| f.activation)
        .fold(0.0_f32, f32::max);
    assert!((by_text[0].activation - strongest).abs() < 1e-6);
}

fn request(features: Vec<FeatureSteer>) -> SteerRequest {
    SteerRequest {
        prompt: PROMPT.to_owned(),
        features,
        max_tokens: 12,
        temperature: 0.8,
        seed: 7,
    }
}

#[test]
fn steering_writes_exactly_the_decoder_direction_and_is_reproducible() {
    let lab = lab();
    let ids = lab.prompt_ids(PROMPT).unwrap();
    let (layer, feature, value) = (1, 3, 20.0_f32);
    let steer = [FeatureSteer {
        layer,
        feature,
        mode: SteerMode::Clamp(value),
    }];
    let out = HookPoint::MlpOut(layer);
    let input = HookPoint::LnNormalized(layer, Norm::Ln2);
    let mut clean = Hooks::none().cache(out).cache(input);
    lab.model().forward_ids(&ids, &mut clean).unwrap();
    let clean = clean.take_cache();
    let steered_pass = PassRequest {
        steering: lab.steering(&steer, None).unwrap(),
        ..PassRequest::logits(LogitsRead::None)
    };
    let keep_out = Hooks::none().cache(out);
    let (_, steered) = block_on(lab.pass_with(&ids, &steered_pass, &keep_out)).unwrap();
    let dictionary = &lab.dictionaries[layer];
    let old: Vec<f32> = dictionary
        .encode(&clean[&input].squeeze(0).unwrap())
        .unwrap()
        .narrow(1, feature, 1)
        .unwrap()
        .squeeze(1)
        .unwrap()
        .to_vec1()
        .unwrap();
    let direction: Vec<f32> = dictionary.w_dec.get(feature).unwrap().to_vec1().unwrap();
    let change: Vec<Vec<f32>> = (&steered[&out] - &clean[&out])
        .unwrap()
        .squeeze(0)
        .unwrap()
        .to_vec2()
        .unwrap();
    for (position, row) in change.iter().enumerate() {
        for (d, v) in row.iter().enumerate() {
            let expected = (value - old[position]) * direction[d];
            assert!(
                (v - expected).abs() < 1e-3,
                "position {position}: {v} vs {expected}"
            );
        }
    }

    let result = block_on(lab.steer(&request(steer.to_vec()))).unwrap();
    assert_eq!(
        result,
        block_on(lab.steer(&request(steer.to_vec()))).unwrap()
    );
    assert!(result.raised[0].1 > 0.0 && result.lowered[0].1 < 0.0);
    // Scaling by one changes nothing.
    let identity = block_on(lab.steer(&request(vec![FeatureSteer {
        layer,
        feature,
        mode: SteerMode::Scale(1.0),
    }])))
    .unwrap();
    assert_eq!(identity.steered, identity.baseline);
    assert!(identity.raised[0].1.abs() < 1e-3);
}

#[test]
fn impossible_steering_is_refused() {
    let lab = lab();
    let bad_feature = FeatureSteer {
        layer: 0,
        feature: 1_000_000,
        mode: SteerMode::Scale(0.0),
    };
    let error = block_on(lab.steer(&request(vec![bad_feature])))
        .unwrap_err()
        .to_string();
    assert!(error.contains("features 0 to"), "{error}");
    let nan = FeatureSteer {
        layer: 0,
        feature: 0,
        mode: SteerMode::Clamp(f32::NAN),
    };
    assert!(block_on(lab.steer(&request(vec![nan]))).is_err());
    let many = (0..65)
        .map(|feature| FeatureSteer {
            layer: 0,
            feature,
            mode: SteerMode::Scale(0.0),
        })
        .collect();
    let error = block_on(lab.steer(&request(many))).unwrap_err().to_string();
    assert!(
        error.contains("65 features to steer; at most 64"),
        "{error}"
    );
    let mut too_long = request(Vec::new());
    too_long.max_tokens = 10_000;
    assert!(
        block_on(lab.steer(&too_long))
            .unwrap_err()
            .to_string()
            .contains("generate 1 to")
    );
}

/// Both engines' strongest features at one token and block must be the same features
/// with the same activations, allowing only near-ties to swap places.
fn same_features(cpu: &[glassbox_lab::ActiveFeature], gpu: &[glassbox_lab::ActiveFeature]) {
    assert_eq!(cpu.len(), gpu.len());
    for (c, g) in cpu.iter().zip(gpu) {
        // Rank by rank the activations agree, so a swap can only be between near-equals.
        assert!((c.activation - g.activation).abs() < 1e-3, "{c:?} vs {g:?}");
    }
}

#[test]
fn the_gpu_engine_answers_as_the_cpu_engine_does() {
    let (cpu, gpu) = (lab(), gpu_lab());
    for text in [PROMPT, "In 1961, the Senate voted", "a"] {
        let (a, b) = (
            block_on(cpu.analyze(text, 10, 8)).unwrap(),
            block_on(gpu.analyze(text, 10, 8)).unwrap(),
        );
        assert_eq!(a.tokens, b.tokens);
        for (p, q) in a.predictions.iter().zip(&b.predictions) {
            assert!(
                (p.probability - q.probability).abs() < 1e-4,
                "{p:?} vs {q:?}"
            );
        }
        let ids = |x: &glassbox_lab::PromptAnalysis| {
            x.predictions
                .iter()
                .take(3)
                .map(|p| p.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&a), ids(&b), "{text}");
        for (x, y) in a.features.iter().flatten().zip(b.features.iter().flatten()) {
            same_features(x, y);
        }
    }
    let tokens = cpu.prompt_ids(PROMPT).unwrap();
    for (layer, feature) in [(0, 7), (3, 2000)] {
        let a = block_on(cpu.feature_activations(&tokens, layer, feature)).unwrap();
        let b = block_on(gpu.feature_activations(&tokens, layer, feature)).unwrap();
        assert_eq!((a.len(), b.len()), (tokens.len(), tokens.len()));
        assert!(
            a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-3),
            "{a:?} vs {b:?}"
        );
    }
    // A live corpus example: a whole 128-token window.
    for (document, position) in [(3, 348), (0, 5)] {
        let a = block_on(cpu.example(1, 5, document, position, 12)).unwrap();
        let b = block_on(gpu.example(1, 5, document, position, 12)).unwrap();
        assert_eq!(a.tokens, b.tokens);
        assert_eq!(a.activations.len(), b.activations.len());
        assert!(
            a.activations
                .iter()
                .zip(&b.activations)
                .all(|(x, y)| (x - y).abs() < 1e-3),
            "{a:?} vs {b:?}"
        );
    }
    let steer = vec![
        FeatureSteer {
            layer: 1,
            feature: 3,
            mode: SteerMode::Clamp(20.0),
        },
        FeatureSteer {
            layer: 2,
            feature: 9,
            mode: SteerMode::Scale(0.0),
        },
    ];
    let mut greedy = request(steer.clone());
    greedy.temperature = 0.0;
    for r in [greedy, request(steer)] {
        let (a, b) = (
            block_on(cpu.steer(&r)).unwrap(),
            block_on(gpu.steer(&r)).unwrap(),
        );
        assert_eq!(
            (&a.baseline, &a.steered),
            (&b.baseline, &b.steered),
            "{r:?}"
        );
        assert!((a.raised[0].1 - b.raised[0].1).abs() < 1e-2);
    }
    let text = SearchQuery::Text(PROMPT.to_owned());
    let (a, b) = (
        block_on(cpu.search(&text, 10)).unwrap(),
        block_on(gpu.search(&text, 10)).unwrap(),
    );
    assert!((a[0].activation - b[0].activation).abs() < 1e-3);
    assert!(gpu.engine_info().gpu.is_some(), "{:?}", gpu.engine_info());
}

#[test]
fn a_software_adapter_is_taken_only_when_asked_for() {
    // Natively the test adapter is lavapipe, a software one (unless GLASSBOX_ADAPTER=gpu).
    if AdapterPreference::from_env() != AdapterPreference::Software {
        return;
    }
    let lab = load();
    let error = block_on(lab.start_gpu(AdapterPreference::Software, false)).unwrap_err();
    assert!(error.to_string().contains("software renderer"), "{error}");
    let info = lab.engine_info();
    assert!(info.gpu.is_none() && info.note.is_some(), "{info:?}");
}

#[test]
fn a_lost_gpu_hands_over_to_the_cpu_without_losing_the_request() {
    let lab = load();
    block_on(lab.start_gpu(AdapterPreference::from_env(), true)).unwrap();
    let expected = block_on(self::lab().analyze(PROMPT, 5, 3)).unwrap();
    lab.gpu_model().unwrap().context().device().destroy();
    let answer = block_on(lab.analyze(PROMPT, 5, 3)).unwrap();
    assert_eq!(answer.tokens, expected.tokens);
    assert_eq!(answer.predictions, expected.predictions);
    let info = lab.engine_info();
    assert!(info.gpu.is_none(), "{info:?}");
    assert!(
        info.note
            .as_deref()
            .is_some_and(|n| n.contains("CPU engine took over")),
        "{info:?}"
    );
    // And it stays on the CPU, answering.
    assert!(block_on(lab.steer(&request(Vec::new()))).is_ok());
}

#[test]
fn a_prompt_gives_a_graph_that_thresholds_prune_and_bad_requests_are_refused() {
    use glassbox_lab::Thresholds;
    let lab = lab();
    let full = block_on(lab.circuit(PROMPT, None, Thresholds::default())).unwrap();
    let fewer = block_on(lab.circuit(
        PROMPT,
        None,
        Thresholds {
            nodes: 0.4,
            edges: 0.9,
        },
    ))
    .unwrap();
    assert!(fewer.nodes.len() < full.nodes.len() && fewer.links.len() < full.links.len());
    assert_eq!(full.metadata.prompt, PROMPT);
    assert!(full.nodes.iter().any(|n| n.feature_type == "logit"));
    // Labels come from the pack.
    let feature = full
        .nodes
        .iter()
        .find(|n| n.feature_type == "cross layer transcoder")
        .unwrap();
    assert!(!feature.clerp.is_empty());
    for bad in [
        Thresholds {
            nodes: 1.5,
            edges: 0.9,
        },
        Thresholds {
            nodes: 0.5,
            edges: -0.1,
        },
    ] {
        let error = block_on(lab.circuit(PROMPT, None, bad))
            .unwrap_err()
            .to_string();
        assert!(error.contains("between 0 and 1"), "{error}");
    }
    let long = "word ".repeat(70);
    let error = block_on(lab.circuit(&long, None, Thresholds::default()))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains(&format!("at most {}", glassbox_lab::MAX_CIRCUIT_TOKENS)),
        "{error}"
    );
}

/// A prompt with more active features than the cap keeps the most influential ones,
/// and says how many were active.
#[test]
fn long_prompts_keep_the_most_influential_features() {
    use glassbox_lab::{MAX_CIRCUIT_FEATURES, Thresholds};
    let lab = lab();
    let text = "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent \
                primary election produced no evidence that any irregularities took place, and \
                the jury praised the city";
    assert!(lab.prompt_ids(text).unwrap().len() > MAX_CIRCUIT_FEATURES / 128);
    let all = Thresholds {
        nodes: 1.0,
        edges: 1.0,
    };
    let graph = block_on(lab.circuit(text, None, all)).unwrap();
    let features = graph
        .nodes
        .iter()
        .filter(|n| n.feature_type == "cross layer transcoder")
        .count();
    let active = graph.metadata.active_features.unwrap();
    assert!(active > MAX_CIRCUIT_FEATURES, "{active}");
    // Pruning at 1.0 keeps every node that sends and receives: close to the cap.
    assert!(
        features <= MAX_CIRCUIT_FEATURES && features > MAX_CIRCUIT_FEATURES / 2,
        "{features}"
    );
}

/// A node of the default thresholds' graph: `(layer, feature, position)` of a feature
/// in block `layer`, parsed from its id.
fn feature_node(graph: &glassbox_lab::GraphFile, layer: usize) -> (usize, usize, usize) {
    graph
        .nodes
        .iter()
        .filter(|n| n.feature_type == "cross layer transcoder")
        .map(|n| {
            let mut parts = n.node_id.split('_').map(|p| p.parse::<usize>().unwrap());
            (
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap(),
            )
        })
        .find(|&(l, _, _)| l == layer)
        .unwrap()
}

/// The activation of feature `feature` of block `layer` at `position`, a node of `graph`.
fn activation_of(
    graph: &glassbox_lab::GraphFile,
    layer: usize,
    feature: usize,
    position: usize,
) -> f32 {
    graph
        .nodes
        .iter()
        .find(|n| n.node_id == format!("{layer}_{feature}_{position}"))
        .and_then(|n| n.activation)
        .unwrap()
}

/// Ablating or clamping a feature, or taking an error out: the graph's prediction, the
/// frozen model's and the real model's change of every logit node. In the last block no
/// MLP comes after the node, so the frozen model moves exactly as the graph predicts.
#[test]
fn node_interventions_show_the_graphs_prediction_next_to_the_models() {
    use glassbox_lab::{NodeEdit, Thresholds};
    let lab = lab();
    let graph = block_on(lab.circuit(PROMPT, None, Thresholds::default())).unwrap();
    let logits = graph
        .nodes
        .iter()
        .filter(|n| n.feature_type == "logit")
        .count();
    let last = lab.dictionaries.len() - 1;
    let close = |a: f32, b: f32| (a - b).abs() < 2e-3 + 2e-3 * a.abs().max(b.abs());
    for layer in [0, last] {
        let (layer, feature, position) = feature_node(&graph, layer);
        let activation = activation_of(&graph, layer, feature, position);
        let edit = |value| NodeEdit::Feature {
            layer,
            position,
            feature,
            value,
        };
        let ablated = block_on(lab.intervene_node(PROMPT, None, edit(0.0))).unwrap();
        let doubled = block_on(lab.intervene_node(PROMPT, None, edit(2.0 * activation))).unwrap();
        assert_eq!((ablated.len(), doubled.len()), (logits, logits));
        for (a, d) in ablated.iter().zip(&doubled) {
            assert!(a.predicted.is_finite() && a.frozen.is_finite() && a.actual.is_finite());
            // Direct effects are linear in the activation: doubling undoes ablating.
            assert!(close(a.predicted, -d.predicted), "{a:?} {d:?}");
            if layer == last {
                assert!(close(a.frozen, a.predicted), "{a:?}");
                assert!(close(d.frozen, d.predicted), "{d:?}");
            }
        }
        assert!(ablated.iter().any(|c| c.actual.abs() > 1e-4), "{ablated:?}");
    }
    // The last block's error at the last position writes straight into the logits.
    let position = lab.prompt_ids(PROMPT).unwrap().len() - 1;
    let error = block_on(lab.intervene_node(
        PROMPT,
        None,
        NodeEdit::Error {
            layer: last,
            position,
        },
    ))
    .unwrap();
    assert_eq!(error.len(), logits);
    for change in &error {
        assert!(close(change.frozen, change.predicted), "{change:?}");
    }
    assert!(error.iter().any(|c| c.predicted.abs() > 1e-3), "{error:?}");
    // A feature that is not active at that position is not a node; bad edits are refused.
    let (layer, feature, position) = feature_node(&graph, 0);
    for (bad, expected) in [
        (
            NodeEdit::Feature {
                layer,
                position,
                feature: (feature + 1) % 2048,
                value: 0.0,
            },
            "not a node",
        ),
        (
            NodeEdit::Feature {
                layer,
                position: 99,
                feature,
                value: 0.0,
            },
            "past the prompt",
        ),
        (
            NodeEdit::Feature {
                layer,
                position,
                feature,
                value: f32::NAN,
            },
            "not an activation",
        ),
        (
            NodeEdit::Error {
                layer: 9,
                position: 0,
            },
            "no block 9",
        ),
    ] {
        assert_refused(block_on(lab.intervene_node(PROMPT, None, bad)), expected);
    }
}

/// Interventions on a graph's nodes run on whichever engine answers: the GPU engine's
/// three changes of every logit are the CPU engine's.
#[test]
fn node_interventions_agree_on_both_engines() {
    use glassbox_lab::{NodeEdit, Thresholds};
    let (cpu, gpu) = (lab(), gpu_lab());
    let graph = block_on(cpu.circuit(PROMPT, None, Thresholds::default())).unwrap();
    let (layer, feature, position) = feature_node(&graph, 1);
    for edit in [
        NodeEdit::Feature {
            layer,
            position,
            feature,
            value: 0.0,
        },
        NodeEdit::Error { layer, position },
    ] {
        let a = block_on(cpu.intervene_node(PROMPT, None, edit)).unwrap();
        let b = block_on(gpu.intervene_node(PROMPT, None, edit)).unwrap();
        assert_eq!(a.len(), b.len());
        assert!(
            a.iter().any(|c| c.actual.abs() > 1e-3),
            "{edit:?} changed nothing"
        );
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.token, y.token);
            for (p, q) in [
                (x.predicted, y.predicted),
                (x.frozen, y.frozen),
                (x.actual, y.actual),
            ] {
                assert!((p - q).abs() < 1e-3, "{edit:?}: {x:?} vs {y:?}");
            }
        }
    }
    assert!(gpu.engine_info().gpu.is_some(), "{:?}", gpu.engine_info());
}

/// The GPU engine's graphs are the CPU engine's.
#[test]
fn the_gpu_engine_computes_the_same_graphs() {
    use glassbox_lab::Thresholds;
    let (cpu, gpu) = (lab(), gpu_lab());
    let all = Thresholds {
        nodes: 1.0,
        edges: 1.0,
    };
    let a = block_on(cpu.circuit(PROMPT, None, all)).unwrap();
    let b = block_on(gpu.circuit(PROMPT, None, all)).unwrap();
    assert!(gpu.engine_info().gpu.is_some(), "{:?}", gpu.engine_info());
    let ids = |g: &glassbox_lab::GraphFile| {
        g.nodes
            .iter()
            .map(|n| n.node_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&a), ids(&b));
    assert_eq!(a.links.len(), b.links.len());
    let largest = a
        .links
        .iter()
        .map(|l| l.weight.abs())
        .fold(0.0_f32, f32::max);
    for (x, y) in a.links.iter().zip(&b.links) {
        assert_eq!((&x.source, &x.target), (&y.source, &y.target));
        assert!((x.weight - y.weight).abs() < 1e-4 * largest, "{x:?} {y:?}");
    }
}

/// Attention patterns: rows of probabilities over the keys so far, the same on both
/// engines; a block that does not exist is refused.
#[test]
fn attention_patterns_are_causal_distributions_on_both_engines() {
    let (cpu, gpu) = (lab(), gpu_lab());
    let len = cpu.prompt_ids(PROMPT).unwrap().len();
    for layer in 0..cpu.dictionaries.len() {
        let a = block_on(cpu.attention(PROMPT, layer)).unwrap();
        let b = block_on(gpu.attention(PROMPT, layer)).unwrap();
        assert_eq!(a.tokens.len(), len);
        assert_eq!(a.heads.len(), cpu.model().dims().n_head);
        for (x, y) in a.heads.iter().zip(&b.heads) {
            assert_eq!(x.len(), len * len);
            for q in 0..len {
                let row = &x[q * len..(q + 1) * len];
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-4);
                assert!(
                    row[q + 1..].iter().all(|&p| p == 0.0),
                    "query {q} sees the future"
                );
            }
            let worst = x
                .iter()
                .zip(y)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0, f32::max);
            assert!(worst < 1e-4, "engines differ by {worst}");
        }
    }
    let error = block_on(cpu.attention(PROMPT, 9)).unwrap_err().to_string();
    assert!(error.contains("no block 9"), "{error}");
}

/// The logit lens: a stage for the embeddings and one after each block; the last is the
/// model's own prediction; each cell ranks the prompt's next token consistently.
#[test]
fn the_logit_lens_ends_at_the_models_prediction() {
    let (cpu, gpu) = (lab(), gpu_lab());
    let lens = block_on(cpu.logit_lens(PROMPT, 5)).unwrap();
    let on_gpu = block_on(gpu.logit_lens(PROMPT, 5)).unwrap();
    let n_layer = cpu.dictionaries.len();
    assert_eq!(lens.stages.len(), n_layer + 1);
    assert_eq!(lens.stages[0], "embeddings");
    let analysis = block_on(cpu.analyze(PROMPT, 5, 1)).unwrap();
    let last = lens.cells[n_layer].last().unwrap();
    for ((text, p), prediction) in last.top.iter().zip(&analysis.predictions) {
        assert_eq!(*text, prediction.text);
        assert!((p - prediction.probability).abs() < 1e-4);
    }
    for (stage, gpu_stage) in lens.cells.iter().zip(&on_gpu.cells) {
        assert_eq!(stage.len(), lens.tokens.len());
        for (p, (cell, other)) in stage.iter().zip(gpu_stage).enumerate() {
            assert_eq!(cell.top.len(), 5);
            assert!(cell.top.windows(2).all(|w| w[0].1 >= w[1].1));
            assert_eq!(cell.next.is_none(), p + 1 == lens.tokens.len());
            if let Some((probability, rank)) = cell.next {
                assert!(probability <= cell.top[0].1 + 1e-6);
                assert_eq!(rank == 0, (probability - cell.top[0].1).abs() < 1e-7);
            }
            assert!((cell.top[0].1 - other.top[0].1).abs() < 1e-4);
        }
    }
    // The embeddings alone predict something else than the full model at some position.
    assert!(
        lens.cells[0]
            .iter()
            .zip(&lens.cells[n_layer])
            .any(|(a, b)| a.top[0].0 != b.top[0].0)
    );
}

/// The pack's model alone first (as the page loads it: a first prediction waits for the
/// model only), then its features added on the engine already running (the corpus not
/// yet: the page fetches it when a view first shows an example).
fn in_two_steps(gpu: bool) -> (Lab, Lab) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../www/packs/brown");
    let (pack, files) = dir::files(&root).unwrap();
    let (model, tokenizer) = pack.load_model(&files).unwrap();
    let features = pack.load_features(&files, &model).unwrap();
    let alone = Lab::from_model("brown".to_owned(), model, tokenizer).unwrap();
    if gpu {
        block_on(alone.start_gpu(AdapterPreference::from_env(), true)).unwrap();
    }
    let whole = block_on(alone.with_pack_features(
        features.dictionaries.into_iter().map(Arc::new).collect(),
        features.labels,
    ))
    .unwrap();
    (alone, whole)
}

#[test]
fn features_added_after_the_model_answer_as_the_whole_pack_does_on_either_engine() {
    let reference = lab();
    let expected = block_on(reference.analyze(PROMPT, 10, 5)).unwrap();
    for gpu in [false, true] {
        let (alone, whole) = in_two_steps(gpu);
        // The model alone predicts, and has no features yet.
        let first = block_on(alone.analyze(PROMPT, 10, 5)).unwrap();
        assert_eq!(first.tokens, expected.tokens);
        assert!(first.features.iter().all(Vec::is_empty));
        for (p, q) in first.predictions.iter().zip(&expected.predictions) {
            assert_eq!(p.id, q.id);
        }
        // With its features, the engine it started on answers as the whole pack does.
        assert_eq!(whole.engine_info().gpu.is_some(), gpu);
        assert_eq!(whole.gpu_model().is_some(), gpu);
        let analysis = block_on(whole.analyze(PROMPT, 10, 5)).unwrap();
        for (a, b) in analysis.features.iter().zip(&expected.features) {
            assert_eq!(a.len(), reference.dictionaries.len());
            for (a, b) in a.iter().zip(b) {
                same_features(b, a);
            }
        }
        let steer = request(vec![FeatureSteer {
            layer: 2,
            feature: 7,
            mode: SteerMode::Clamp(8.0),
        }]);
        let (a, b) = (
            block_on(reference.steer(&steer)).unwrap(),
            block_on(whole.steer(&steer)).unwrap(),
        );
        assert_eq!(a.steered, b.steered);
        // Twice is refused: the pack's transcoders come before any others.
        let again =
            block_on(whole.with_pack_features(whole.dictionaries.clone(), whole.labels.clone()));
        assert!(again.is_err());
        // A corpus example waits for the corpus, and says so; with it, it is the whole
        // pack's example; a second corpus is refused.
        let example = |lab: &Lab| block_on(lab.example(1, 42, 3, 40, 6));
        let error = example(&whole).unwrap_err().to_string();
        assert!(error.contains("corpus"), "{error}");
        assert!(whole.snippet(3, 40, (2, 2), 1.0).is_none());
        let corpus = reference.corpus().unwrap().clone();
        whole.add_corpus(corpus.clone()).unwrap();
        let (live, expected) = (example(&whole).unwrap(), example(reference).unwrap());
        assert_eq!(
            (&live.document, &live.tokens, live.at),
            (&expected.document, &expected.tokens, expected.at)
        );
        for (a, b) in live.activations.iter().zip(&expected.activations) {
            assert!((a - b).abs() <= 1e-3 * (1.0 + b.abs()), "{a} vs {b}");
        }
        assert_eq!(
            whole.snippet(3, 40, (2, 2), 1.0),
            reference.snippet(3, 40, (2, 2), 1.0)
        );
        assert!(whole.add_corpus(corpus).is_err());
    }
}

#[test]
fn a_logit_difference_graph_and_its_ablation_are_the_differences_of_the_two_logits() {
    let lab = lab();
    let text = "The men said that they";
    let contrast = Contrast {
        token: Some(" were".to_owned()),
        versus: " was".to_owned(),
    };
    let all = glassbox_lab::Thresholds {
        nodes: 1.0,
        edges: 1.0,
    };
    let graph = block_on(lab.circuit(text, Some(&contrast), all)).unwrap();
    let logits: Vec<_> = graph
        .nodes
        .iter()
        .filter(|n| n.feature_type == "logit")
        .collect();
    assert_eq!(logits.len(), 1);
    assert!(
        logits[0].clerp.contains("rather than"),
        "{}",
        logits[0].clerp
    );
    // Ablating a feature: the difference's change is the change of " were" less that of
    // " was", in the frozen and the real model; the graph's prediction likewise (the
    // 5-token prompt's 640 active features are all in both graphs).
    let edit = NodeEdit::Feature {
        layer: 0,
        position: 4,
        feature: 1414,
        value: 0.0,
    };
    let both = block_on(lab.intervene_node(text, None, edit)).unwrap();
    let of = |token: &str| both.iter().find(|c| c.text == token).unwrap();
    let (were, was) = (of(" were"), of(" was"));
    let changes = block_on(lab.intervene_node(text, Some(&contrast), edit)).unwrap();
    assert_eq!(changes.len(), 1);
    let change = &changes[0];
    assert_eq!(change.text, " were");
    assert_eq!(
        change.versus.as_ref().map(|(_, t)| t.as_str()),
        Some(" was")
    );
    for (got, expected) in [
        (change.actual, were.actual - was.actual),
        (change.frozen, were.frozen - was.frozen),
        (change.predicted, were.predicted - was.predicted),
    ] {
        assert!((got - expected).abs() < 1e-3, "{got} vs {expected}");
    }
    // A text of two tokens is refused with the reason.
    let two = Contrast {
        token: None,
        versus: " was not".to_owned(),
    };
    let error = block_on(lab.circuit(text, Some(&two), all))
        .unwrap_err()
        .to_string();
    assert!(error.contains("is 2 tokens"), "{error}");
}

/// The steering that clamps feature `(layer, feature)` to `value` at `position` only.
fn clamped_at(
    lab: &Lab,
    (layer, feature): (usize, usize),
    position: usize,
    value: f32,
) -> Vec<glassbox_engine::Steering> {
    lab.steering(
        &[FeatureSteer {
            layer,
            feature,
            mode: SteerMode::Clamp(value),
        }],
        Some(&[position]),
    )
    .unwrap()
}

/// Greedy continuation of `ids` for `n` tokens, each step a whole pass (no cache) with
/// `steering` and `hooks`: the reference graph steering's cached generation is checked
/// against.
fn greedy_by_whole_passes(
    lab: &Lab,
    ids: &[u32],
    n: usize,
    steering: &[glassbox_engine::Steering],
    hooks: &Hooks,
) -> String {
    let mut all = ids.to_vec();
    for _ in 0..n {
        let request = PassRequest {
            steering: steering.to_vec(),
            ..PassRequest::logits(LogitsRead::Last)
        };
        let logits = block_on(lab.pass_with(&all, &request, hooks))
            .unwrap()
            .0
            .last_logits()
            .unwrap();
        let next = (0..logits.len())
            .max_by(|&a, &b| logits[a].total_cmp(&logits[b]).then(b.cmp(&a)))
            .unwrap();
        all.push(u32::try_from(next).unwrap());
    }
    lab.tokenizer.decode(&all[ids.len()..]).unwrap()
}

/// Graph steering: an edit acts at its own position only, while the model generates
/// (the cached generation equals whole passes with the edit at that position); a node
/// set to its own activation changes nothing; the unsteered side is the plain greedy
/// continuation.
#[test]
fn graph_steering_sets_nodes_at_their_positions_while_the_model_generates() {
    use glassbox_lab::{SteerAttention, Thresholds};
    let lab = lab();
    let graph = block_on(lab.circuit(PROMPT, None, Thresholds::default())).unwrap();
    let ids = lab.prompt_ids(PROMPT).unwrap();
    let (layer, feature, position) = feature_node(&graph, 0);
    let activation = activation_of(&graph, layer, feature, position);
    let set = |value| NodeEdit::Feature {
        layer,
        position,
        feature,
        value,
    };
    let n = 10;
    // Set to its own activation: nothing changes.
    let same =
        block_on(lab.steer_nodes(PROMPT, &[set(activation)], n, SteerAttention::Free)).unwrap();
    assert_eq!(same.steered, same.baseline);
    for (a, b) in same
        .steered_predictions
        .iter()
        .zip(&same.baseline_predictions)
    {
        assert_eq!(a.id, b.id);
        assert!((a.probability - b.probability).abs() < 1e-5, "{a:?} {b:?}");
    }
    // Clamped high: the continuation is the model's own with the edit at that position.
    let value = 8.0 * activation.max(1.0);
    let steered =
        block_on(lab.steer_nodes(PROMPT, &[set(value)], n, SteerAttention::Free)).unwrap();
    let steering = clamped_at(lab, (layer, feature), position, value);
    assert_eq!(
        steered.steered,
        greedy_by_whole_passes(lab, &ids, n, &steering, &Hooks::none())
    );
    assert_eq!(
        steered.baseline,
        greedy_by_whole_passes(lab, &ids, n, &[], &Hooks::none())
    );
    assert!(
        steered
            .steered_predictions
            .iter()
            .zip(&steered.baseline_predictions)
            .any(|(a, b)| a.id != b.id || (a.probability - b.probability).abs() > 1e-4),
        "{steered:?}"
    );
    // An error node with a feature node: both made, the error's at its position only.
    let last = lab.dictionaries.len() - 1;
    let both = [
        set(value),
        NodeEdit::Error {
            layer: last,
            position: ids.len() - 1,
        },
    ];
    let with_error = block_on(lab.steer_nodes(PROMPT, &both, n, SteerAttention::Free)).unwrap();
    assert_eq!(with_error.baseline, steered.baseline);
    assert_ne!(
        with_error.steered_predictions, steered.steered_predictions,
        "taking the error out changed nothing"
    );
}

/// Hooks that replace every block's attention pattern over the prompt's rows with
/// `ids`' own unsteered pattern in a whole pass over any longer sequence (the rows after
/// the prompt as computed): attention frozen as a reference computes it, not as graph
/// steering does (one replacement in the prompt's cached pass).
fn frozen_over_prompt(lab: &Lab, ids: &[u32]) -> Hooks {
    use glassbox_model::{Edit, EditContext, Intervention};
    let blocks = lab.model().dims().n_layer;
    let mut keep = Hooks::none();
    for l in 0..blocks {
        keep = keep.cache(HookPoint::Pattern(l));
    }
    let (_, patterns) =
        block_on(lab.pass_with(ids, &PassRequest::logits(LogitsRead::Last), &keep)).unwrap();
    let n = ids.len();
    let mut hooks = Hooks::none();
    for (hook, pattern) in patterns {
        let heads = pattern.dim(1).unwrap();
        hooks = hooks.intervene(Intervention::everywhere(
            hook,
            Edit::Computed(Arc::new(move |x: &Tensor, _: EditContext<'_>| {
                Ok(x.slice_assign(&[0..1, 0..heads, 0..n, 0..n], &pattern)?)
            })),
        ));
    }
    hooks
}

/// Graph steering with attention frozen (circuit-tracer's `freeze_attention`): the cached
/// generation equals whole passes whose prompt rows keep the unsteered patterns; a node
/// set to its own activation changes nothing; an early feature clamped high moves the
/// last token's logits otherwise than with attention free; the GPU engine generates the
/// same text.
#[test]
fn graph_steering_with_attention_frozen_keeps_the_prompts_patterns() {
    use glassbox_lab::{SteerAttention, Thresholds};
    let lab = lab();
    let graph = block_on(lab.circuit(PROMPT, None, Thresholds::default())).unwrap();
    let ids = lab.prompt_ids(PROMPT).unwrap();
    // A feature of the first block early in the prompt: later blocks' attention carries
    // its effect to the last token.
    let (layer, feature, position) = graph
        .nodes
        .iter()
        .filter(|n| n.feature_type == "cross layer transcoder" && n.layer == "0")
        .map(|n| {
            let parts: Vec<usize> = n.node_id.split('_').map(|p| p.parse().unwrap()).collect();
            (parts[0], parts[1], parts[2])
        })
        .find(|&(_, _, position)| position + 2 < ids.len())
        .unwrap();
    let activation = activation_of(&graph, layer, feature, position);
    let set = |value| NodeEdit::Feature {
        layer,
        position,
        feature,
        value,
    };
    let n = 8;
    let same =
        block_on(lab.steer_nodes(PROMPT, &[set(activation)], n, SteerAttention::Frozen)).unwrap();
    assert_eq!(same.steered, same.baseline);
    let value = 8.0 * activation.max(1.0);
    let frozen =
        block_on(lab.steer_nodes(PROMPT, &[set(value)], n, SteerAttention::Frozen)).unwrap();
    let steering = clamped_at(lab, (layer, feature), position, value);
    assert_eq!(
        frozen.steered,
        greedy_by_whole_passes(lab, &ids, n, &steering, &frozen_over_prompt(lab, &ids))
    );
    let free = block_on(lab.steer_nodes(PROMPT, &[set(value)], n, SteerAttention::Free)).unwrap();
    assert_eq!(frozen.baseline, free.baseline);
    let moved = |r: &glassbox_lab::SteerResult| r.raised.iter().map(|(_, d)| *d).sum::<f32>();
    assert!(
        (moved(&frozen) - moved(&free)).abs() > 1e-3,
        "freezing attention changed nothing: {frozen:?} {free:?}"
    );
    let on_gpu =
        block_on(gpu_lab().steer_nodes(PROMPT, &[set(value)], n, SteerAttention::Frozen)).unwrap();
    assert_eq!(on_gpu.steered, frozen.steered);
    for ((gt, g), (ct, c)) in on_gpu.raised.iter().zip(&frozen.raised) {
        assert_eq!(gt, ct);
        assert!((g - c).abs() < 1e-3, "{gt}: {g} on the GPU, {c} on the CPU");
    }
}

/// An edge that crosses positions, split by the heads that carry it in one hop: where one
/// block's attention is all that lies between the source's write and the target's read
/// (a feature into the next block's, an embedding into the first block's, the block
/// before the last into a logit), the heads' parts sum to the edge; elsewhere they are
/// what one hop carries, from blocks on the path only. Impossible asks are refused.
#[test]
fn an_edge_across_positions_is_split_by_the_heads_that_carry_it() {
    use glassbox_lab::Thresholds;
    let lab = lab();
    let n_layer = lab.model().dims().n_layer;
    let all = Thresholds {
        nodes: 1.0,
        edges: 1.0,
    };
    let graph = block_on(lab.circuit(PROMPT, None, all)).unwrap();
    let node = |id: &str| graph.nodes.iter().find(|n| n.node_id == id).unwrap();
    // The first block whose attention reads a source, the last one a target reads after.
    let enters = |id: &str| match node(id).transcoder_feature() {
        Some((l, _)) => l + 1,
        None => node(id).error_layer().map_or(0, |l| l + 1),
    };
    let through = |id: &str| match node(id).transcoder_feature() {
        Some((l, _)) => l,
        None => n_layer - 1,
    };
    let mut crossing: Vec<&glassbox_lab::Link> = graph
        .links
        .iter()
        .filter(|l| node(&l.source).ctx_idx < node(&l.target).ctx_idx)
        .collect();
    crossing.sort_by(|a, b| b.weight.abs().total_cmp(&a.weight.abs()));
    let (mut exact, mut longer) = (0, 0);
    for link in crossing {
        let (first, last) = (enters(&link.source), through(&link.target));
        if (first == last && exact >= 6) || (first < last && longer >= 3) || first > last {
            continue;
        }
        let split = block_on(lab.edge_heads(PROMPT, None, &link.source, &link.target)).unwrap();
        assert!(
            (split.edge - link.weight).abs() <= 1e-5 * link.weight.abs().max(1.0),
            "{link:?}: {split:?}"
        );
        assert_eq!(
            (split.key, split.query),
            (node(&link.source).ctx_idx, node(&link.target).ctx_idx)
        );
        assert!(
            split
                .heads
                .iter()
                .all(|h| (first..=last).contains(&h.layer))
        );
        assert!(
            split
                .heads
                .iter()
                .all(|h| (0.0..=1.0).contains(&h.attention))
        );
        assert!(
            split
                .heads
                .windows(2)
                .all(|w| w[0].weight.abs() >= w[1].weight.abs())
        );
        if first == last {
            assert!(
                (split.one_hop - split.edge).abs() <= 1e-4 * split.edge.abs().max(1.0),
                "one block between them, yet the heads carry {} of {}: {split:?}",
                split.one_hop,
                split.edge
            );
            exact += 1;
        } else {
            longer += 1;
        }
    }
    assert!(exact >= 6 && longer >= 3, "{exact} exact, {longer} longer");
}

/// An edge split that cannot be made is refused, saying why: one position, a node the
/// graph lacks, a target with no edges into it.
#[test]
fn impossible_edge_splits_are_refused() {
    use glassbox_lab::Thresholds;
    let lab = lab();
    let all = Thresholds {
        nodes: 1.0,
        edges: 1.0,
    };
    let graph = block_on(lab.circuit(PROMPT, None, all)).unwrap();
    let feature = graph
        .nodes
        .iter()
        .find(|n| n.transcoder_feature().is_some() && n.ctx_idx > 0)
        .unwrap();
    let token_here = graph
        .nodes
        .iter()
        .find(|n| n.node_id.starts_with("E_") && n.ctx_idx == feature.ctx_idx)
        .unwrap();
    let token_before = graph
        .nodes
        .iter()
        .find(|n| n.node_id.starts_with("E_") && n.ctx_idx == 0)
        .unwrap();
    for (source, target, expected) in [
        (&token_here.node_id, &feature.node_id, "crosses positions"),
        (
            &"0_999999_1".to_owned(),
            &feature.node_id,
            "not a node of this graph",
        ),
        (
            &token_before.node_id,
            &token_here.node_id,
            "no edges into it",
        ),
    ] {
        assert_refused(
            block_on(lab.edge_heads(PROMPT, None, source, target)),
            expected,
        );
    }
}

/// A prompt begun with `<|endoftext|>` (the BOS circuit-tracer puts before a GPT-2
/// prompt) leaves that position's features and errors out of its graph, as circuit-tracer
/// does: no feature of the first position is a node, its errors have no edges, and every
/// other edge is the one the graph with them in has (direct effects do not depend on
/// other sources). The lab's graphs of such a prompt are made that way; of another, not.
#[test]
fn a_prompt_begun_with_the_document_separator_leaves_its_first_position_out() {
    use glassbox_circuits::{AttributionOptions, NodeKind, Replacement, attribute};
    use glassbox_lab::{DOCUMENT_START, Thresholds};
    let lab = lab();
    let text = format!("{DOCUMENT_START}{PROMPT}");
    let ids = lab.prompt_ids(&text).unwrap();
    assert_eq!(ids[0], lab.tokenizer.token_id(DOCUMENT_START).unwrap());
    let traced = Replacement::trace(lab.model(), lab.transcoders().unwrap(), &ids).unwrap();
    let options = AttributionOptions::default();
    let kept = attribute(lab.model(), &traced, &options).unwrap();
    let left = attribute(lab.model(), &traced.leaving_out_first().unwrap(), &options).unwrap();
    let first = |kind: &NodeKind| kind.position(ids.len() - 1) == 0;
    let index = |graph: &glassbox_circuits::Graph, kind: &NodeKind| {
        graph.nodes.iter().position(|n| n.kind == *kind)
    };
    assert!(
        kept.nodes
            .iter()
            .any(|n| matches!(n.kind, NodeKind::Feature { .. }) && first(&n.kind))
    );
    let mut compared = 0;
    for (t, target) in left.nodes.iter().enumerate() {
        for (s, source) in left.nodes.iter().enumerate() {
            let edge = left.edge(s, t);
            match source.kind {
                NodeKind::Feature { .. } => assert!(!first(&source.kind), "{source:?}"),
                NodeKind::Error { .. } if first(&source.kind) => {
                    assert!(
                        edge.abs() < f32::MIN_POSITIVE,
                        "{source:?} → {target:?}: {edge}"
                    );
                }
                _ => {
                    let (Some(ks), Some(kt)) =
                        (index(&kept, &source.kind), index(&kept, &target.kind))
                    else {
                        continue;
                    };
                    let expected = kept.edge(ks, kt);
                    assert!(
                        (edge - expected).abs() <= 1e-5 * expected.abs().max(1e-3),
                        "{source:?} → {target:?}: {edge} left out, {expected} kept"
                    );
                    compared += 1;
                }
            }
        }
    }
    assert!(compared > 1000, "{compared} edges compared");
    // The lab: the first position's features are nodes without the separator, not with it.
    let all = Thresholds {
        nodes: 1.0,
        edges: 1.0,
    };
    let at_first = |text: &str| {
        let graph = block_on(lab.circuit(text, None, all)).unwrap();
        graph
            .nodes
            .iter()
            .filter(|n| n.ctx_idx == 0 && n.transcoder_feature().is_some())
            .count()
    };
    assert!(at_first(PROMPT) > 0);
    assert_eq!(at_first(&text), 0);
}

/// Graph steering that cannot be done is refused, saying why.
#[test]
fn impossible_graph_steering_is_refused() {
    use glassbox_lab::{MAX_GRAPH_STEER_TOKENS, SteerAttention, Thresholds};
    let lab = lab();
    let graph = block_on(lab.circuit(PROMPT, None, Thresholds::default())).unwrap();
    let (layer, feature, position) = feature_node(&graph, 0);
    let set = |value| NodeEdit::Feature {
        layer,
        position,
        feature,
        value,
    };
    let (value, n) = (1.0, 10);
    for (edits, tokens, expected) in [
        (
            vec![set(value)],
            MAX_GRAPH_STEER_TOKENS + 1,
            "1 to 20 tokens",
        ),
        (vec![set(value)], 0, "1 to 20 tokens"),
        (vec![], n, "1 to 64 nodes"),
        (vec![set(value), set(0.0)], n, "set twice"),
        (vec![set(f32::INFINITY)], n, "not an activation"),
        (
            vec![NodeEdit::Feature {
                layer,
                position: 99,
                feature,
                value,
            }],
            n,
            "past the prompt",
        ),
        (
            vec![NodeEdit::Feature {
                layer,
                position,
                feature: 1 << 20,
                value,
            }],
            n,
            "feature",
        ),
    ] {
        assert_refused(
            block_on(lab.steer_nodes(PROMPT, &edits, tokens, SteerAttention::Free)),
            expected,
        );
    }
}

/// Suggested supernodes on the default pack: how often two members of a suggested group
/// share their best part-of-speech tag, against two features on the same token of the
/// same graph (the chance of agreeing from the token alone), and against groups by edge
/// profiles alone. Printed for the note; the suggestions must agree far more often than
/// chance (`SUGGEST_ALIKE`'s doc states the numbers).
#[test]
fn suggested_supernodes_agree_on_tags_more_often_than_features_on_the_same_token() {
    use glassbox_lab::{Alike, SUGGEST_ALIKE, Thresholds};
    let lab = lab();
    let prompts = [
        "The jury said that the city of Atlanta",
        "The men said that they",
        "He will go if they can, and you should too.",
        "The committee said it would meet on Friday in the old hall",
        "The President of the United",
        "She told the court that her husband had",
    ];
    let tag = |id: &str| -> Option<String> {
        let mut parts = id.split('_').map(|p| p.parse::<usize>().ok());
        let (layer, feature) = (parts.next()??, parts.next()??);
        lab.labels.layers.get(layer)?.get(feature)?.2.clone()
    };
    let pairs = |ids: &[String]| -> (usize, usize) {
        let tags: Vec<Option<String>> = ids.iter().map(|id| tag(id)).collect();
        let (mut same, mut all) = (0, 0);
        for i in 0..tags.len() {
            for j in i + 1..tags.len() {
                all += 1;
                same += usize::from(tags[i].is_some() && tags[i] == tags[j]);
            }
        }
        (same, all)
    };
    let edges_alone = Alike {
        decoders: -1.0,
        ..SUGGEST_ALIKE
    };
    let (mut suggested, mut chance, mut groups, mut members) = ((0, 0), (0, 0), 0, 0);
    let mut by_edges = (0, 0);
    for prompt in prompts {
        let graph = block_on(lab.circuit(prompt, None, Thresholds::default())).unwrap();
        for suggestion in lab.suggest_supernodes(&graph, edges_alone) {
            let (s, a) = pairs(&suggestion.members);
            by_edges = (by_edges.0 + s, by_edges.1 + a);
        }
        for suggestion in lab.suggest_supernodes(&graph, SUGGEST_ALIKE) {
            groups += 1;
            members += suggestion.members.len();
            let (s, a) = pairs(&suggestion.members);
            suggested = (suggested.0 + s, suggested.1 + a);
            let position = graph
                .nodes
                .iter()
                .find(|n| n.node_id == suggestion.members[0])
                .unwrap()
                .ctx_idx;
            let same_token: Vec<String> = graph
                .nodes
                .iter()
                .filter(|n| n.feature_type == "cross layer transcoder" && n.ctx_idx == position)
                .map(|n| n.node_id.clone())
                .collect();
            let (s, a) = pairs(&same_token);
            chance = (chance.0 + s, chance.1 + a);
        }
    }
    let share = |(same, all): (usize, usize)| same as f64 / all.max(1) as f64;
    println!(
        "suggested supernodes over {} prompts: {groups} groups, {members} members; member pairs \
         sharing a best tag {:.3} ({} of {}); pairs of features on the same token {:.3} ({} of \
         {}); grouped by edge profiles alone {:.3} ({} of {})",
        prompts.len(),
        share(suggested),
        suggested.0,
        suggested.1,
        share(chance),
        chance.0,
        chance.1,
        share(by_edges),
        by_edges.0,
        by_edges.1
    );
    assert!(groups >= prompts.len(), "{groups} groups");
    assert!(share(suggested) > 1.5 * share(chance));
}

/// QK attribution: the terms of a head's score sum to the score the model computed, on
/// both engines; taking one key-side feature's write out of the model (its block the
/// last before the head's, the head's LayerNorm scale frozen) moves the score by exactly
/// that part's total.
#[test]
fn qk_terms_sum_to_the_score_and_a_key_features_part_is_its_effect() {
    let (cpu, gpu) = (lab(), gpu_lab());
    let text = "The jury said that the city of Atlanta";
    let n = cpu.prompt_ids(text).unwrap().len();
    let close = |a: f32, b: f32| (a - b).abs() <= 1e-4 * a.abs().max(b.abs()).max(1.0);
    let last = cpu.model().dims().n_layer - 1;
    for (layer, head, query, key) in [
        (0, 1, 3, 2),
        (1, 0, n - 1, 0),
        (2, 3, n - 1, 4),
        (last, 2, 5, 5),
    ] {
        for lab in [cpu, gpu] {
            let qk = block_on(lab.qk_attribution(text, layer, head, query, key)).unwrap();
            assert!(
                close(qk.sum, qk.score),
                "{layer}.{head} {query}->{key}: {} vs {}",
                qk.sum,
                qk.score
            );
            let rows: f32 = qk.query_parts.iter().map(|p| p.total).sum();
            let columns: f32 = qk.key_parts.iter().map(|p| p.total).sum();
            assert!(close(rows, qk.score) && close(columns, qk.score));
            // Every block before the head's has its attention, decoder bias and error.
            let blocks = qk
                .key_parts
                .iter()
                .filter(|p| p.name.starts_with("error of block"))
                .count();
            assert_eq!(blocks, layer);
            assert!(qk.terms.len() <= glassbox_lab::QK_TERMS);
        }
    }
    // The largest key-side feature of the block before the head's, taken out at the key.
    let (layer, head, query, key) = (2, 3, n - 1, 4);
    let qk = block_on(cpu.qk_attribution(text, layer, head, query, key)).unwrap();
    let part = qk
        .key_parts
        .iter()
        .filter(|p| p.feature.is_some_and(|(m, _)| m == layer - 1))
        .max_by(|a, b| a.total.abs().total_cmp(&b.total.abs()))
        .unwrap();
    let (m, f) = part.feature.unwrap();
    let ids = cpu.prompt_ids(text).unwrap();
    let scale = HookPoint::LnScale(layer, Norm::Ln1);
    let (_, cache) = block_on(cpu.pass_with(
        &ids,
        &PassRequest::logits(LogitsRead::None),
        &Hooks::none().cache(scale),
    ))
    .unwrap();
    let hooks = Hooks::none()
        .cache(HookPoint::AttnScores(layer))
        .freeze_attention_and_norms(&cache)
        .unwrap();
    let request = PassRequest {
        steering: cpu
            .steering(
                &[FeatureSteer {
                    layer: m,
                    feature: f,
                    mode: SteerMode::Clamp(0.0),
                }],
                Some(&[key]),
            )
            .unwrap(),
        ..PassRequest::logits(LogitsRead::None)
    };
    let (_, kept) = block_on(cpu.pass_with(&ids, &request, &hooks)).unwrap();
    let after: f32 = kept[&HookPoint::AttnScores(layer)]
        .squeeze(0)
        .unwrap()
        .get(head)
        .unwrap()
        .get(query)
        .unwrap()
        .get(key)
        .unwrap()
        .to_scalar()
        .unwrap();
    let change = after - qk.score;
    assert!(
        (change + part.total).abs() <= 1e-4 * part.total.abs().max(1e-2),
        "taking {} out moved the score by {change}; its part is {}",
        part.name,
        part.total
    );
    assert!(part.total.abs() > 1e-3, "{part:?}");
    // Bad requests are refused by name.
    assert_refused(
        block_on(cpu.qk_attribution(text, 9, 0, 1, 0)),
        "no head 9.0",
    );
    assert_refused(
        block_on(cpu.qk_attribution(text, 0, 0, 1, 2)),
        "reads keys at or before it",
    );
}

/// Other workers as a page's helper workers are: each its own lab of the same pack,
/// answering [`Lab::carry_rows`].
struct HelperLabs {
    labs: Vec<Lab>,
    busy: std::cell::RefCell<Vec<bool>>,
}

impl glassbox_lab::Lanes for HelperLabs {
    fn count(&self) -> usize {
        self.labs.len()
    }

    fn take_free(&self) -> glassbox_lab::FreeLane<'_> {
        let mut busy = self.busy.borrow_mut();
        let free = busy.iter().position(|b| !b);
        if let Some(lane) = free {
            busy[lane] = true;
        }
        Box::pin(std::future::ready(free))
    }

    fn carry(
        &self,
        lane: usize,
        ids: &[u32],
        batch: Vec<glassbox_lab::Target>,
    ) -> glassbox_lab::LaneAnswer<'_> {
        let ids = ids.to_vec();
        Box::pin(async move {
            let rows = self.labs[lane].carry_rows(&ids, &batch).await;
            self.busy.borrow_mut()[lane] = false;
            rows.map_err(|e| glassbox_lab::CircuitError::Request(e.to_string()))
        })
    }
}

/// A graph whose batches other labs of the same pack carried is the graph one lab
/// computes alone, and the requests on it that follow find it kept.
#[test]
fn a_graph_spread_over_helper_labs_is_the_graph_of_one() {
    let all = glassbox_lab::Thresholds {
        nodes: 1.0,
        edges: 1.0,
    };
    let alone = block_on(lab().circuit(PROMPT, None, all)).unwrap();
    let main = load();
    let helpers = HelperLabs {
        labs: vec![load()],
        busy: std::cell::RefCell::new(vec![false]),
    };
    let carried = block_on(main.attribute_spread(PROMPT, None, &helpers))
        .unwrap()
        .unwrap();
    eprintln!("batches carried (this worker, then the helper): {carried:?}");
    assert!(carried[1] > 0, "{carried:?}");
    assert_eq!(block_on(main.circuit(PROMPT, None, all)).unwrap(), alone);
    // Kept: asked again, nothing is carried.
    assert_eq!(
        block_on(main.attribute_spread(PROMPT, None, &helpers)).unwrap(),
        None
    );
    // A helper refuses what no graph asks.
    let helper = &helpers.labs[0];
    let ids = helper.prompt_ids(PROMPT).unwrap();
    let bad = glassbox_lab::Target {
        layer: Some(0),
        position: 0,
        direction: vec![1.0; 3],
        constant: 0.0,
        value: 0.0,
    };
    let error = block_on(helper.carry_rows(&ids, &[bad])).unwrap_err();
    assert!(error.to_string().contains("residual stream"), "{error}");
    assert!(block_on(helper.carry_rows(&[], &[])).is_err());
    assert!(block_on(helper.carry_rows(&[1; 65], &[])).is_err());
}

/// Another worker beside this one: a lab of the same pack that continues prompts
/// unsteered (or, `failing`, errs), counting what it was asked.
struct OtherWorker {
    lab: Lab,
    failing: bool,
    asked: std::cell::Cell<usize>,
}

impl glassbox_lab::Beside for OtherWorker {
    fn continuation(
        &self,
        ids: &[u32],
        sampling: &glassbox_model::sampling::Sampling,
    ) -> Option<glassbox_lab::ContinuationElsewhere<'_>> {
        self.asked.set(self.asked.get() + 1);
        let (ids, sampling) = (ids.to_vec(), sampling.clone());
        Some(Box::pin(async move {
            if self.failing {
                return Err(glassbox_lab::LabError::Request("lost".to_owned()));
            }
            self.lab.continue_plain(&ids, &sampling).await
        }))
    }
}

/// The steered/unsteered pair with the unsteered text continued by another worker (or,
/// when that worker fails, here after all) is the pair one lab computes alone.
#[test]
fn the_unsteered_text_continued_beside_is_the_one_continued_here() {
    use glassbox_lab::{SteerAttention, Thresholds};
    let lab = lab();
    let features = vec![FeatureSteer {
        layer: 1,
        feature: 3,
        mode: SteerMode::Clamp(8.0),
    }];
    let alone = block_on(lab.steer(&request(features.clone()))).unwrap();
    let graph = block_on(lab.circuit(PROMPT, None, Thresholds::default())).unwrap();
    let (layer, feature, position) = feature_node(&graph, 0);
    let edits = [NodeEdit::Feature {
        layer,
        position,
        feature,
        value: 0.0,
    }];
    let nodes_alone =
        block_on(lab.steer_nodes(PROMPT, &edits, 10, SteerAttention::Frozen)).unwrap();
    for failing in [false, true] {
        let other = OtherWorker {
            lab: load(),
            failing,
            asked: std::cell::Cell::new(0),
        };
        let beside = block_on(lab.steer_with(&request(features.clone()), &other)).unwrap();
        assert_eq!(beside, alone);
        let nodes =
            block_on(lab.steer_nodes_with(PROMPT, &edits, 10, SteerAttention::Frozen, &other))
                .unwrap();
        assert_eq!(nodes, nodes_alone);
        assert_eq!(other.asked.get(), 2);
    }
}
