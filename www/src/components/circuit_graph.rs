//! An attribution graph drawn as SVG: one column per prompt position, one row per layer
//! (embeddings at the bottom, logits at the top); node size by influence, edge width by
//! weight, blue for positive edges, red for negative; members of a supernode ringed in
//! its colour. Hovering a node says so (and its title shows its label); clicking selects
//! it, double-clicking opens it.

use std::collections::HashMap;

use glassbox_lab::{GraphFile, Supernode, TRANSCODER_ERROR, TRANSCODER_FEATURE, row_of};
use yew::prelude::*;

use crate::state::Shared;

const COLUMN: f64 = 110.0;
/// Width of a column holding nothing but embeddings (long prompts have many).
const NARROW: f64 = 48.0;
/// Horizontal room per node in a crowded cell.
const SPACING: f64 = 16.0;
const ROW: f64 = 70.0;
const LEFT: f64 = 70.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 64.0;

/// Where each node sits: `(x, y)` by node id, and the drawing's size.
struct Layout {
    at: HashMap<String, (f64, f64)>,
    width: f64,
    height: f64,
    rows: Vec<String>,
    /// Each column's middle, for its token's label.
    centres: Vec<f64>,
}

fn layout(graph: &GraphFile) -> Layout {
    let blocks = graph.blocks();
    let rows = blocks + 2;
    let row_of: Vec<usize> = graph.nodes.iter().map(|n| row_of(n, blocks)).collect();
    let columns = graph.metadata.prompt_tokens.len().max(1);
    let mut cells: HashMap<(usize, usize), Vec<usize>> = HashMap::new();
    for (i, node) in graph.nodes.iter().enumerate() {
        cells.entry((row_of[i], node.ctx_idx)).or_default().push(i);
    }
    // Each column as wide as its fullest cell needs; narrow if only embeddings.
    let mut widths = vec![NARROW; columns];
    for (&(row, column), members) in &cells {
        if let Some(w) = widths.get_mut(column) {
            let least = if row > 0 { COLUMN } else { NARROW };
            *w = w.max(least).max(SPACING * (members.len() as f64 + 1.0));
        }
    }
    let starts: Vec<f64> = widths
        .iter()
        .scan(LEFT, |x, w| {
            let start = *x;
            *x += w;
            Some(start)
        })
        .collect();
    let height = TOP + BOTTOM + ROW * rows as f64;
    let mut at = HashMap::new();
    for ((row, column), mut members) in cells {
        // The most influential first, left to right.
        members.sort_by(|&a, &b| {
            let influence = |i: usize| graph.nodes[i].influence.unwrap_or(1.0);
            influence(a).total_cmp(&influence(b))
        });
        let count = members.len() as f64;
        let (start, width) = (
            starts.get(column).copied().unwrap_or(LEFT),
            widths.get(column).copied().unwrap_or(COLUMN),
        );
        for (k, i) in members.into_iter().enumerate() {
            let x = start + width * (k as f64 + 1.0) / (count + 1.0);
            let y = TOP + ROW * (rows - 1 - row) as f64 + ROW / 2.0;
            at.insert(graph.nodes[i].node_id.clone(), (x, y));
        }
    }
    let names = (0..rows)
        .map(|r| match r {
            0 => "embeddings".to_owned(),
            r if r == rows - 1 => "logits".to_owned(),
            r => format!("block {}", r - 1),
        })
        .collect();
    Layout {
        at,
        width: starts.last().copied().unwrap_or(LEFT)
            + widths.last().copied().unwrap_or(COLUMN)
            + 10.0,
        height,
        rows: names,
        centres: starts
            .iter()
            .zip(&widths)
            .map(|(s, w)| s + w / 2.0)
            .collect(),
    }
}

/// Properties of [`CircuitGraph`].
#[derive(Properties, PartialEq)]
pub(crate) struct CircuitGraphProps {
    /// The graph.
    pub(crate) graph: Shared<GraphFile>,
    /// Pinned node ids.
    pub(crate) pinned: Vec<String>,
    /// The supernodes.
    pub(crate) groups: std::rc::Rc<Vec<Supernode>>,
    /// The selected node's id.
    pub(crate) selected: Option<String>,
    /// The ids a search found: ringed, the rest faded.
    pub(crate) found: std::rc::Rc<Vec<String>>,
    /// Called with a node's id when it is clicked.
    pub(crate) on_select: Callback<String>,
    /// Called with a node's id when it is double-clicked.
    pub(crate) on_open: Callback<String>,
    /// Called with a node's id when the pointer enters it, `None` when it leaves.
    pub(crate) on_hover: Callback<Option<String>>,
}

