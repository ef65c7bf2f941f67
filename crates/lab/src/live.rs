//! Features of dictionaries that come without precomputed data (SAELens dictionaries a
//! person opened from their disk), measured live: one sweep reads a sample of text
//! through the model and keeps each such dictionary's input at every position; a
//! feature's activations over the whole sample are then one dot product per position,
//! computed exactly as the dictionary's encoder does (for a TopK dictionary, against each
//! position's k-th strongest activation, read in the same sweep).

use candle_core::{DType, Tensor};
use glassbox_dict::{Architecture, Dictionary};
use glassbox_engine::{FeatureRead, LogitsRead, PassRequest};
use glassbox_model::Hooks;
use serde::{Deserialize, Serialize};

use crate::analyze::TokenView;
use crate::error::{LabError, Result};
use crate::lab::Lab;

/// Tokens of each sample text read (the rest is cut).
pub const SAMPLE_WINDOW: usize = 64;

/// Bins of a live feature's activation histogram.
const HISTOGRAM_BINS: usize = 20;

/// Tokens each side of a top example's token.
const EXAMPLE_CONTEXT: usize = 10;

/// Tokens listed as a feature's logit effects, each way.
const LOGIT_TOKENS: usize = 10;

/// The sample text read through the model, and each live dictionary's input over it.
#[derive(Debug)]
pub(crate) struct LiveSample {
    /// Each text's token ids.
    windows: Vec<Vec<u32>>,
    /// Per dictionary: its input at every position of every window, `[positions, d_in]`,
    /// and for a TopK dictionary each position's k-th strongest activation. `None` for the
    /// pack's own dictionaries.
    inputs: Vec<Option<(Tensor, Option<Vec<f32>>)>>,
}

/// One place in the sample where a feature fires, with its context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveExample {
    /// Which sample text.
    pub window: usize,
    /// The context's tokens.
    pub tokens: Vec<TokenView>,
    /// The feature's activation at each of them.
    pub activations: Vec<f32>,
    /// The example's token within `tokens`.
    pub at: usize,
}

/// A feature of a dictionary without precomputed data, measured over the sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveFeature {
    /// The dictionary.
    pub layer: usize,
    /// The feature.
    pub feature: usize,
    /// Where the dictionary reads and writes, in words.
    pub site: String,
    /// Sample texts read.
    pub texts: usize,
    /// Tokens read.
    pub positions: usize,
    /// Tokens where it fires.
    pub active: usize,
    /// Its strongest activation.
    pub max: f32,
    /// Counts of its non-zero activations in equal bins from 0 to `max`.
    pub histogram: Vec<u32>,
    /// Its strongest activations, at most one per text, strongest first.
    pub top: Vec<LiveExample>,
    /// The tokens its decoder direction promotes most (direct logit effect), when it
    /// writes to the residual stream.
    pub promotes: Vec<(String, f32)>,
    /// The tokens it suppresses most.
    pub suppresses: Vec<(String, f32)>,
}

impl Lab {
    /// Texts for the live sample from the pack's corpus: `count` windows of `tokens`
    /// tokens spread evenly over it, decoded (empty for a lab without a corpus).
    #[must_use]
    pub fn corpus_texts(&self, count: usize, tokens: usize) -> Vec<String> {
        let Some(all) = self.corpus().map(|c| &c.tokens) else {
            return Vec::new();
        };
        if all.len() < tokens || count == 0 {
            return Vec::new();
        }
        let stride = (all.len() - tokens) / count.max(1);
        (0..count)
            .filter_map(|i| {
                let start = i * stride;
                self.tokenizer.decode(&all[start..start + tokens]).ok()
            })
            .collect()
    }

    /// Whether dictionary `layer` has been measured over a sample.
    #[must_use]
    pub fn is_measured(&self, layer: usize) -> bool {
        self.sample
            .get()
            .is_some_and(|s| s.inputs.get(layer).is_some_and(Option::is_some))
    }

