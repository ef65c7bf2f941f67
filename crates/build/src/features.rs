//! The feature-data stage: every transcoder feature measured over the whole corpus —
//! how often and how strongly it fires, where (as references into the tokenized corpus),
//! what it writes to the logits, and the parts of speech and genres it fires on — with an
//! automatic label drawn from that evidence.

use candle_core::{Device, Tensor};
use glassbox_dict::Dictionary;
use glassbox_model::rng::SplitMix64;
use glassbox_model::{HookPoint, Hooks, Model, Norm, Tokenizer};
use glassbox_pack::{
    CategoryScore, DocumentEntry, Example, FeatureRecord, Histogram, LabelEntry, LabelIndex,
    LogitEffect, LogitEffects, Profile, QuantileBand,
};
use indicatif::ProgressBar;

use crate::corpus::{self, Document};
use crate::error::{BuildError, Result};
use crate::tags::{base_tag, tag_name};

/// Histogram bins per feature.
pub const HISTOGRAM_BINS: usize = 16;
/// Top examples kept per feature.
pub const TOP_EXAMPLES: usize = 6;
/// At most this many top examples come from one document.
pub const TOP_PER_DOCUMENT: usize = 2;
/// Quantile bands, and examples drawn from each.
pub const BANDS: usize = 4;
/// Examples per quantile band.
pub const BAND_EXAMPLES: usize = 2;
/// Commonest tags and tokens kept per feature.
pub const PROFILE_ENTRIES: usize = 2;
/// Promoted and suppressed tokens kept per feature.
pub const LOGIT_EFFECTS: usize = 4;

/// The corpus as the pack ships it (documents back to back, each opened by
/// `<|endoftext|>`), with each token's base tag and genre for measuring profiles.
#[derive(Debug, Clone)]
pub struct TaggedCorpus {
    /// Every token.
    pub tokens: Vec<u32>,
    /// The document index.
    pub documents: Vec<DocumentEntry>,
    /// Per token, its word's base tag (an index into `tag_names`), or `None` for the
    /// separator and tokens of whitespace alone.
    pub tags: Vec<Option<u16>>,
    /// The base tags seen, in order of first appearance.
    pub tag_names: Vec<String>,
    /// Per token, its document's genre (an index into [`corpus::GENRES`]).
    pub genres: Vec<u8>,
}

/// Tokenizes every document and tags each token with its word's part of speech: the word
/// whose span holds the token's first character that is not whitespace.
pub fn tag_corpus(
    tokenizer: &Tokenizer,
    documents: &[Document],
    end_of_text: u32,
) -> Result<TaggedCorpus> {
    let mut out = TaggedCorpus {
        tokens: Vec::new(),
        documents: Vec::new(),
        tags: Vec::new(),
        tag_names: Vec::new(),
        genres: Vec::new(),
    };
    for document in documents {
        let genre = corpus::GENRES
            .iter()
            .position(|(letter, _)| *letter == document.genre)
            .ok_or_else(|| BuildError::Corpus(format!("{}: unknown genre", document.id)))?;
        let start = out.tokens.len();
        out.tokens.push(end_of_text);
        out.tags.push(None);
        // Byte offset of each character, and of the end.
        let char_bytes: Vec<usize> = document
            .text
            .char_indices()
            .map(|(b, _)| b)
            .chain(std::iter::once(document.text.len()))
            .collect();
        for token in tokenizer.encode(&document.text)? {
            out.tokens.push(token.id);
            let skip = token.text.chars().take_while(|c| c.is_whitespace()).count();
            let tag = char_bytes.get(token.start + skip).and_then(|&byte| {
                let i = document
                    .words
                    .partition_point(|w| w.start as usize <= byte)
                    .checked_sub(1)?;
                let word = &document.words[i];
                ((byte) < word.end as usize).then_some(word.tag.as_str())
            });
            out.tags.push(tag.map(|tag| {
                let base = base_tag(tag);
                let index = if let Some(i) = out.tag_names.iter().position(|t| *t == base) {
                    i
                } else {
                    out.tag_names.push(base);
                    out.tag_names.len() - 1
                };
                u16::try_from(index).unwrap_or(u16::MAX)
            }));
        }
        let len = out.tokens.len() - start;
        out.genres.extend(std::iter::repeat_n(genre as u8, len));
        out.documents.push(DocumentEntry {
            id: document.id.clone(),
            genre: document.genre.to_string(),
            split: document.split,
            start,
            len,
        });
    }
    Ok(out)
}

