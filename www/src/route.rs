//! Every view of the app, as a URL fragment (`#/...`), so any view can be linked to. A
//! view's whole state lives in its path and query.

use glassbox_lab::SteerAttention;
use glassbox_web::query::LinkQuery;
use glassbox_web::views::TEXT;
pub(crate) use glassbox_web::views::{AttentionQuery, FeatureQuery, LensQuery, PromptQuery};
use serde::{Deserialize, Serialize};
use yew_router::Routable;

/// The app's routes. A `HashRouter` keeps them after `#`, so the page works from any
/// static host.
#[derive(Debug, Clone, PartialEq, Eq, Routable)]
pub(crate) enum Route {
    /// The start page: the pack, the engine, where to begin.
    #[at("/")]
    Home,
    /// A prompt: tokens, predictions and features (`?text=…&pin=…`).
    #[at("/prompt")]
    Prompt,
    /// One feature (`?text=…` for its activations on a prompt).
    #[at("/feature/:layer/:index")]
    Feature {
        /// The block.
        layer: usize,
        /// The feature.
        index: usize,
    },
    /// Feature search (`?q=…`).
    #[at("/search")]
    Search,
    /// Steering (`?text=…&f=…&n=…&t=…&seed=…`).
    #[at("/steer")]
    Steer,
    /// A prompt's attribution graph (`?text=…&nodes=…&edges=…&pin=…&groups=…&at=…`).
    #[at("/circuit")]
    Circuit,
    /// A prompt's attention patterns (`?text=…&layer=…&head=…`).
    #[at("/attention")]
    Attention,
    /// A prompt's logit lens (`?text=…`).
    #[at("/lens")]
    Lens,
    /// "Guess the feature" (`?seed=…&round=…`).
    #[at("/quiz")]
    Quiz,
    /// The GPU check.
    #[at("/gpu")]
    Gpu,
    /// Writing a lesson: its title, its steps (views added from the bar above each view)
    /// and their text; a link or a file to share it.
    #[at("/write")]
    Write,
    /// Any link the app does not know.
    #[not_found]
    #[at("/404")]
    NotFound,
}

/// The search view's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SearchQueryParams {
    /// The search box.
    #[serde(default)]
    pub(crate) q: String,
}

/// The steering view's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SteerQuery {
    /// The prompt.
    #[serde(default)]
    pub(crate) text: String,
    /// Steered features: `layer/index:c<value>` (clamp) or `layer/index:x<factor>`
    /// (scale), comma-separated.
    #[serde(default)]
    pub(crate) f: String,
    /// Tokens to generate.
    #[serde(default = "default_tokens")]
    pub(crate) n: usize,
    /// Temperature, as text (0 is greedy).
    #[serde(default = "default_temperature")]
    pub(crate) t: String,
    /// Sampling seed.
    #[serde(default)]
    pub(crate) seed: u64,
}

fn default_tokens() -> usize {
    24
}

fn default_temperature() -> String {
    "0".to_owned()
}

impl Default for SteerQuery {
    fn default() -> Self {
        Self {
            text: String::new(),
            f: String::new(),
            n: default_tokens(),
            t: default_temperature(),
            seed: 0,
        }
    }
}