    /// Reads `texts` (each cut to [`SAMPLE_WINDOW`] tokens) through the model once,
    /// keeping the input of every dictionary without precomputed data; `progress` hears
    /// `(texts read, texts)`. Does nothing when there is no such dictionary or it was done.
    pub async fn measure_sample(
        &self,
        texts: &[String],
        progress: &dyn Fn(usize, usize),
    ) -> Result<()> {
        let live: Vec<usize> = (0..self.dictionaries.len())
            .filter(|&l| !self.has_feature_data(l))
            .collect();
        if live.is_empty() || self.sample.get().is_some() {
            return Ok(());
        }
        let mut windows = Vec::with_capacity(texts.len());
        for text in texts {
            let mut ids = self.tokenizer.encode_ids(text)?;
            ids.truncate(SAMPLE_WINDOW.min(self.max_tokens()));
            if !ids.is_empty() {
                windows.push(ids);
            }
        }
        if windows.is_empty() {
            return Err(LabError::Request(
                "there is no sample text to measure the dictionaries' features on".to_owned(),
            ));
        }
        let mut keep = Hooks::none();
        for &l in &live {
            keep = keep.cache(self.sites[l].0);
        }
        let request = PassRequest {
            features: live
                .iter()
                .filter_map(|&l| {
                    let config = &self.dictionaries[l].config;
                    (config.architecture == Architecture::TopK).then(|| FeatureRead {
                        dictionary: l,
                        top: config.k.unwrap_or(1),
                    })
                })
                .collect(),
            ..PassRequest::logits(LogitsRead::None)
        };
        let mut rows: Vec<Vec<Tensor>> = vec![Vec::new(); self.dictionaries.len()];
        let mut kth: Vec<Vec<f32>> = vec![Vec::new(); self.dictionaries.len()];
        for (done, ids) in windows.iter().enumerate() {
            progress(done, windows.len());
            let (output, mut kept) = self.pass_with(ids, &request, &keep).await?;
            for &l in &live {
                let (input, d_in) = (self.sites[l].0, self.dictionaries[l].config.d_in);
                let x = kept
                    .remove(&input)
                    .ok_or_else(|| LabError::Request(format!("the pass did not keep {input}")))?;
                rows[l].push(x.reshape((ids.len(), d_in))?);
            }
            for (read, strongest) in request.features.iter().zip(&output.features) {
                let k = read.top;
                kth[read.dictionary].extend(strongest.iter().map(|row| {
                    // With fewer than k active, every positive pre-activation is kept.
                    if row.len() < k {
                        0.0
                    } else {
                        row.last().map_or(0.0, |f| f.1)
                    }
                }));
            }
        }
        progress(windows.len(), windows.len());
        let mut inputs = Vec::with_capacity(self.dictionaries.len());
        for (l, (rows, kth)) in rows.into_iter().zip(kth).enumerate() {
            inputs.push(if live.contains(&l) {
                let is_top_k = self.dictionaries[l].config.architecture == Architecture::TopK;
                Some((Tensor::cat(&rows, 0)?, is_top_k.then_some(kth)))
            } else {
                None
            });
        }
        // Measured once: a concurrent measure may have finished first, with the same data.
        let _ = self.sample.set(LiveSample { windows, inputs });
        Ok(())
    }

    /// Feature `feature` of dictionary `layer` over the measured sample.
    pub fn live_feature(&self, layer: usize, feature: usize) -> Result<LiveFeature> {
        self.check_feature(layer, feature)?;
        let sample = self.sample.get().ok_or_else(|| {
            LabError::Request("the sample text has not been read through the model yet".to_owned())
        })?;
        let Some((inputs, kth)) = sample.inputs.get(layer).and_then(Option::as_ref) else {
            return Err(LabError::Request(format!(
                "dictionary {layer} has precomputed feature data; it is not measured live"
            )));
        };
        let dictionary = &self.dictionaries[layer];
        let acts = feature_column(dictionary, inputs, feature, kth.as_deref())?;
        let max = acts.iter().copied().fold(0.0_f32, f32::max);
        let mut histogram = vec![0_u32; HISTOGRAM_BINS];
        let mut active = 0;
        for &a in &acts {
            if a > 0.0 {
                active += 1;
                let bin = ((a / max) * HISTOGRAM_BINS as f32) as usize;
                histogram[bin.min(HISTOGRAM_BINS - 1)] += 1;
            }
        }
        let (promotes, suppresses) = self.live_logit_effects(layer, feature)?;
        Ok(LiveFeature {
            layer,
            feature,
            site: self.dictionary_names()[layer].clone(),
            texts: sample.windows.len(),
            positions: acts.len(),
            active,
            max,
            histogram,
            top: self.top_examples(sample, &acts),
            promotes,
            suppresses,
        })
    }

