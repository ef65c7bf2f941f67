//! Finding features: by words of their label, by part-of-speech tag, by a token they
//! commonly fire on, or by what fires on a piece of text.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::lab::Lab;

/// What to look for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SearchQuery {
    /// Every word appears in the label (case ignored).
    Label(String),
    /// The best tag is this Brown tag (e.g. `NNS`).
    Tag(String),
    /// A token the feature commonly fires on, as it reads (e.g. ` of`).
    Token(String),
    /// What fires most strongly anywhere in this text.
    Text(String),
}

impl SearchQuery {
    /// Reads a search box: `tag:NNS`, `token:" of"` (quotes keep spaces), `text:…`, or
    /// else words of a label. A bare upper-case word that is a tag of the pack searches
    /// tags.
    #[must_use]
    pub fn parse(query: &str, known_tags: &[String]) -> Self {
        let query = query.trim();
        let unquote = |s: &str| -> String {
            let s = s.trim();
            s.strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .map_or_else(|| s.to_owned(), str::to_owned)
        };
        if let Some(rest) = query.strip_prefix("tag:") {
            return Self::Tag(rest.trim().to_ascii_uppercase());
        }
        if let Some(rest) = query.strip_prefix("token:") {
            return Self::Token(unquote(rest));
        }
        if let Some(rest) = query.strip_prefix("text:") {
            return Self::Text(rest.trim().to_owned());
        }
        if known_tags.iter().any(|t| t == query) {
            return Self::Tag(query.to_owned());
        }
        if query.len() > 1 && query.starts_with('"') && query.ends_with('"') {
            return Self::Token(unquote(query));
        }
        Self::Label(query.to_owned())
    }
}

/// A feature found, with why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// The block.
    pub layer: usize,
    /// The feature.
    pub feature: usize,
    /// Its label.
    pub label: String,
    /// Share of corpus tokens it fires on.
    pub frequency: f32,
    /// For a text search, its strongest activation on the text; else 0.
    pub activation: f32,
}

impl Lab {
    /// Every base tag that is some feature's best tag, sorted.
    #[must_use]
    pub fn tags(&self) -> Vec<String> {
        let mut tags: Vec<String> = self
            .labels
            .layers
            .iter()
            .flatten()
            .filter_map(|e| e.2.clone())
            .collect();
        tags.sort();
        tags.dedup();
        tags
    }

    /// Features matching `query`, best first, at most `limit`.
    ///
    /// Label and tag matches come commonest first; token matches first where the token
    /// is the feature's commonest, then by frequency; text matches by their strongest
    /// activation on the text.
    pub async fn search(&self, query: &SearchQuery, limit: usize) -> Result<Vec<SearchHit>> {
        let (SearchQuery::Label(text)
        | SearchQuery::Tag(text)
        | SearchQuery::Token(text)
        | SearchQuery::Text(text)) = query;
        crate::analyze::check_text_length(text)?;
        // (score, frequency, hit): higher is better.
        let mut scored: Vec<(f32, SearchHit)> = match query {
            SearchQuery::Label(words) => {
                let words: Vec<String> = words.split_whitespace().map(str::to_lowercase).collect();
                self.live_features()
                    .filter(|&(l, f)| {
                        let label = self.label(l, f).to_lowercase();
                        words.iter().all(|w| label.contains(w.as_str()))
                    })
                    .map(|(l, f)| (0.0, self.hit(l, f, 0.0)))
                    .collect()
            }
            SearchQuery::Tag(tag) => self
                .live_features()
                .filter(|&(l, f)| self.labels.layers[l][f].2.as_deref() == Some(tag.as_str()))
                .map(|(l, f)| (0.0, self.hit(l, f, 0.0)))
                .collect(),
            SearchQuery::Token(text) => match self.tokenizer.encode_ids(text)?.as_slice() {
                [id] => self
                    .live_features()
                    .filter_map(|(l, f)| {
                        let rank = self.labels.layers[l][f].3.iter().position(|t| t == id)?;
                        Some((-(rank as f32), self.hit(l, f, 0.0)))
                    })
                    .collect(),
                _ => Vec::new(),
            },
            SearchQuery::Text(text) => {
                let analysis = self.analyze(text, 0, usize::MAX).await?;
                let mut best: Vec<(f32, SearchHit)> = Vec::new();
                for a in analysis.features.iter().flatten().flatten() {
                    match best
                        .iter_mut()
                        .find(|(_, h)| h.layer == a.layer && h.feature == a.feature)
                    {
                        Some((score, h)) => {
                            *score = score.max(a.activation);
                            h.activation = *score;
                        }
                        None => {
                            best.push((a.activation, self.hit(a.layer, a.feature, a.activation)));
                        }
                    }
                }
                best
            }
        };
        scored.sort_by(|(sa, a), (sb, b)| {
            sb.total_cmp(sa)
                .then(b.frequency.total_cmp(&a.frequency))
                .then((a.layer, a.feature).cmp(&(b.layer, b.feature)))
        });
        Ok(scored.into_iter().take(limit).map(|(_, h)| h).collect())
    }

    /// Every feature that fires somewhere in the corpus, as `(layer, feature)`.
    fn live_features(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.labels
            .layers
            .iter()
            .enumerate()
            .flat_map(|(l, entries)| {
                entries
                    .iter()
                    .enumerate()
                    .filter(|(_, e)| e.1 > 0.0)
                    .map(move |(f, _)| (l, f))
            })
    }

    fn hit(&self, layer: usize, feature: usize, activation: f32) -> SearchHit {
        let entry = &self.labels.layers[layer][feature];
        SearchHit {
            layer,
            feature,
            label: entry.0.clone(),
            frequency: entry.1,
            activation,
        }
    }
}