/// One layer's non-zero activations: per feature, `(corpus token, activation)` pairs.
pub type LayerActivations = Vec<Vec<(u32, f32)>>;

/// Where [`activations`] puts every non-zero activation it finds.
pub trait ActivationSink {
    /// Feature `feature` of block `layer` fired `activation` at corpus token `token`.
    fn put(&mut self, layer: usize, feature: usize, token: u32, activation: f32) -> Result<()>;

    /// Every window before `windows_done` (in [`corpus_windows`]' order) has been put.
    fn windows_done(&mut self, windows_done: usize) -> Result<()> {
        let _ = windows_done;
        Ok(())
    }
}

/// All activations in memory, `[layer][feature]`.
impl ActivationSink for Vec<LayerActivations> {
    fn put(&mut self, layer: usize, feature: usize, token: u32, activation: f32) -> Result<()> {
        self[layer][feature].push((token, activation));
        Ok(())
    }
}

/// The manifest's account of how the feature data was measured.
#[must_use]
pub fn method(window: usize, skip_first: usize, final_norm: &str) -> String {
    let skipped = match skip_first {
        0 => String::new(),
        1 => " (its first position left out)".to_owned(),
        n => format!(" (its first {n} positions left out)"),
    };
    format!(
        "Every document (training and held-out) read in windows of {window} tokens from its \
         start{skipped}; a feature fires where its TopK activation is above zero. Profiles \
         use the Brown tag of the word holding each token's first non-space character (tags \
         reduced to their base: nn-tl → NN). Logit effects are the decoder row times the \
         final {final_norm} gain, through the unembedding."
    )
}

/// An empty in-memory sink for `dictionaries`.
#[must_use]
pub fn in_memory(dictionaries: &[Dictionary]) -> Vec<LayerActivations> {
    dictionaries
        .iter()
        .map(|d| vec![Vec::new(); d.config.d_sae])
        .collect()
}

/// The windows the corpus is read in: each document in windows of `window` tokens from its
/// first token, as the app recomputes them; `(first corpus token, length)`.
#[must_use]
pub fn corpus_windows(corpus: &TaggedCorpus, window: usize) -> Vec<(usize, usize)> {
    let mut windows = Vec::new();
    for document in &corpus.documents {
        for offset in (0..document.len).step_by(window) {
            windows.push((document.start + offset, window.min(document.len - offset)));
        }
    }
    windows
}