    /// At most one example per window, the strongest windows first.
    fn top_examples(&self, sample: &LiveSample, acts: &[f32]) -> Vec<LiveExample> {
        // Where each window's activations start in `acts`.
        let starts: Vec<usize> = sample
            .windows
            .iter()
            .scan(0, |s, w| {
                let here = *s;
                *s += w.len();
                Some(here)
            })
            .collect();
        let mut best: Vec<(usize, usize, f32)> = Vec::new();
        for (window, ids) in sample.windows.iter().enumerate() {
            let row = &acts[starts[window]..starts[window] + ids.len()];
            if let Some((at, &a)) = row
                .iter()
                .enumerate()
                .max_by(|x, y| x.1.total_cmp(y.1).then(y.0.cmp(&x.0)))
                && a > 0.0
            {
                best.push((window, at, a));
            }
        }
        best.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
        best.into_iter()
            .take(TOP_EXAMPLES)
            .map(|(window, at, _)| {
                let ids = &sample.windows[window];
                let from = at.saturating_sub(EXAMPLE_CONTEXT);
                let to = (at + EXAMPLE_CONTEXT + 1).min(ids.len());
                LiveExample {
                    window,
                    tokens: ids[from..to]
                        .iter()
                        .map(|&id| TokenView {
                            id,
                            text: self.token_text(id),
                        })
                        .collect(),
                    activations: acts[starts[window] + from..starts[window] + to].to_vec(),
                    at: at - from,
                }
            })
            .collect()
    }

    /// The tokens a feature's decoder direction promotes and suppresses most, when the
    /// dictionary writes to the residual stream (empty otherwise).
    fn live_logit_effects(&self, layer: usize, feature: usize) -> Result<TokenEffects> {
        let dictionary = &self.dictionaries[layer];
        let model = self.model();
        if dictionary.config.d_out() != model.dims().d_model {
            return Ok((Vec::new(), Vec::new()));
        }
        let direction = dictionary.w_dec.narrow(0, feature, 1)?;
        let effects: Vec<f32> = model
            .direct_logit_effects(&direction)?
            .squeeze(0)?
            .to_vec1()?;
        let vocab = self.tokenizer.vocab_size().min(effects.len());
        let mut order: Vec<usize> = (0..vocab).collect();
        order.sort_by(|&a, &b| effects[b].total_cmp(&effects[a]).then(a.cmp(&b)));
        let named = |i: &usize| (self.token_text(*i as u32), effects[*i]);
        let promotes = order.iter().take(LOGIT_TOKENS).map(named).collect();
        let suppresses = order.iter().rev().take(LOGIT_TOKENS).map(named).collect();
        Ok((promotes, suppresses))
    }
}

/// Tokens with their logit effects, promoted and suppressed.
type TokenEffects = (Vec<(String, f32)>, Vec<(String, f32)>);

/// Top examples a live feature lists.
const TOP_EXAMPLES: usize = 12;

