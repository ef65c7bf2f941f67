//! `query`: the page's address as a link gives it. Each input is read as a view's query
//! string (`parse_link`, into the union of the views' fields), its feature and supernode
//! lists as the steering and circuit views read them, the same parsers on the raw input,
//! and `pack_from_query` (`?pack=URL`).
//!
//! The seeds are the links of the page's own tests and documentation.

use glassbox_web::links::{parse_steer_features, parse_supernodes};
use glassbox_web::pack_link::pack_from_query;
use glassbox_web::query::{LinkQuery, parse_link};
use serde::{Deserialize, Serialize};

use super::{Target, text};
use crate::Behaviour;

/// The page's base address, as `pack_from_query` is given it.
const PAGE: &str = "https://glassbox.example/app/";

const SEEDS: [&str; 10] = [
    "?text=The%20jury%20said&pin=2",
    "?text=The%20jury&f=1/3:c20,2/5:x0,0/7:x-1.5&n=20&t=0.7&seed=3",
    "?text=The%20city%20of&nodes=0.8&edges=0.98&pin=1_7_2,E_464_0\
     &groups=say%20Atlanta:2_17_6,3_40_6;city:1_3_5&at=2_17_6",
    "?text=The%20jury&layer=1&head=2",
    "?pack=https%3A%2F%2Fhost.example%2Fpacks%2Fsmol&engine=gpu",
    "?pack=packs/copy",
    "?pack=//cdn.example/p/",
    "?pack=p/%3Fx=1",
    "1/3:c20, 2/5:x0,0/7:x-1.5",
    "say Atlanta:2_17_6, 3_40_6;city:1_3_5",
];

/// Every field the views' links carry, typed as the views type them.
#[derive(Debug, Default, Serialize, Deserialize)]
struct ViewFields {
    #[serde(default)]
    text: String,
    #[serde(default)]
    pin: String,
    #[serde(default)]
    f: String,
    #[serde(default)]
    n: usize,
    #[serde(default)]
    t: String,
    #[serde(default)]
    seed: u64,
    #[serde(default)]
    nodes: f32,
    #[serde(default)]
    edges: f32,
    #[serde(default)]
    groups: String,
    #[serde(default)]
    at: String,
    #[serde(default)]
    layer: usize,
    #[serde(default)]
    head: usize,
}

impl LinkQuery for ViewFields {
    fn accepts(field: &str) -> &'static str {
        match field {
            "n" | "seed" | "layer" | "head" => "a whole number",
            "nodes" | "edges" => "a number",
            _ => "any text",
        }
    }
}

pub(super) fn target() -> Target {
    Target {
        name: "query",
        text: true,
        seeds: SEEDS.iter().map(|s| s.as_bytes().to_vec()).collect(),
        run: Box::new(run),
    }
}

fn run(input: &[u8]) -> Behaviour {
    let mut b = Behaviour::default();
    let query = text(input);
    let (fields, errors) = parse_link::<ViewFields>(&query);
    b.note(if errors.is_empty() {
        "link"
    } else {
        "link with errors"
    });
    let _ = errors.iter().map(ToString::to_string).count();
    b.stage("features", parse_steer_features(&fields.f));
    b.stage("supernodes", parse_supernodes(&fields.groups));
    b.stage("raw features", parse_steer_features(&query));
    b.stage("raw supernodes", parse_supernodes(&query));
    b.stage("pack", pack_from_query(&query, PAGE));
    b
}
