//! "Guess the feature": a feature drawn from the pack, to be told from its top examples
//! among four labels — its own and three of features whose best part-of-speech tag
//! differs from its own, so the right answer is one the evidence can decide. A round is
//! drawn from its seed and number alone, so a quiz link shows every student the same
//! questions.

use glassbox_model::rng::SplitMix64;
use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};
use crate::lab::Lab;

/// Labels offered in a round.
pub const QUIZ_OPTIONS: usize = 4;

/// The least share of corpus tokens a quiz feature fires on: rarer ones have few examples.
const MIN_FREQUENCY: f32 = 1e-4;

/// One question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuizRound {
    /// The feature's block.
    pub layer: usize,
    /// The feature.
    pub feature: usize,
    /// The labels offered, in the order shown.
    pub options: Vec<String>,
    /// Which of them is the feature's.
    pub answer: usize,
}

impl Lab {
    /// Round `round` of the quiz drawn from `seed`.
    pub fn quiz_round(&self, seed: u64, round: u64) -> Result<QuizRound> {
        // Features with a best tag, frequent enough to have examples.
        let candidates: Vec<(usize, usize, &str, &str)> = self
            .labels
            .layers
            .iter()
            .take(self.pack_transcoders)
            .enumerate()
            .flat_map(|(layer, entries)| {
                entries.iter().enumerate().filter_map(move |(feature, e)| {
                    let tag = e.2.as_deref()?;
                    (e.1 >= MIN_FREQUENCY).then_some((layer, feature, tag, e.0.as_str()))
                })
            })
            .collect();
        let none =
            || LabError::Request("this pack has too few labelled features for a quiz".to_owned());
        let mut rng = SplitMix64::new(seed ^ round.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut draw = |n: usize| (rng.next_u64() % n.max(1) as u64) as usize;
        let (layer, feature, tag, label) =
            *candidates.get(draw(candidates.len())).ok_or_else(none)?;
        let mut options = vec![label.to_owned()];
        let others: Vec<&str> = candidates
            .iter()
            .filter(|(_, _, t, l)| *t != tag && *l != label)
            .map(|(_, _, _, l)| *l)
            .collect();
        // Distinct labels, drawn until three are found (a bounded number of tries).
        for _ in 0..64 * QUIZ_OPTIONS {
            if options.len() == QUIZ_OPTIONS {
                break;
            }
            let pick = *others.get(draw(others.len())).ok_or_else(none)?;
            if !options.iter().any(|o| o == pick) {
                options.push(pick.to_owned());
            }
        }
        if options.len() < QUIZ_OPTIONS {
            return Err(none());
        }
        let answer = draw(QUIZ_OPTIONS);
        options.swap(0, answer);
        Ok(QuizRound {
            layer,
            feature,
            options,
            answer,
        })
    }
}
