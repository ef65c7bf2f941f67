//! Per-feature data: how often a feature fires, how strongly, on what (as references into
//! the pack's corpus), what it writes to the logits, and the parts of speech it fires on.

use serde::{Deserialize, Serialize};

/// A place in the corpus and the feature's activation there: `[document, position,
/// activation]`, the position counted in the document's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Example(pub u32, pub u32, pub f32);

impl Example {
    /// The document's index in the corpus index.
    #[must_use]
    pub fn document(&self) -> usize {
        self.0 as usize
    }

    /// The token's position within its document.
    #[must_use]
    pub fn position(&self) -> usize {
        self.1 as usize
    }

    /// The activation measured at the build.
    #[must_use]
    pub fn activation(&self) -> f32 {
        self.2
    }
}

/// Examples whose activations fall in one band of the feature's distribution, `[low,
/// high, examples]`: band `i` of `n` spans quantiles `i/n` to `(i+1)/n`, `low` and `high`
/// are the activations there, and the examples are drawn with a fixed seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantileBand(pub f32, pub f32, pub Vec<Example>);

impl QuantileBand {
    /// The activation at the band's lower quantile.
    #[must_use]
    pub fn low(&self) -> f32 {
        self.0
    }

    /// The activation at the band's upper quantile.
    #[must_use]
    pub fn high(&self) -> f32 {
        self.1
    }

    /// The band's examples.
    #[must_use]
    pub fn examples(&self) -> &[Example] {
        &self.2
    }
}

/// Counts of activations in equal-width bins from 0 to `max`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// The upper edge of the last bin: the largest activation seen.
    pub max: f32,
    /// Counts per bin.
    pub counts: Vec<u32>,
}

impl Histogram {
    /// The activation half of the feature's firings stay under (the middle of the bin
    /// where the count passes half): its typical activation when it fires; 0 when it never
    /// fired.
    #[must_use]
    pub fn median(&self) -> f32 {
        let total: u64 = self.counts.iter().map(|&c| u64::from(c)).sum();
        if total == 0 || self.counts.is_empty() {
            return 0.0;
        }
        let width = self.max / self.counts.len() as f32;
        let mut seen = 0;
        for (i, &count) in self.counts.iter().enumerate() {
            seen += u64::from(count);
            if 2 * seen >= total {
                return width * (i as f32 + 0.5);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod histogram_tests {
    use super::Histogram;

    #[test]
    fn the_median_is_the_middle_of_the_bin_where_half_the_firings_are_passed() {
        let histogram = Histogram {
            max: 10.0,
            counts: vec![1, 1, 6, 1, 1],
        };
        assert!((histogram.median() - 5.0).abs() < 1e-6);
        let skewed = Histogram {
            max: 4.0,
            counts: vec![9, 0, 0, 1],
        };
        assert!((skewed.median() - 0.5).abs() < 1e-6);
        let never = Histogram {
            max: 0.0,
            counts: vec![0; 4],
        };
        assert!(never.median().abs() < f32::EPSILON);
    }
}

/// How well one category (a tag or a genre) describes where a feature fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryScore {
    /// The category: a Brown tag such as `NNS`, or a genre letter (names: the label
    /// index's `tag_names`, the corpus index's `genres`).
    pub key: String,
    /// Of the tokens the feature fires on, the share in this category.
    pub precision: f32,
    /// Of the tokens in this category, the share the feature fires on.
    pub recall: f32,
}

/// What the feature fires on, measured with the corpus's part-of-speech tags and genres.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// The tag most of its firings carry (the best precision).
    pub tag: Option<CategoryScore>,
    /// The genre where it fires on the largest share of tokens (the best recall).
    pub genre: Option<CategoryScore>,
    /// The most common tags among its firings, `[tag, count]`.
    pub tags: Vec<(String, u32)>,
    /// The most common tokens among its firings, `[token id, count]`.
    pub tokens: Vec<(u32, u32)>,
}

/// A token and the feature's direct effect on its logit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LogitEffect(pub u32, pub f32);

/// The feature's direct effect on the logits: its decoder direction through the final
/// LayerNorm's gain and the unembedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogitEffects {
    /// The tokens it promotes most, largest first.
    pub top: Vec<LogitEffect>,
    /// The tokens it suppresses most, most negative first.
    pub bottom: Vec<LogitEffect>,
}

/// Everything measured about one feature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureRecord {
    /// The feature's index in its dictionary.
    pub index: usize,
    /// The automatic label.
    pub label: String,
    /// Share of corpus tokens it fires on.
    pub frequency: f32,
    /// Distribution of its non-zero activations.
    pub histogram: Histogram,
    /// Its strongest activations (at most a few per document).
    pub top: Vec<Example>,
    /// Examples across its activation distribution, weakest band first.
    pub quantiles: Vec<QuantileBand>,
    /// Its direct logit effects.
    pub logits: LogitEffects,
    /// What it fires on.
    pub profile: Profile,
}

impl FeatureRecord {
    /// Every corpus example it holds: its top activations, then each quantile band's,
    /// weakest band first.
    pub fn examples(&self) -> impl Iterator<Item = &Example> {
        self.top
            .iter()
            .chain(self.quantiles.iter().flat_map(QuantileBand::examples))
    }
}

/// One shard: consecutive features of one layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureShard {
    /// The block.
    pub layer: usize,
    /// The index of the first feature.
    pub first: usize,
    /// The features, in order.
    pub features: Vec<FeatureRecord>,
}

/// A feature's entry in the search index: `[label, frequency, best tag, commonest
/// tokens]` (up to three token ids, commonest first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelEntry(pub String, pub f32, pub Option<String>, pub Vec<u32>);

/// Every feature's label, for search without fetching shards: `layers[l][i]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelIndex {
    /// Per block, per feature.
    pub layers: Vec<Vec<LabelEntry>>,
    /// The tags that appear in profiles, in words: `[tag, name]`.
    pub tag_names: Vec<(String, String)>,
}
