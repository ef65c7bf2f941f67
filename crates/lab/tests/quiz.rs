//! "Guess the feature" on the default pack: a round is the same for everyone with the same
//! link, its answer is the feature's own label, and the other labels belong to features of
//! another part of speech.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

use std::collections::HashSet;
use std::path::Path;

use glassbox_lab::{Lab, QUIZ_OPTIONS};
use glassbox_pack::dir;

#[test]
fn rounds_are_reproducible_and_only_the_answer_shares_the_features_tag() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../www/packs/brown");
    let lab = Lab::from_pack(dir::load(&root).unwrap()).unwrap();
    let mut features = HashSet::new();
    for round in 0..20 {
        let a = lab.quiz_round(7, round).unwrap();
        assert_eq!(a, lab.quiz_round(7, round).unwrap());
        assert_eq!(a.options.len(), QUIZ_OPTIONS);
        let distinct: HashSet<&String> = a.options.iter().collect();
        assert_eq!(distinct.len(), QUIZ_OPTIONS, "{a:?}");
        let entry = &lab.labels.layers[a.layer][a.feature];
        assert_eq!(a.options[a.answer], entry.0);
        let tag = entry.2.clone().unwrap();
        // Every other option is the label of some feature with another best tag.
        for (i, option) in a.options.iter().enumerate().filter(|(i, _)| *i != a.answer) {
            let other_tags: HashSet<Option<&str>> = lab
                .labels
                .layers
                .iter()
                .flatten()
                .filter(|e| e.0 == *option)
                .map(|e| e.2.as_deref())
                .collect();
            assert!(
                other_tags.iter().any(|t| *t != Some(tag.as_str())),
                "option {i} {option:?}"
            );
        }
        features.insert((a.layer, a.feature));
    }
    assert!(features.len() >= 15, "rounds draw different features");
    assert_ne!(lab.quiz_round(7, 0).unwrap(), lab.quiz_round(8, 0).unwrap());
}
