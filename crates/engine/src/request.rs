//! What a caller asks of one pass, and what comes back: only what was asked for is read
//! (on the GPU, only that is copied back from the device).

/// Which logits a pass reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogitsRead {
    /// None (e.g. a pass run only for its features or kept activations).
    None,
    /// The last position's logits over the whole vocabulary (for probabilities).
    Last,
    /// The last position's `k` largest logits, largest first (for decoding).
    LastTop(usize),
    /// Every position's logits (for a loss).
    All,
}

/// Each position's strongest features of one attached dictionary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureRead {
    /// The dictionary, numbered in the order attached.
    pub dictionary: usize,
    /// How many features per position, strongest first (only active ones are returned).
    pub top: usize,
}

/// One feature's activation at every position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnRead {
    /// The dictionary.
    pub dictionary: usize,
    /// The feature.
    pub feature: usize,
}

/// How steering sets a feature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FeatureSet {
    /// To this activation.
    Clamp(f32),
    /// To its activation times this (0 ablates it).
    Scale(f32),
}

/// Steering through a dictionary ("model medicine"): at the dictionary's output hook, add
/// `(new − old) · W_dec[f]` for each feature `f`, where `old` is `f`'s activation on the
/// dictionary's input in this pass, so that whatever the dictionary does not explain is
/// kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Steering {
    /// The dictionary.
    pub dictionary: usize,
    /// The features and what to set them to.
    pub features: Vec<(usize, FeatureSet)>,
    /// The token positions (absolute, from 0) it applies at; `None`: all of them.
    pub positions: Option<Vec<usize>>,
}

/// What one pass computes and reads, besides the hooks' kept activations.
#[derive(Debug, Clone, PartialEq)]
pub struct PassRequest {
    /// The logits to read.
    pub logits: LogitsRead,
    /// The features to read.
    pub features: Vec<FeatureRead>,
    /// Single features to read at every position.
    pub columns: Vec<ColumnRead>,
    /// Steering to apply.
    pub steering: Vec<Steering>,
}

impl PassRequest {
    /// A pass that reads `logits` and nothing else.
    #[must_use]
    pub fn logits(logits: LogitsRead) -> Self {
        Self {
            logits,
            features: Vec::new(),
            columns: Vec::new(),
            steering: Vec::new(),
        }
    }

    /// Whether the pass encodes with dictionary `index` (to read or to steer).
    #[must_use]
    pub fn encodes(&self, index: usize) -> bool {
        self.features.iter().any(|r| r.dictionary == index)
            || self.columns.iter().any(|c| c.dictionary == index)
            || self.steering.iter().any(|s| s.dictionary == index)
    }

    /// Every dictionary the pass names, with repeats.
    pub fn dictionaries(&self) -> impl Iterator<Item = usize> + '_ {
        self.features
            .iter()
            .map(|r| r.dictionary)
            .chain(self.columns.iter().map(|c| c.dictionary))
            .chain(self.steering.iter().map(|s| s.dictionary))
    }
}

/// Logits read from a pass.
#[derive(Debug, Clone, PartialEq)]
pub enum Logits {
    /// `rows × vocab` values, row-major.
    Rows {
        /// Positions read (1 for [`LogitsRead::Last`]).
        rows: usize,
        /// The values.
        values: Vec<f32>,
    },
    /// The largest logits of the last position, largest first.
    Top(Vec<(u32, f32)>),
}

/// What a pass read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PassOutput {
    /// The logits asked for.
    pub logits: Option<Logits>,
    /// Per [`FeatureRead`], per position: `(feature, activation)`, strongest first.
    pub features: Vec<Vec<Vec<(u32, f32)>>>,
    /// Per [`ColumnRead`]: the feature's activation at each position.
    pub columns: Vec<Vec<f32>>,
}

impl PassOutput {
    /// The last position's logits over the vocabulary, as [`LogitsRead::Last`] reads them.
    pub fn last_logits(self) -> crate::Result<Vec<f32>> {
        match self.logits {
            Some(Logits::Rows { rows, values }) if rows > 0 => {
                let vocab = values.len() / rows;
                Ok(values[values.len() - vocab..].to_vec())
            }
            other => Err(crate::EngineError::Failed(format!(
                "the pass read no row of logits ({other:?})"
            ))),
        }
    }
}