/// Every non-zero activation of every feature, the token counted in the whole corpus,
/// put into `sink`; the windows from `first_window` on (earlier ones are in the sink
/// already). The first `skip_first` positions of each window are left out (a model whose
/// first position is an outlier its transcoders were not trained on).
#[allow(clippy::too_many_arguments, reason = "one pass's inputs, named")]
pub fn activations(
    model: &Model,
    dictionaries: &[Dictionary],
    corpus: &TaggedCorpus,
    window: usize,
    skip_first: usize,
    first_window: usize,
    sink: &mut dyn ActivationSink,
    progress: &ProgressBar,
) -> Result<()> {
    let windows = corpus_windows(corpus, window);
    progress.set_length(windows.len() as u64);
    progress.set_position(first_window as u64);
    progress.reset_eta();
    let pad = corpus.tokens.first().copied().unwrap_or(0);
    let mut done = first_window;
    for batch in windows[first_window.min(windows.len())..].chunks(16) {
        let mut ids = Vec::with_capacity(batch.len() * window);
        for &(start, len) in batch {
            ids.extend_from_slice(&corpus.tokens[start..start + len]);
            // Padding after the end changes nothing before it (attention is causal).
            ids.extend(std::iter::repeat_n(pad, window - len));
        }
        let ids = Tensor::from_vec(ids, (batch.len(), window), &Device::Cpu)?;
        let mut hooks = Hooks::none();
        for l in 0..dictionaries.len() {
            hooks = hooks.cache(HookPoint::LnNormalized(l, Norm::Ln2));
        }
        model.residual(&ids, &mut hooks)?;
        let cache = hooks.take_cache();
        for (l, dictionary) in dictionaries.iter().enumerate() {
            let input = &cache[&HookPoint::LnNormalized(l, Norm::Ln2)];
            let rows = input.reshape(((), input.dim(2)?))?;
            let acts: Vec<f32> = dictionary.encode(&rows)?.flatten_all()?.to_vec1()?;
            let d_sae = dictionary.config.d_sae;
            for (w, &(start, len)) in batch.iter().enumerate() {
                for p in skip_first.min(len)..len {
                    let row = &acts[(w * window + p) * d_sae..(w * window + p + 1) * d_sae];
                    let token = (start + p) as u32;
                    for (f, &a) in row.iter().enumerate() {
                        if a > 0.0 {
                            sink.put(l, f, token, a)?;
                        }
                    }
                }
            }
        }
        done += batch.len();
        sink.windows_done(done)?;
        progress.inc(batch.len() as u64);
    }
    Ok(())
}

/// Each feature's direct logit effects (its decoder row through the final norm's gain and
/// the unembedding), `[d_sae][vocab]`.
fn logit_effects(model: &Model, dictionary: &Dictionary) -> Result<Vec<Vec<f32>>> {
    Ok(model.direct_logit_effects(&dictionary.w_dec)?.to_vec2()?)
}

/// `x` to four significant digits (activations span orders of magnitude).
fn round3(x: f32) -> f32 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10_f32.powi(3 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

/// What [`records`] needs besides the activations.
#[derive(Debug, Clone, Copy)]
pub struct RecordContext<'a> {
    /// The corpus with its tags.
    pub corpus: &'a TaggedCorpus,
    /// For token texts in labels.
    pub tokenizer: &'a Tokenizer,
    /// Tokens per tag over the corpus (recall's denominators).
    pub tag_totals: &'a [u32],
    /// Tokens per genre over the corpus.
    pub genre_totals: &'a [u32],
    /// The seed of the quantile examples' draws.
    pub seed: u64,
}

/// Tokens per tag and per genre over the whole corpus.
#[must_use]
pub fn totals(corpus: &TaggedCorpus) -> (Vec<u32>, Vec<u32>) {
    let mut tags = vec![0_u32; corpus.tag_names.len()];
    for tag in corpus.tags.iter().flatten() {
        tags[*tag as usize] += 1;
    }
    let mut genres = vec![0_u32; corpus::GENRES.len()];
    for &g in &corpus.genres {
        genres[g as usize] += 1;
    }
    (tags, genres)
}

/// The records of one layer's features, from their activations.
pub fn records(
    context: RecordContext<'_>,
    model: &Model,
    layer: usize,
    dictionary: &Dictionary,
    activations: LayerActivations,
) -> Result<Vec<FeatureRecord>> {
    let effects = logit_effects(model, dictionary)?;
    let total_tokens = context.corpus.tokens.len() as f32;
    activations
        .into_iter()
        .zip(effects)
        .enumerate()
        .map(|(index, (mut entries, effects))| {
            // Strongest first; equal activations in corpus order, so the result is fixed.
            entries.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let seed = context.seed ^ ((layer as u64) << 32 | index as u64);
            let profile = profile(context, &entries);
            let label = label(context, &entries, &profile)?;
            Ok(FeatureRecord {
                index,
                label,
                frequency: round3(entries.len() as f32 / total_tokens),
                histogram: histogram(&entries),
                top: top_examples(context.corpus, &entries),
                quantiles: quantile_bands(context.corpus, &entries, seed),
                logits: top_effects(&effects),
                profile,
            })
        })
        .collect()
}

