//! What a caller asks of one pass, and what comes back: only what was asked for is
//! read from the device.

/// Which logits a pass reads back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogitsRead {
    /// None (e.g. a pass run only for its features).
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
    /// The dictionary, as numbered by [`GpuModel::attach`](crate::GpuModel::attach).
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

/// Steering through a dictionary, as `glassbox-lab` does on the CPU: at the dictionary's
/// output hook, add `(new − old) · W_dec[f]` for each feature `f`, where `old` is `f`'s
/// activation on the dictionary's input in this pass. Applied at every position, before
/// any intervention at that hook.
#[derive(Debug, Clone, PartialEq)]
pub struct Steering {
    /// The dictionary.
    pub dictionary: usize,
    /// The features and what to set them to.
    pub features: Vec<(usize, FeatureSet)>,
}

/// What one pass computes and reads back, besides the hooks' kept activations.
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
}

/// Logits read back from a pass.
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

/// What a pass read back.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PassOutput {
    /// The logits asked for.
    pub logits: Option<Logits>,
    /// Per [`FeatureRead`], per position: `(feature, activation)`, strongest first.
    pub features: Vec<Vec<Vec<(u32, f32)>>>,
    /// Per [`ColumnRead`]: the feature's activation at each position.
    pub columns: Vec<Vec<f32>>,
}
