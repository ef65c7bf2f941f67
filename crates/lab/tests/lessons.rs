//! Every built-in lesson (`www/lessons/*.json`) reads as a lesson and every claim it makes
//! about the default pack's model holds: a rebuilt pack that changed one fails here, naming
//! the lesson, the step and what the model now does.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

use std::path::Path;

use glassbox_lab::{Claim, Lab, Lesson};
use glassbox_pack::dir;
use pollster::block_on;

fn lab() -> Lab {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../www/packs/brown");
    Lab::from_pack(dir::load(&root).unwrap()).unwrap()
}

fn lessons() -> Vec<(String, Lesson)> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../www/lessons");
    let mut lessons: Vec<(String, Lesson)> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let lesson = Lesson::parse(&std::fs::read(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path.display().to_string(), lesson)
        })
        .collect();
    lessons.sort_by(|a, b| a.0.cmp(&b.0));
    lessons
}

#[test]
fn every_claim_of_every_built_in_lesson_holds_on_the_default_pack() {
    let lab = lab();
    let lessons = lessons();
    assert!(!lessons.is_empty());
    let mut claims = 0;
    for (path, lesson) in &lessons {
        assert_eq!(lesson.pack, lab.name, "{path}");
        for (i, step) in lesson.steps.iter().enumerate() {
            for claim in &step.claims {
                let check = block_on(lab.check_claim(claim)).unwrap();
                assert!(
                    check.holds,
                    "{path}, step {} ({}): “{}” is false: {}",
                    i + 1,
                    step.title,
                    claim.describe(),
                    check.found
                );
                claims += 1;
            }
        }
    }
    assert!(claims >= lessons.len());
}

#[test]
fn a_claim_made_false_fails_and_says_what_the_model_does() {
    let lab = lab();
    let wrong_token = Claim::TopPrediction {
        prompt: "The President of the United".to_owned(),
        token: " Nations".to_owned(),
        at_least: 0.1,
    };
    let check = block_on(lab.check_claim(&wrong_token)).unwrap();
    assert!(!check.holds);
    assert!(check.found.contains("States"), "{}", check.found);
    let too_sure = Claim::TopPrediction {
        prompt: "The President of the United".to_owned(),
        token: " States".to_owned(),
        at_least: 0.99,
    };
    assert!(!block_on(lab.check_claim(&too_sure)).unwrap().holds);
    // Settling a block early or late is false too: the lens's leader changes there.
    for from_block in [1, 3] {
        let moved = Claim::LensSettles {
            prompt: "He said that".to_owned(),
            token: " he".to_owned(),
            from_block,
        };
        assert!(
            !block_on(lab.check_claim(&moved)).unwrap().holds,
            "{from_block}"
        );
    }
    let wrong_tag = Claim::BestTag {
        layer: 2,
        feature: 1286,
        tag: "NN".to_owned(),
    };
    let check = block_on(lab.check_claim(&wrong_tag)).unwrap();
    assert!(
        !check.holds && check.found.contains("CD"),
        "{}",
        check.found
    );
    let steered = |clamp: f32, text: &str| Claim::SteeredContains {
        prompt: "The man said that".to_owned(),
        layer: 2,
        feature: 1286,
        clamp,
        tokens: 12,
        text: text.to_owned(),
    };
    assert!(
        !block_on(lab.check_claim(&steered(30.0, "zebra")))
            .unwrap()
            .holds
    );
    // Text the unsteered model writes too proves nothing about the feature.
    assert!(
        !block_on(lab.check_claim(&steered(0.0, " he")))
            .unwrap()
            .holds
    );
    let no_such_feature = Claim::BestTag {
        layer: 2,
        feature: 999_999,
        tag: "CD".to_owned(),
    };
    assert!(block_on(lab.check_claim(&no_such_feature)).is_err());
    let past_the_end = Claim::LensSettles {
        prompt: "He said that".to_owned(),
        token: " he".to_owned(),
        from_block: 9,
    };
    assert!(!block_on(lab.check_claim(&past_the_end)).unwrap().holds);
}

#[test]
fn malformed_and_oversized_lessons_are_refused_with_the_reason() {
    let cases: [(&str, &str); 5] = [
        ("{", "not a lesson"),
        (
            r#"{"title":"t","pack":"brown","steps":[]}"#,
            "1 to 64 steps",
        ),
        (
            r#"{"title":"t","pack":"brown","steps":[{"title":"s","text":"x","view":"https://evil.example/"}]}"#,
            "not one of the page's views",
        ),
        (
            r#"{"title":"t","pack":"brown","steps":[{"title":"s","text":"x","view":"/lens","claims":[{"kind":"nonsense"}]}]}"#,
            "not a lesson",
        ),
        (
            r#"{"title":"t","pack":"brown","html":"<script>","steps":[{"title":"s","text":"x","view":"/lens"}]}"#,
            "not a lesson",
        ),
    ];
    for (json, expected) in cases {
        let error = Lesson::parse(json.as_bytes()).unwrap_err().to_string();
        assert!(error.contains(expected), "{json}: {error}");
    }
    let long = format!(
        r#"{{"title":"t","pack":"brown","steps":[{{"title":"s","text":"{}","view":"/lens"}}]}}"#,
        "x".repeat(9000)
    );
    assert!(
        Lesson::parse(long.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("longer than")
    );
    let huge = vec![b' '; glassbox_lab::MAX_LESSON_BYTES + 1];
    assert!(
        Lesson::parse(&huge)
            .unwrap_err()
            .to_string()
            .contains("at most")
    );
}
