//! How good the trained model is, next to baselines on the same held-out tokens: a
//! unigram model and an add-k bigram model fitted on the training tokens.

use serde::{Deserialize, Serialize};

/// Held-out loss of one model, per token and per byte of text.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeldOutLoss {
    /// What was measured.
    pub name: String,
    /// Mean negative log-likelihood per token, in nats.
    pub nats_per_token: f64,
    /// The same total in bits, per byte of UTF-8 text predicted.
    pub bits_per_byte: f64,
}

impl HeldOutLoss {
    /// From a total in nats over `tokens` tokens covering `bytes` bytes of text.
    #[must_use]
    pub fn new(name: &str, total_nats: f64, tokens: usize, bytes: usize) -> Self {
        Self {
            name: name.to_owned(),
            nats_per_token: total_nats / tokens as f64,
            bits_per_byte: total_nats / std::f64::consts::LN_2 / bytes as f64,
        }
    }
}

/// Total nats of `eval` under a unigram model of `train` with add-one smoothing.
#[must_use]
pub fn unigram_nats(train: &[u32], eval: &[u32], vocab: usize) -> f64 {
    let mut counts = vec![1.0_f64; vocab];
    for &t in train {
        counts[t as usize] += 1.0;
    }
    let total: f64 = counts.iter().sum();
    eval.iter()
        .map(|&t| -(counts[t as usize] / total).ln())
        .sum()
}

/// Total nats of `eval[1..]` under an add-`k` bigram model of `train`, with `k` chosen
/// among a few values on the first half of `eval` and measured on the whole of it (the
/// choice barely moves the number).
#[must_use]
pub fn bigram_nats(train: &[u32], eval: &[u32], vocab: usize) -> (f64, f64) {
    let mut pairs: std::collections::HashMap<(u32, u32), f64> = std::collections::HashMap::new();
    let mut firsts = vec![0.0_f64; vocab];
    for w in train.windows(2) {
        *pairs.entry((w[0], w[1])).or_default() += 1.0;
        firsts[w[0] as usize] += 1.0;
    }
    let nats = |k: f64, tokens: &[u32]| -> f64 {
        tokens
            .windows(2)
            .map(|w| {
                let pair = pairs.get(&(w[0], w[1])).copied().unwrap_or(0.0);
                -((pair + k) / (firsts[w[0] as usize] + k * vocab as f64)).ln()
            })
            .sum()
    };
    let tune = &eval[..eval.len() / 2];
    let best_k = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0]
        .into_iter()
        .min_by(|a, b| nats(*a, tune).total_cmp(&nats(*b, tune)))
        .unwrap_or(0.01);
    (nats(best_k, eval), best_k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baselines_on_a_known_sequence() {
        // A strict alternation: the bigram model nearly knows it, the unigram model doesn't.
        let train: Vec<u32> = (0..1000).map(|i| (i % 2) as u32).collect();
        let unigram = unigram_nats(&train, &train[..100], 2) / 100.0;
        assert!((unigram - 2f64.ln()).abs() < 1e-3);
        let (bigram, _) = bigram_nats(&train, &train[..101], 2);
        assert!(bigram / 100.0 < 0.01);
        let loss = HeldOutLoss::new("x", 2f64.ln() * 8.0, 8, 1);
        assert!((loss.bits_per_byte - 8.0).abs() < 1e-12);
    }
}
