//! What an attention head does on a prompt, in three numbers the field uses to find heads
//! (as in TransformerLens's head detectors and the induction-head papers): how much it
//! attends to the previous token, to an earlier copy of the current token (duplicate
//! token), and to the token after that copy (induction), each averaged over the query
//! positions where it is defined.

use serde::{Deserialize, Serialize};

/// One head's scores on one prompt, each a mean attention weight in `[0, 1]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HeadScores {
    /// Mean attention from each position after the first to the one before it.
    pub previous_token: f32,
    /// Mean attention from each repeated token to its latest earlier occurrence; `None`
    /// when no token of the prompt repeats.
    pub duplicate_token: Option<f32>,
    /// Mean attention from each repeated token to the token that followed its latest
    /// earlier occurrence (what an induction head copies); `None` when no token repeats
    /// with a token after its earlier occurrence other than itself.
    pub induction: Option<f32>,
}

/// Which score a lesson or a reader names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadScoreKind {
    /// [`HeadScores::previous_token`].
    PreviousToken,
    /// [`HeadScores::duplicate_token`].
    DuplicateToken,
    /// [`HeadScores::induction`].
    Induction,
}

impl HeadScoreKind {
    /// The score in words.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::PreviousToken => "previous-token",
            Self::DuplicateToken => "duplicate-token",
            Self::Induction => "induction",
        }
    }
}

impl HeadScores {
    /// The score `kind` names, if the prompt defines it.
    #[must_use]
    pub fn get(&self, kind: HeadScoreKind) -> Option<f32> {
        match kind {
            HeadScoreKind::PreviousToken => Some(self.previous_token),
            HeadScoreKind::DuplicateToken => self.duplicate_token,
            HeadScoreKind::Induction => self.induction,
        }
    }

    /// The scores of a head that spreads its attention evenly over every token it may
    /// read, the level a score means nothing below: on `ids`.
    #[must_use]
    pub fn uniform(ids: &[u32]) -> Self {
        let len = ids.len();
        let pattern: Vec<f32> = (0..len)
            .flat_map(|q| (0..len).map(move |k| if k <= q { 1.0 / (q + 1) as f32 } else { 0.0 }))
            .collect();
        Self::of(&pattern, ids)
    }

    /// The scores of a head whose pattern is `pattern` (`[query × len + key]`, rows
    /// summing to 1) on tokens `ids`.
    #[must_use]
    pub fn of(pattern: &[f32], ids: &[u32]) -> Self {
        let len = ids.len();
        let at = |q: usize, k: usize| pattern.get(q * len + k).copied().unwrap_or(0.0);
        let mean = |values: &[f32]| {
            (!values.is_empty()).then(|| values.iter().sum::<f32>() / values.len() as f32)
        };
        let previous: Vec<f32> = (1..len).map(|q| at(q, q - 1)).collect();
        let (mut duplicate, mut induction) = (Vec::new(), Vec::new());
        for q in 1..len {
            if let Some(j) = (0..q).rev().find(|&j| ids[j] == ids[q]) {
                duplicate.push(at(q, j));
                // The token after the earlier copy; when that is q itself (a token
                // repeated twice in a row), it is not an earlier token to copy.
                if j + 1 < q {
                    induction.push(at(q, j + 1));
                }
            }
        }
        Self {
            previous_token: mean(&previous).unwrap_or(0.0),
            duplicate_token: mean(&duplicate),
            induction: mean(&induction),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pattern where every query puts all its attention on `key(q)`.
    fn one_hot(len: usize, key: impl Fn(usize) -> usize) -> Vec<f32> {
        let mut pattern = vec![0.0; len * len];
        for q in 0..len {
            pattern[q * len + key(q)] = 1.0;
        }
        pattern
    }

    #[test]
    fn a_previous_token_head_scores_one_there_and_nothing_else() {
        let ids = [5, 6, 7, 5, 6, 7];
        let scores = HeadScores::of(&one_hot(6, |q| q.saturating_sub(1)), &ids);
        assert!((scores.previous_token - 1.0).abs() < 1e-6);
        assert_eq!(scores.duplicate_token, Some(0.0));
        assert_eq!(scores.induction, Some(0.0));
    }

    #[test]
    fn an_induction_head_attends_to_the_token_after_the_earlier_copy() {
        // Second half repeats the first: at q ≥ 3 the earlier copy is q - 3, after it q - 2.
        let ids = [5, 6, 7, 5, 6, 7];
        let scores = HeadScores::of(&one_hot(6, |q| if q >= 3 { q - 2 } else { 0 }), &ids);
        assert_eq!(scores.induction, Some(1.0));
        assert_eq!(scores.duplicate_token, Some(0.0));
        let duplicate = HeadScores::of(&one_hot(6, |q| q.saturating_sub(3)), &ids);
        assert_eq!(duplicate.duplicate_token, Some(1.0));
        assert_eq!(duplicate.induction, Some(0.0));
    }

    #[test]
    fn even_attention_scores_the_mean_share_of_one_token() {
        // Queries 1, 2, 3 read 2, 3, 4 tokens: a previous-token share of 1/2, 1/3, 1/4.
        let scores = HeadScores::uniform(&[1, 2, 3, 4]);
        let expected = (1.0 / 2.0 + 1.0 / 3.0 + 1.0 / 4.0) / 3.0;
        assert!((scores.previous_token - expected).abs() < 1e-6);
    }

    #[test]
    fn scores_a_prompt_cannot_define_are_absent() {
        let scores = HeadScores::of(&one_hot(3, |_| 0), &[1, 2, 3]);
        assert_eq!(scores.duplicate_token, None);
        assert_eq!(scores.induction, None);
        assert_eq!(scores.get(HeadScoreKind::Induction), None);
        // A token repeated at once has a duplicate but nothing after its copy to copy.
        let twice = HeadScores::of(&one_hot(2, |_| 0), &[4, 4]);
        assert_eq!(twice.duplicate_token, Some(1.0));
        assert_eq!(twice.induction, None);
    }
}