/// `(document, position)` of a corpus token.
fn example(corpus: &TaggedCorpus, token: u32, activation: f32) -> Example {
    let token = token as usize;
    let d = corpus
        .documents
        .partition_point(|doc| doc.start <= token)
        .saturating_sub(1);
    let position = token - corpus.documents.get(d).map_or(0, |doc| doc.start);
    Example(d as u32, position as u32, round3(activation))
}

fn histogram(entries: &[(u32, f32)]) -> Histogram {
    let max = entries.first().map_or(0.0, |e| e.1);
    let mut counts = vec![0_u32; HISTOGRAM_BINS];
    if max > 0.0 {
        for &(_, a) in entries {
            let bin = ((a / max) * HISTOGRAM_BINS as f32) as usize;
            counts[bin.min(HISTOGRAM_BINS - 1)] += 1;
        }
    }
    Histogram {
        max: round3(max),
        counts,
    }
}

fn top_examples(corpus: &TaggedCorpus, sorted: &[(u32, f32)]) -> Vec<Example> {
    let mut top: Vec<Example> = Vec::new();
    for &(token, a) in sorted {
        let e = example(corpus, token, a);
        if top.iter().filter(|t| t.0 == e.0).count() < TOP_PER_DOCUMENT {
            top.push(e);
            if top.len() == TOP_EXAMPLES {
                break;
            }
        }
    }
    top
}

fn quantile_bands(corpus: &TaggedCorpus, sorted: &[(u32, f32)], seed: u64) -> Vec<QuantileBand> {
    let n = sorted.len();
    if n == 0 {
        return Vec::new();
    }
    let mut rng = SplitMix64::new(seed);
    // `sorted` is strongest first; band 0 is the weakest quarter.
    let at = |q: f32| -> usize { ((1.0 - q) * n as f32).floor().min((n - 1) as f32) as usize };
    (0..BANDS)
        .map(|b| {
            let (from, to) = (b as f32 / BANDS as f32, (b + 1) as f32 / BANDS as f32);
            // Sorted positions of this band: from the `to` quantile down to the `from`.
            let (hi, lo) = (n - (from * n as f32) as usize, n - (to * n as f32) as usize);
            let mut picks: Vec<usize> = Vec::new();
            let size = hi.saturating_sub(lo);
            while picks.len() < BAND_EXAMPLES.min(size) {
                let i = lo + (rng.next_u64() % size as u64) as usize;
                if !picks.contains(&i) {
                    picks.push(i);
                }
            }
            picks.sort_unstable();
            QuantileBand(
                round3(sorted[at(from)].1),
                round3(sorted[at(to)].1),
                picks
                    .into_iter()
                    .map(|i| example(corpus, sorted[i].0, sorted[i].1))
                    .collect(),
            )
        })
        .collect()
}

fn top_effects(effects: &[f32]) -> LogitEffects {
    let mut order: Vec<usize> = (0..effects.len()).collect();
    order.sort_by(|&a, &b| effects[b].total_cmp(&effects[a]).then(a.cmp(&b)));
    let pick = |i: &usize| LogitEffect(*i as u32, round3(effects[*i]));
    LogitEffects {
        top: order.iter().take(LOGIT_EFFECTS).map(pick).collect(),
        bottom: order.iter().rev().take(LOGIT_EFFECTS).map(pick).collect(),
    }
}