/// The graph as SVG.
#[component]
pub(crate) fn CircuitGraph(props: &CircuitGraphProps) -> Html {
    let graph = &props.graph;
    let layout = use_memo(graph.clone(), |g| layout(g));
    let strongest = graph
        .links
        .iter()
        .map(|l| l.weight.abs())
        .fold(0.0_f32, f32::max)
        .max(1e-9);
    let columns = graph.metadata.prompt_tokens.len();
    let rows = layout.rows.len();
    let edges = graph.links.iter().filter_map(|link| {
        let (x1, y1) = layout.at.get(&link.source)?;
        let (x2, y2) = layout.at.get(&link.target)?;
        let width = 0.3 + 3.5 * f64::from(link.weight.abs() / strongest);
        let touches = props.selected.as_ref().is_some_and(|s| *s == link.source || *s == link.target);
        let class = match (link.weight >= 0.0, touches) {
            (true, false) => "edge positive",
            (false, false) => "edge negative",
            (true, true) => "edge positive near",
            (false, true) => "edge negative near",
        };
        Some(html! {
            <line class={class} x1={format!("{x1:.1}")} y1={format!("{y1:.1}")} x2={format!("{x2:.1}")} y2={format!("{y2:.1}")}
                stroke-width={format!("{width:.2}")} />
        })
    });
    // Looked up once per node: sets, so pins and groups cost nothing quadratic.
    let pinned_ids: std::collections::HashSet<&str> =
        props.pinned.iter().map(String::as_str).collect();
    let group_of: std::collections::HashMap<&str, usize> = props
        .groups
        .iter()
        .enumerate()
        .rev()
        .flat_map(|(i, g)| g.members.iter().map(move |m| (m.as_str(), i)))
        .collect();
    let finding = !props.found.is_empty();
    let found: std::collections::HashSet<&str> = props.found.iter().map(String::as_str).collect();
    let nodes = graph.nodes.iter().filter_map(|node| {
        let (x, y) = layout.at.get(&node.node_id)?;
        let influence = node.influence.unwrap_or(1.0).clamp(0.0, 1.0);
        let radius = 3.0 + 7.0 * (1.0 - f64::from(influence));
        let pinned = pinned_ids.contains(node.node_id.as_str());
        let selected = props.selected.as_ref() == Some(&node.node_id);
        let kind = match node.feature_type.as_str() {
            TRANSCODER_FEATURE => "feature",
            TRANSCODER_ERROR => "error",
            "embedding" => "embedding",
            _ => "logit",
        };
        let group = group_of
            .get(node.node_id.as_str())
            .map(|i| format!("grouped group-{}", i % 6));
        let hit = found.contains(node.node_id.as_str());
        let class = classes!("node", kind, pinned.then_some("pinned"), selected.then_some("selected"), group, hit.then_some("found"));
        let id = node.node_id.clone();
        let on_select = props.on_select.clone();
        let onclick = Callback::from(move |_: MouseEvent| on_select.emit(id.clone()));
        let (on_open, id) = (props.on_open.clone(), node.node_id.clone());
        let ondblclick = Callback::from(move |_: MouseEvent| on_open.emit(id.clone()));
        let (enter, leave) = (props.on_hover.clone(), props.on_hover.clone());
        let id = node.node_id.clone();
        let onmouseenter = Callback::from(move |_: MouseEvent| enter.emit(Some(id.clone())));
        let onmouseleave = Callback::from(move |_: MouseEvent| leave.emit(None));
        Some(html! {
            <circle class={class} cx={format!("{x:.1}")} cy={format!("{y:.1}")} r={format!("{radius:.1}")}
                data-node={node.node_id.clone()} {onclick} {ondblclick} {onmouseenter} {onmouseleave}>
                <title>{ format!("{} · {}", node.node_id, node.clerp) }</title>
            </circle>
        })
    });
    // Token labels slanted, so that narrow columns keep them apart.
    let tokens = graph.metadata.prompt_tokens.iter().enumerate().map(|(p, token)| {
        let x = layout.centres.get(p).copied().unwrap_or(LEFT) + 4.0;
        let y = layout.height - BOTTOM + 14.0;
        html! { <text class="axis token" x={format!("{x:.1}")} y={format!("{y:.1}")} text-anchor="end" transform={format!("rotate(-35 {x:.1} {y:.1})")}>{ format!("{token:?}") }</text> }
    });
    // Long prompts: start scrolled to the end, where the logits are.
    let scroller = use_node_ref();
    {
        let scroller = scroller.clone();
        use_effect_with(graph.clone(), move |_| {
            if let Some(element) = scroller.cast::<web_sys::Element>() {
                element.set_scroll_left(element.scroll_width());
            }
        });
    }
    let row_names = layout.rows.iter().enumerate().map(|(r, name)| {
        let y = TOP + ROW * (rows - 1 - r) as f64 + ROW / 2.0 + 4.0;
        html! { <text class="axis" x="4" y={format!("{y:.1}")}>{ name.clone() }</text> }
    });
    html! {
        <div class="graph-scroll" ref={scroller}>
            <svg id="circuit-graph" class={classes!("circuit", finding.then_some("finding"))} role="img" width={format!("{:.0}", layout.width)} height={format!("{:.0}", layout.height)}
                aria-label={format!("attribution graph: {} nodes, {} edges over {columns} positions", graph.nodes.len(), graph.links.len())}>
                { for edges }
                { for nodes }
                { for tokens }
                { for row_names }
            </svg>
        </div>
    }
}
