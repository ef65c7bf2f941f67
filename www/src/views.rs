//! The views whose first answers a lesson can carry computed in advance
//! ([`crate::preview`]): each one's link state, and the requests it sends first, written
//! here once for the page (which sends them) and for the preview's builder (which answers
//! them natively), so the two cannot drift apart.

use serde::{Deserialize, Serialize};

use crate::engine::protocol::{
    Analyze, Attention, Feature, FeatureView, LiveExample, OnPrompt, Request,
};
use crate::query::{LinkQuery, parse_link};

/// A first prompt for visitors who arrive without one.
pub const EXAMPLE_PROMPT: &str = "The jury said that the city of Atlanta";

/// The prompt view's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptQuery {
    /// The prompt.
    #[serde(default)]
    pub text: String,
    /// The pinned token's position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<usize>,
}

/// The feature view's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureQuery {
    /// A prompt to show the feature's activations on.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
}

/// The attention view's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttentionQuery {
    /// The prompt.
    #[serde(default)]
    pub text: String,
    /// The block.
    #[serde(default)]
    pub layer: usize,
    /// The head shown large.
    #[serde(default)]
    pub head: usize,
    /// A cell of its map whose score is split into parts (QK attribution):
    /// `query_key`, e.g. `7_3`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub qk: String,
}

/// The logit-lens view's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LensQuery {
    /// The prompt.
    #[serde(default)]
    pub text: String,
}

impl LinkQuery for PromptQuery {
    fn accepts(field: &str) -> &'static str {
        match field {
            "pin" => "a token position (a whole number from 0)",
            _ => TEXT,
        }
    }
}

impl LinkQuery for FeatureQuery {
    fn accepts(_: &str) -> &'static str {
        TEXT
    }
}

impl LinkQuery for AttentionQuery {
    fn accepts(field: &str) -> &'static str {
        match field {
            "layer" => "a block number (a whole number from 0)",
            "head" => "a head number (a whole number from 0)",
            "qk" => "a query and a key position, query_key (e.g. 7_3)",
            _ => TEXT,
        }
    }
}

impl LinkQuery for LensQuery {
    fn accepts(_: &str) -> &'static str {
        TEXT
    }
}

/// What a text field of a link accepts.
pub const TEXT: &str = "any text";

impl PromptQuery {
    /// The prompt the view reads: the link's, or [`EXAMPLE_PROMPT`].
    #[must_use]
    pub fn prompt(&self) -> String {
        or_example(&self.text)
    }

    /// What the view asks: the prompt's tokens, predictions and features.
    #[must_use]
    pub fn analyze(&self) -> Analyze {
        Analyze {
            text: self.prompt(),
        }
    }
}

impl FeatureQuery {
    /// The prompt the view shows the feature's activations on: the link's, or
    /// [`EXAMPLE_PROMPT`].
    #[must_use]
    pub fn prompt(&self) -> String {
        or_example(&self.text)
    }

    /// What the view asks about feature `feature` of block `layer` on its prompt.
    #[must_use]
    pub fn on_prompt(&self, layer: usize, feature: usize) -> OnPrompt {
        OnPrompt {
            layer,
            feature,
            text: self.prompt(),
        }
    }
}

impl AttentionQuery {
    /// The state the view shows: a blank prompt reads as [`EXAMPLE_PROMPT`].
    #[must_use]
    pub fn shown(mut self) -> Self {
        if self.text.trim().is_empty() {
            EXAMPLE_PROMPT.clone_into(&mut self.text);
        }
        self
    }

    /// The query and key positions of the cell whose score is split, if the link names
    /// one (`qk=7_3`).
    #[must_use]
    pub fn cell(&self) -> Option<(usize, usize)> {
        let (query, key) = self.qk.split_once('_')?;
        Some((query.parse().ok()?, key.parse().ok()?))
    }

    /// What the view asks (of its [`Self::shown`] state): the block's attention patterns.
    #[must_use]
    pub fn attention(&self) -> Attention {
        Attention {
            text: self.text.clone(),
            layer: self.layer,
        }
    }
}

/// `text`, or [`EXAMPLE_PROMPT`] where it is empty.
fn or_example(text: &str) -> String {
    if text.is_empty() {
        EXAMPLE_PROMPT.to_owned()
    } else {
        text.to_owned()
    }
}

/// The corpus examples the feature view shows of a feature (its top activations, then
/// each quantile band's), each recomputed live by a [`LiveExample`].
#[must_use]
pub fn examples_shown(view: &FeatureView) -> Vec<LiveExample> {
    view.record
        .examples()
        .map(|e| LiveExample {
            layer: view.layer,
            feature: view.record.index,
            document: e.document(),
            position: e.position(),
        })
        .collect()
}

/// The feature a feature view's link (`/feature/LAYER/INDEX?…`, without its `#`) shows.
#[must_use]
pub fn feature_of_view(view: &str) -> Option<(usize, usize)> {
    let rest = view.strip_prefix("/feature/")?;
    let path = rest.split('?').next()?;
    let (layer, feature) = path.split_once('/')?;
    Some((layer.parse().ok()?, feature.parse().ok()?))
}

/// The requests the view at link `view` (without its `#`) sends before any answer: for
/// the prompt, feature and attention views; `None` for a view whose first answer a
/// preview cannot carry. A feature view then asks for its examples
/// ([`examples_shown`]) once the feature's record is in.
#[must_use]
pub fn first_requests(view: &str) -> Option<Vec<Request>> {
    let (path, query) = view.split_once('?').unwrap_or((view, ""));
    if let Some((layer, feature)) = feature_of_view(path) {
        let (state, _) = parse_link::<FeatureQuery>(query);
        return Some(vec![
            Request::Feature(Feature { layer, feature }),
            Request::OnPrompt(state.on_prompt(layer, feature)),
        ]);
    }
    match path {
        "/prompt" => Some(vec![Request::Analyze(
            parse_link::<PromptQuery>(query).0.analyze(),
        )]),
        "/attention" => Some(vec![Request::Attention(
            parse_link::<AttentionQuery>(query).0.shown().attention(),
        )]),
        _ => None,
    }
}
