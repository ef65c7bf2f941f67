//! Every built-in lesson (`www/lessons/*.json`) reads as a lesson and every claim it makes
//! about the default pack's model holds: a rebuilt pack that changed one fails here, naming
//! the lesson, the step and what the model now does.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

use std::path::Path;

use glassbox_lab::{Claim, ClaimCheck, Lab, Lesson};
use glassbox_pack::dir;
use pollster::block_on;

fn pack_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../www/packs/brown")
}

fn lab() -> Lab {
    Lab::from_pack(dir::load(&pack_root()).unwrap()).unwrap()
}

/// Checks `claim`, with the measured record of the feature it names from the pack's shards.
fn verify(lab: &Lab, claim: &Claim) -> glassbox_lab::Result<ClaimCheck> {
    let record = claim.record_needed().map(|(layer, feature)| {
        let root = pack_root();
        let pack = dir::open(&root).unwrap();
        let shard = dir::load_shard(&root, &pack, layer, feature).unwrap();
        shard
            .features
            .into_iter()
            .find(|r| r.index == feature)
            .unwrap()
    });
    block_on(lab.check_claim(claim, record.as_ref()))
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
                let check = verify(&lab, claim).unwrap();
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
    let check = verify(&lab, &wrong_token).unwrap();
    assert!(!check.holds);
    assert!(check.found.contains("States"), "{}", check.found);
    let too_sure = Claim::TopPrediction {
        prompt: "The President of the United".to_owned(),
        token: " States".to_owned(),
        at_least: 0.99,
    };
    assert!(!verify(&lab, &too_sure).unwrap().holds);
    // Settling a block early or late is false too: the lens's leader changes there.
    for from_block in [1, 3] {
        let moved = Claim::LensSettles {
            prompt: "He said that".to_owned(),
            token: " he".to_owned(),
            from_block,
        };
        assert!(!verify(&lab, &moved).unwrap().holds, "{from_block}");
    }
    let wrong_tag = Claim::BestTag {
        layer: 2,
        feature: 1286,
        tag: "NN".to_owned(),
    };
    let check = verify(&lab, &wrong_tag).unwrap();
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
    assert!(!verify(&lab, &steered(30.0, "zebra")).unwrap().holds);
    // Text the unsteered model writes too proves nothing about the feature.
    assert!(!verify(&lab, &steered(0.0, " he")).unwrap().holds);
    let no_such_feature = Claim::BestTag {
        layer: 2,
        feature: 999_999,
        tag: "CD".to_owned(),
    };
    assert!(verify(&lab, &no_such_feature).is_err());
    let past_the_end = Claim::LensSettles {
        prompt: "He said that".to_owned(),
        token: " he".to_owned(),
        from_block: 9,
    };
    assert!(!verify(&lab, &past_the_end).unwrap().holds);
}

#[test]
fn malformed_and_oversized_lessons_are_refused_with_the_reason() {
    let cases: [(&str, &str); 6] = [
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
        (
            r#"{"title":"t","pack":"brown","steps":[{"title":"s","text":"x","view":"/lens","questions":[{"question":"no answer?"}]}]}"#,
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
    // Questions and answers count toward a step's text.
    let asked = format!(
        r#"{{"title":"t","pack":"brown","steps":[{{"title":"s","text":"x","view":"/lens","questions":[{{"question":"q","answer":"{}"}}]}}]}}"#,
        "x".repeat(9000)
    );
    assert!(
        Lesson::parse(asked.as_bytes())
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

#[test]
fn head_feature_and_circuit_claims_made_false_fail_and_say_what_the_model_does() {
    use glassbox_lab::HeadScoreKind;
    let lab = lab();
    let committee =
        "The committee said it would meet on Friday in the old hall of the state house.";
    let head = |prompt: &str, head: usize, at_least: f32| Claim::HeadScore {
        prompt: prompt.to_owned(),
        layer: 2,
        head,
        score: HeadScoreKind::PreviousToken,
        at_least,
        strongest: true,
    };
    assert!(verify(&lab, &head(committee, 2, 0.2)).unwrap().holds);
    assert!(!verify(&lab, &head(committee, 2, 0.5)).unwrap().holds);
    assert!(!verify(&lab, &head(committee, 1, 0.1)).unwrap().holds);
    // On another sentence another head is the strongest, and the check names it.
    let jury = "The jury said that the city of Atlanta had a good record.";
    let check = verify(&lab, &head(jury, 2, 0.2)).unwrap();
    assert!(
        !check.holds && check.found.contains("3.2"),
        "{}",
        check.found
    );
    // A sentence without a repeated token has no induction score to claim.
    let induction = Claim::NoHeadAbove {
        prompt: jury.to_owned(),
        score: HeadScoreKind::Induction,
        at_most: 1.0,
    };
    assert!(!verify(&lab, &induction).unwrap().holds);
    let low = Claim::NoHeadAbove {
        prompt: committee.to_owned(),
        score: HeadScoreKind::PreviousToken,
        at_most: 0.1,
    };
    assert!(!verify(&lab, &low).unwrap().holds);

    let evidence = |tag: &str, recall: f32| Claim::TagEvidence {
        layer: 0,
        feature: 460,
        tag: tag.to_owned(),
        precision_at_least: 0.5,
        recall_at_least: recall,
    };
    assert!(verify(&lab, &evidence("MD", 0.9)).unwrap().holds);
    assert!(!verify(&lab, &evidence("MD", 0.99)).unwrap().holds);
    let check = verify(&lab, &evidence("NN", 0.1)).unwrap();
    assert!(
        !check.holds && check.found.contains("MD"),
        "{}",
        check.found
    );
    // Without the feature's record the claim cannot be checked, and says so.
    assert!(block_on(lab.check_claim(&evidence("MD", 0.9), None)).is_err());

    let fires = |tokens: &[&str]| Claim::FiresOn {
        prompt: "The men said that they".to_owned(),
        layer: 0,
        feature: 1414,
        tokens: tokens.iter().map(|t| (*t).to_owned()).collect(),
    };
    assert!(verify(&lab, &fires(&[" men", " they"])).unwrap().holds);
    let check = verify(&lab, &fires(&[" they"])).unwrap();
    assert!(
        !check.holds && check.found.contains(" men"),
        "{}",
        check.found
    );

    let strongest = |position: usize| Claim::StrongestInput {
        prompt: "The men said that they".to_owned(),
        token: " were".to_owned(),
        layer: 0,
        feature: 1414,
        position,
    };
    assert!(verify(&lab, &strongest(4)).unwrap().holds);
    let check = verify(&lab, &strongest(1)).unwrap();
    assert!(
        !check.holds && check.found.contains("0/1414 at token 4"),
        "{}",
        check.found
    );

    let ablate = |token: &str| Claim::AblationAgrees {
        prompt: "The men said that they".to_owned(),
        layer: 0,
        feature: 1414,
        position: 4,
        token: token.to_owned(),
    };
    assert!(verify(&lab, &ablate(" were")).unwrap().holds);
    // For " was" the graph predicts a drop and the model raises it: the claim is false.
    assert!(!verify(&lab, &ablate(" was")).unwrap().holds);
    assert!(verify(&lab, &ablate(" zebra")).is_err());
    let raises = |token: &str| Claim::AblationRaises {
        prompt: "The men said that they".to_owned(),
        layer: 0,
        feature: 1414,
        position: 4,
        token: token.to_owned(),
    };
    assert!(verify(&lab, &raises(" was")).unwrap().holds);
    let check = verify(&lab, &raises(" were")).unwrap();
    assert!(!check.holds && check.found.contains('-'), "{}", check.found);
}
