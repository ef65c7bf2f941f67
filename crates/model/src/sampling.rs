//! How generation chooses each next token: greedy, or sampled (temperature, top-k, top-p)
//! with a seeded random number generator, so that the same settings give the same text on
//! every platform and every engine. The decode loop itself runs over any engine
//! (`glassbox_engine::generate`).

use crate::rng::SplitMix64;
use crate::{ModelError, Result};

/// How to choose each next token.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sampling {
    /// Tokens to generate at most.
    pub max_new_tokens: usize,
    /// Softmax temperature; 0 picks the most likely token (greedy).
    pub temperature: f64,
    /// Keep only the `k` most likely tokens.
    pub top_k: Option<usize>,
    /// Keep the fewest most likely tokens whose probabilities add up to `p`.
    pub top_p: Option<f64>,
    /// Seed of the random number generator.
    pub seed: u64,
    /// Stop after generating this token (e.g. `<|endoftext|>`).
    pub stop_token: Option<u32>,
}

impl Sampling {
    /// Greedy decoding of up to `max_new_tokens` tokens.
    #[must_use]
    pub fn greedy(max_new_tokens: usize) -> Self {
        Self {
            max_new_tokens,
            temperature: 0.0,
            top_k: None,
            top_p: None,
            seed: 0,
            stop_token: None,
        }
    }

    /// Checks the settings: a temperature of 0 or more, top-k at least 1, top-p in (0, 1].
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(ModelError::Input(format!(
                "temperature must be 0 or more, got {}",
                self.temperature
            )));
        }
        if self.top_k == Some(0) {
            return Err(ModelError::Input("top-k must be at least 1".to_owned()));
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            return Err(ModelError::Input(format!(
                "top-p must be in (0, 1], got {p}"
            )));
        }
        Ok(())
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// `max_new_tokens` were generated.
    MaxTokens,
    /// The stop token was generated.
    StopToken,
    /// The context is full: the model reads at most `n_positions` tokens.
    ContextFull,
}

/// What generation produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The new tokens (the prompt not included).
    pub tokens: Vec<u32>,
    /// Why it ended.
    pub stop: StopReason,
}

/// Picks the next token from one position's logits.
#[must_use]
pub fn choose(logits: &[f32], sampling: &Sampling, rng: &mut SplitMix64) -> u32 {
    if sampling.temperature == 0.0 {
        return argmax(logits);
    }
    let mut order: Vec<usize> = (0..logits.len()).collect();
    // Descending logit; ties by id, so that every platform orders them alike.
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    if let Some(k) = sampling.top_k {
        order.truncate(k.max(1));
    }
    let top = f64::from(logits[order[0]]);
    let mut probs: Vec<f64> = order
        .iter()
        .map(|&i| ((f64::from(logits[i]) - top) / sampling.temperature).exp())
        .collect();
    let total: f64 = probs.iter().sum();
    for p in &mut probs {
        *p /= total;
    }
    if let Some(p) = sampling.top_p {
        let mut cumulative = 0.0;
        let keep = probs
            .iter()
            .position(|&q| {
                cumulative += q;
                cumulative >= p
            })
            .map_or(probs.len(), |i| i + 1);
        order.truncate(keep);
        probs.truncate(keep);
    }
    let total: f64 = probs.iter().sum();
    let mut target = rng.next_f64() * total;
    for (&i, &q) in order.iter().zip(&probs) {
        if target < q {
            return i as u32;
        }
        target -= q;
    }
    order[order.len() - 1] as u32
}

fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampling(temperature: f64, top_k: Option<usize>, top_p: Option<f64>) -> Sampling {
        Sampling {
            temperature,
            top_k,
            top_p,
            ..Sampling::greedy(1)
        }
    }

    #[test]
    fn greedy_takes_the_largest() {
        let mut rng = SplitMix64::new(1);
        assert_eq!(
            choose(&[0.1, 3.0, -1.0, 2.9], &Sampling::greedy(1), &mut rng),
            1
        );
    }

    #[test]
    fn top_k_one_is_greedy_at_any_temperature() {
        let mut rng = SplitMix64::new(9);
        for _ in 0..50 {
            assert_eq!(
                choose(
                    &[0.1, 3.0, -1.0, 2.9],
                    &sampling(5.0, Some(1), None),
                    &mut rng
                ),
                1
            );
        }
    }

    #[test]
    fn top_p_keeps_the_nucleus() {
        // Probabilities ~ [0.64, 0.24, 0.09, 0.03]: p = 0.8 keeps the first two only.
        let logits = [3.0_f32, 2.0, 1.0, 0.0];
        let mut rng = SplitMix64::new(3);
        let mut seen = [0_usize; 4];
        for _ in 0..2000 {
            seen[choose(&logits, &sampling(1.0, None, Some(0.8)), &mut rng) as usize] += 1;
        }
        assert!(seen[2] == 0 && seen[3] == 0, "{seen:?}");
        // Renormalised over the two: 0.73 and 0.27.
        let share = seen[0] as f64 / 2000.0;
        assert!((share - 0.731).abs() < 0.04, "{seen:?}");
    }

    #[test]
    fn sampling_follows_the_softmax_and_the_seed() {
        let logits = [0.0_f32, (2.0_f32).ln()]; // probabilities 1/3, 2/3
        let mut rng = SplitMix64::new(42);
        let draws: Vec<u32> = (0..3000)
            .map(|_| choose(&logits, &sampling(1.0, None, None), &mut rng))
            .collect();
        let ones = draws.iter().filter(|&&t| t == 1).count() as f64 / 3000.0;
        assert!((ones - 2.0 / 3.0).abs() < 0.03, "{ones}");
        let mut again = SplitMix64::new(42);
        let replay: Vec<u32> = (0..3000)
            .map(|_| choose(&logits, &sampling(1.0, None, None), &mut again))
            .collect();
        assert_eq!(draws, replay);
    }

    #[test]
    fn bad_settings_are_errors() {
        assert!(sampling(-1.0, None, None).validate().is_err());
        assert!(sampling(1.0, Some(0), None).validate().is_err());
        assert!(sampling(1.0, None, Some(0.0)).validate().is_err());
        assert!(sampling(1.0, None, Some(1.5)).validate().is_err());
        assert!(sampling(0.7, Some(40), Some(0.9)).validate().is_ok());
    }
}