/// Counts of `keys` (tags, genres or tokens) among firings, largest first, ties by key.
fn counted(keys: impl Iterator<Item = usize>, width: usize) -> Vec<(usize, u32)> {
    let mut counts = vec![0_u32; width];
    for k in keys {
        counts[k] += 1;
    }
    let mut out: Vec<(usize, u32)> = counts
        .into_iter()
        .enumerate()
        .filter(|&(_, c)| c > 0)
        .collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

fn profile(context: RecordContext<'_>, entries: &[(u32, f32)]) -> Profile {
    let corpus = context.corpus;
    let tags = counted(
        entries
            .iter()
            .filter_map(|&(t, _)| corpus.tags[t as usize].map(usize::from)),
        corpus.tag_names.len(),
    );
    let tagged: u32 = tags.iter().map(|t| t.1).sum();
    let tag = tags.first().map(|&(t, count)| {
        let key = corpus.tag_names[t].clone();
        CategoryScore {
            key,
            precision: round3(count as f32 / tagged as f32),
            recall: round3(count as f32 / context.tag_totals[t].max(1) as f32),
        }
    });
    let genres = counted(
        entries
            .iter()
            .map(|&(t, _)| usize::from(corpus.genres[t as usize])),
        corpus::GENRES.len(),
    );
    let recall = |g: usize, count: u32| count as f32 / context.genre_totals[g].max(1) as f32;
    let genre = genres
        .iter()
        .max_by(|a, b| {
            recall(a.0, a.1)
                .total_cmp(&recall(b.0, b.1))
                .then(b.0.cmp(&a.0))
        })
        .map(|&(g, count)| CategoryScore {
            key: corpus::GENRES[g].0.to_string(),
            precision: round3(count as f32 / entries.len() as f32),
            recall: round3(recall(g, count)),
        });
    let vocab = entries
        .iter()
        .map(|&(t, _)| corpus.tokens[t as usize] as usize + 1)
        .max()
        .unwrap_or(0);
    let tokens = counted(
        entries
            .iter()
            .map(|&(t, _)| corpus.tokens[t as usize] as usize),
        vocab,
    );
    Profile {
        tag,
        genre,
        tags: tags
            .iter()
            .take(PROFILE_ENTRIES)
            .map(|&(t, c)| (corpus.tag_names[t].clone(), c))
            .collect(),
        tokens: tokens
            .iter()
            .take(PROFILE_ENTRIES)
            .map(|&(t, c)| (t as u32, c))
            .collect(),
    }
}

/// A tag's precision at or above this makes the tag the label.
pub const TAG_LABEL_PRECISION: f32 = 0.6;

/// The automatic label: the best tag when it covers most firings ("plural noun (NNS),
/// precision 0.93"), led by the token when one token dominates; otherwise the top tokens.
fn label(context: RecordContext<'_>, entries: &[(u32, f32)], profile: &Profile) -> Result<String> {
    if entries.is_empty() {
        return Ok("dead: never fires on the corpus".to_owned());
    }
    let token_text =
        |id: u32| -> Result<String> { Ok(format!("{:?}", context.tokenizer.token_text(id)?)) };
    let dominant = profile
        .tokens
        .first()
        .filter(|(_, count)| *count as usize * 2 >= entries.len())
        .map(|(id, _)| token_text(*id))
        .transpose()?;
    if let Some(tag) = profile
        .tag
        .as_ref()
        .filter(|t| t.precision >= TAG_LABEL_PRECISION)
    {
        let described = format!(
            "{} ({}), precision {:.2}",
            tag_name(&tag.key),
            tag.key,
            tag.precision
        );
        return Ok(match dominant {
            Some(token) => format!("{token} — {described}"),
            None => described,
        });
    }
    let tokens = profile
        .tokens
        .iter()
        .take(3)
        .map(|(id, _)| token_text(*id))
        .collect::<Result<Vec<_>>>()?;
    Ok(format!("tokens {}", tokens.join(", ")))
}

/// A feature's search-index entry.
#[must_use]
pub fn label_entry(record: &FeatureRecord) -> LabelEntry {
    LabelEntry(
        record.label.clone(),
        record.frequency,
        record.profile.tag.as_ref().map(|t| t.key.clone()),
        record.profile.tokens.iter().take(3).map(|t| t.0).collect(),
    )
}

/// The pack's search index: each block's label entries, and the corpus's tags in words.
#[must_use]
pub fn label_index(corpus: &TaggedCorpus, layers: Vec<Vec<LabelEntry>>) -> LabelIndex {
    LabelIndex {
        layers,
        tag_names: corpus
            .tag_names
            .iter()
            .map(|t| (t.clone(), tag_name(t).to_owned()))
            .collect(),
    }
}