/// The circuit view's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CircuitQuery {
    /// The prompt.
    #[serde(default)]
    pub(crate) text: String,
    /// Node threshold: share of the influence kept.
    #[serde(default = "default_node_threshold")]
    pub(crate) nodes: f32,
    /// Edge threshold: share of the edge scores kept.
    #[serde(default = "default_edge_threshold")]
    pub(crate) edges: f32,
    /// Pinned node ids, comma-separated.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) pin: String,
    /// Supernodes, `label:id,id;…` (see `links::parse_supernodes`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) groups: String,
    /// The selected node's id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) at: String,
    /// What the graph's search box finds (see `GraphFile::find`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) find: String,
    /// A token (one, e.g. " was") the likeliest next token is contrasted with: the
    /// graph attributes the logit difference instead of the likeliest tokens.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) versus: String,
    /// A second prompt whose graph is compared with this one's.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) vs: String,
    /// Graph steering: the nodes set (see `links::parse_node_edits`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) steer: String,
    /// The tokens graph steering generates.
    #[serde(
        default = "default_steer_tokens",
        skip_serializing_if = "is_default_steer_tokens"
    )]
    pub(crate) n: usize,
    /// Graph steering's attention: free, or frozen over the prompt.
    #[serde(default, skip_serializing_if = "is_free")]
    pub(crate) attn: SteerAttention,
    /// The source of an edge into the selected node that crosses positions, split by
    /// the heads that carry it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) heads: String,
    /// The head (`block.head`) whose QK attribution explains that edge's hop; the one
    /// carrying most when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) head: String,
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_free(attention: &SteerAttention) -> bool {
    *attention == SteerAttention::Free
}

/// Graph steering's tokens unless the link says otherwise (Neuronpedia's default).
fn default_steer_tokens() -> usize {
    10
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_default_steer_tokens(n: &usize) -> bool {
    *n == default_steer_tokens()
}

/// The most nodes a circuit link may pin (a graph keeps at most 2048 features).
pub(crate) const MAX_PINS: usize = 2048;

impl CircuitQuery {
    /// The logit difference the link asks for, if any.
    pub(crate) fn contrast(&self) -> Option<glassbox_lab::Contrast> {
        (!self.versus.is_empty()).then(|| glassbox_lab::Contrast {
            token: None,
            versus: self.versus.clone(),
        })
    }

    /// The pinned node ids, at most [`MAX_PINS`] of them, and whether the link had more.
    pub(crate) fn pins(&self) -> (Vec<String>, bool) {
        let mut pins: Vec<String> = self
            .pin
            .split(',')
            .filter(|s| !s.is_empty())
            .take(MAX_PINS + 1)
            .map(str::to_owned)
            .collect();
        let more = pins.len() > MAX_PINS;
        pins.truncate(MAX_PINS);
        (pins, more)
    }
}

fn default_node_threshold() -> f32 {
    0.8
}

fn default_edge_threshold() -> f32 {
    0.98
}

impl Default for CircuitQuery {
    fn default() -> Self {
        Self {
            text: String::new(),
            nodes: default_node_threshold(),
            edges: default_edge_threshold(),
            pin: String::new(),
            groups: String::new(),
            at: String::new(),
            find: String::new(),
            versus: String::new(),
            vs: String::new(),
            steer: String::new(),
            n: default_steer_tokens(),
            attn: SteerAttention::Free,
            heads: String::new(),
            head: String::new(),
        }
    }
}

impl LinkQuery for SearchQueryParams {
    fn accepts(_: &str) -> &'static str {
        TEXT
    }
}

impl LinkQuery for SteerQuery {
    fn accepts(field: &str) -> &'static str {
        match field {
            "n" => "a number of tokens (a whole number from 1)",
            "seed" => "a seed (a whole number from 0)",
            _ => TEXT,
        }
    }
}

impl LinkQuery for CircuitQuery {
    fn accepts(field: &str) -> &'static str {
        match field {
            "nodes" | "edges" => "a share between 0 and 1, such as 0.8",
            "n" => "a number of tokens (a whole number from 1 to 20)",
            "attn" => "free or frozen",
            _ => TEXT,
        }
    }
}

/// The quiz's state: which quiz, which round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct QuizQuery {
    /// The quiz's seed: one link, the same questions for everyone.
    #[serde(default = "default_quiz_seed")]
    pub(crate) seed: u64,
    /// The round, from 0.
    #[serde(default)]
    pub(crate) round: u64,
}

fn default_quiz_seed() -> u64 {
    1
}

impl Default for QuizQuery {
    fn default() -> Self {
        Self {
            seed: default_quiz_seed(),
            round: 0,
        }
    }
}

impl LinkQuery for QuizQuery {
    fn accepts(_: &str) -> &'static str {
        "a whole number from 0"
    }
}
