//! Supernodes and pins as a panel: each supernode with its members (click one to select
//! it, × to take it out), and the subgraph of pins and supernodes with their edges summed.

use std::rc::Rc;

use glassbox_lab::{GraphFile, Subgraph, Supernode, ungroup_node};
use yew::prelude::*;

use crate::state::Shared;

use super::View;

const COLUMN: f64 = 90.0;
const ROW: f64 = 70.0;
const MARGIN: f64 = 40.0;

/// Properties of [`SupernodePanel`].
#[derive(Properties, PartialEq)]
pub(crate) struct SupernodePanelProps {
    /// The graph.
    pub(crate) graph: Shared<GraphFile>,
    /// The view.
    pub(crate) view: View,
}

/// The supernodes and the subgraph; nothing until something is pinned or grouped.
#[component]
pub(crate) fn SupernodePanel(props: &SupernodePanelProps) -> Html {
    let view = &props.view;
    let key = (
        props.graph.clone(),
        view.pins.clone(),
        Rc::clone(&view.groups),
    );
    let subgraph = use_memo(key, |(graph, pins, groups)| graph.subgraph(pins, groups));
    if subgraph.nodes.is_empty() {
        return html! {};
    }
    let groups = view.groups.iter().enumerate().map(|(i, group)| {
        let ungroup = {
            let view = view.clone();
            Callback::from(move |_: MouseEvent| {
                let mut groups: Vec<Supernode> = view.groups.as_ref().clone();
                groups.remove(i);
                view.set_groups(&groups);
            })
        };
        let members = group.members.iter().map(|id| {
            let select = {
                let (view, id) = (view.clone(), id.clone());
                Callback::from(move |_: MouseEvent| view.select(&id))
            };
            let remove = {
                let (view, id) = (view.clone(), id.clone());
                Callback::from(move |_: MouseEvent| {
                    let mut groups: Vec<Supernode> = view.groups.as_ref().clone();
                    ungroup_node(&mut groups, &id);
                    view.set_groups(&groups);
                })
            };
            html! {
                <li class="member">
                    <button class="link" onclick={select}>{ id.clone() }</button>
                    <button class="remove" aria-label={format!("take {id} out")} onclick={remove}>{ "×" }</button>
                </li>
            }
        });
        html! {
            <li class={classes!("supernode", format!("group-{}", i % 6))}>
                <strong>{ group.label.clone() }</strong>
                <button class="ungroup" onclick={ungroup}>{ "Ungroup" }</button>
                <ul>{ for members }</ul>
            </li>
        }
    });
    html! {
        <section class="supernodes" id="supernodes">
            <h3>{ "Subgraph: pinned nodes and supernodes" }</h3>
            <ul class="supernode-list">{ for groups }</ul>
            { draw(&subgraph) }
        </section>
    }
}

/// The subgraph as SVG: rows by layer, columns by position, edges summed.
fn draw(subgraph: &Subgraph) -> Html {
    let rows = subgraph.nodes.iter().map(|n| n.row).fold(0.0_f32, f32::max);
    let columns = subgraph
        .nodes
        .iter()
        .map(|n| n.position)
        .fold(0.0_f32, f32::max);
    let height = 2.0 * MARGIN + ROW * f64::from(rows);
    let width = 2.0 * MARGIN + COLUMN * f64::from(columns) + 160.0;
    let at = |n: &glassbox_lab::SubgraphNode| {
        (
            MARGIN + COLUMN * f64::from(n.position),
            height - MARGIN - ROW * f64::from(n.row),
        )
    };
    let strongest = subgraph
        .links
        .iter()
        .map(|l| l.weight.abs())
        .fold(0.0_f32, f32::max)
        .max(1e-9);
    let find = |id: &str| subgraph.nodes.iter().find(|n| n.id == id);
    let edges = subgraph.links.iter().filter_map(|link| {
        let (x1, y1) = at(find(&link.source)?);
        let (x2, y2) = at(find(&link.target)?);
        let width = 0.5 + 5.0 * f64::from(link.weight.abs() / strongest);
        let class = if link.weight >= 0.0 { "edge positive near" } else { "edge negative near" };
        Some(html! {
            <line class={class} x1={format!("{x1:.1}")} y1={format!("{y1:.1}")} x2={format!("{x2:.1}")} y2={format!("{y2:.1}")} stroke-width={format!("{width:.2}")}>
                <title>{ format!("{} → {}: {:+.3}", link.source, link.target, link.weight) }</title>
            </line>
        })
    });
    let nodes = subgraph.nodes.iter().map(|n| {
        let (x, y) = at(n);
        let radius = if n.members.len() > 1 { 9.0 } else { 6.0 };
        let class = if n.id.starts_with("supernode:") { "node supernode" } else { "node pinned" };
        html! {
            <g data-subgraph-node={n.id.clone()}>
                <circle class={class} cx={format!("{x:.1}")} cy={format!("{y:.1}")} r={format!("{radius:.1}")} />
                <text class="axis" x={format!("{:.1}", x + 11.0)} y={format!("{:.1}", y + 4.0)}>{ short(&n.label) }</text>
            </g>
        }
    });
    html! {
        <div class="graph-scroll">
            <svg id="subgraph" class="circuit" role="img" width={format!("{width:.0}")} height={format!("{height:.0}")}
                aria-label={format!("subgraph: {} nodes, {} edges", subgraph.nodes.len(), subgraph.links.len())}>
                { for edges }
                { for nodes }
            </svg>
        </div>
    }
}

/// A label short enough to sit beside a node.
fn short(label: &str) -> String {
    const MAX: usize = 28;
    if label.chars().count() <= MAX {
        label.to_owned()
    } else {
        format!("{}…", label.chars().take(MAX - 1).collect::<String>())
    }
}