/// Feature `feature`'s activation at every row of `inputs` `[rows, d_in]`, as
/// `dictionary.encode` computes it; `kth` is each row's k-th strongest activation for a
/// TopK dictionary.
pub(crate) fn feature_column(
    dictionary: &Dictionary,
    inputs: &Tensor,
    feature: usize,
    kth: Option<&[f32]>,
) -> Result<Vec<f32>> {
    let config = &dictionary.config;
    let x = if config.apply_b_dec_to_input {
        inputs.broadcast_sub(&dictionary.b_dec)?
    } else {
        inputs.clone()
    };
    let column = dictionary.w_enc.narrow(1, feature, 1)?;
    let bias: f32 = dictionary.b_enc.get(feature)?.to_scalar()?;
    let pre: Vec<f32> = (x.matmul(&column)?.squeeze(1)? + f64::from(bias))?
        .to_dtype(DType::F32)?
        .to_vec1()?;
    let threshold = match (&config.architecture, &dictionary.threshold) {
        (Architecture::JumpReLU, Some(t)) => Some(t.get(feature)?.to_scalar::<f32>()?),
        (Architecture::JumpReLU, None) => {
            return Err(LabError::Request(
                "a JumpReLU dictionary without thresholds".to_owned(),
            ));
        }
        _ => None,
    };
    Ok(pre
        .iter()
        .enumerate()
        .map(|(row, &p)| match config.architecture {
            Architecture::Standard | Architecture::Transcoder => p.max(0.0),
            Architecture::JumpReLU => {
                if threshold.is_some_and(|t| p > t) {
                    p
                } else {
                    0.0
                }
            }
            Architecture::TopK => {
                let least = kth.and_then(|k| k.get(row)).copied().unwrap_or(0.0);
                if p > 0.0 && p >= least { p } else { 0.0 }
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn a_column_is_the_encoders_column_for_every_architecture() {
        let device = Device::Cpu;
        let x = Tensor::randn(0_f32, 1.0, (40, 12), &device).unwrap();
        for (architecture, k) in [("standard", None), ("jumprelu", None), ("topk", Some(3))] {
            let config = format!(
                r#"{{"architecture":"{architecture}","d_in":12,"d_sae":9,"apply_b_dec_to_input":true{}}}"#,
                k.map_or(String::new(), |k| format!(r#","k":{k}"#))
            );
            let dictionary = random_dictionary(&config, 12, 9);
            let acts: Vec<Vec<f32>> = dictionary.encode(&x).unwrap().to_vec2().unwrap();
            // The k-th strongest activation of each row, as a TopK read gives it.
            let kth: Vec<f32> = acts
                .iter()
                .map(|row| {
                    let mut active: Vec<f32> = row.iter().copied().filter(|&a| a > 0.0).collect();
                    active.sort_by(|a, b| b.total_cmp(a));
                    if active.len() < k.unwrap_or(0) {
                        0.0
                    } else {
                        active.last().copied().unwrap_or(0.0)
                    }
                })
                .collect();
            for feature in 0..9 {
                let column = feature_column(&dictionary, &x, feature, Some(&kth)).unwrap();
                for (row, (&ours, theirs)) in column.iter().zip(&acts).enumerate() {
                    assert!(
                        (ours - theirs[feature]).abs() < 1e-5,
                        "{architecture}, feature {feature}, row {row}: {ours} vs {}",
                        theirs[feature]
                    );
                }
            }
        }
    }

    fn random_dictionary(config: &str, d_in: usize, d_sae: usize) -> Dictionary {
        let device = Device::Cpu;
        let tensor = |shape: &[usize], seed: f32| -> Tensor {
            let n: usize = shape.iter().product();
            let values: Vec<f32> = (0..n)
                .map(|i| (i as f32 * 0.7 + seed).sin() * 0.9)
                .collect();
            Tensor::from_vec(values, shape, &device).unwrap()
        };
        Dictionary {
            config: serde_json::from_str(config).unwrap(),
            w_enc: tensor(&[d_in, d_sae], 0.3),
            b_enc: tensor(&[d_sae], 1.1).affine(0.2, 0.0).unwrap(),
            w_dec: tensor(&[d_sae, d_in], 2.0),
            b_dec: tensor(&[d_in], 0.5).affine(0.3, 0.0).unwrap(),
            threshold: Some(
                tensor(&[d_sae], 0.9)
                    .abs()
                    .unwrap()
                    .affine(0.3, 0.0)
                    .unwrap(),
            ),
        }
    }
}
