//! The selected node: what it is, its strongest edges, and what can be done with it: pin
//! it, open its feature, put it in a supernode or take it out, and intervene on it.

use std::rc::Rc;

use glassbox_lab::{FileNode, GraphFile, Link as GraphLink, Supernode, group_node, ungroup_node};
use glassbox_web::links::clean_label;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::state::Shared;
use yew_router::prelude::*;

use super::View;
use super::edge_heads::EdgeHeadsPanel;
use super::intervention::{Intervention, NodeTarget};
use crate::route::Route;

/// A feature node's block and feature.
pub(crate) fn feature_at(node: &FileNode) -> Option<(usize, usize)> {
    node.transcoder_feature()
}

/// What an intervention on `node` changes, if it can be intervened on.
fn target_of(node: &FileNode) -> Option<NodeTarget> {
    if let Some((layer, feature)) = feature_at(node) {
        return Some(NodeTarget::Feature {
            layer,
            feature,
            position: node.ctx_idx,
            activation: node.activation.unwrap_or(0.0),
        });
    }
    node.error_layer().map(|layer| NodeTarget::Error {
        layer,
        position: node.ctx_idx,
    })
}

/// Properties of [`NodeDetails`].
#[derive(Properties, PartialEq)]
pub(crate) struct NodeDetailsProps {
    /// The graph.
    pub(crate) graph: Shared<GraphFile>,
    /// The selected node's id.
    pub(crate) id: String,
    /// The view.
    pub(crate) view: View,
    /// Whether the graph was computed here (so interventions can run), not imported.
    pub(crate) live: bool,
}

/// The selected node's panel.
#[component]
pub(crate) fn NodeDetails(props: &NodeDetailsProps) -> Html {
    let graph = &props.graph;
    let view = &props.view;
    let new_group = use_state(String::new);
    let Some(node) = graph.nodes.iter().find(|n| n.node_id == props.id) else {
        return html! {};
    };
    let label_of = |id: &str| {
        graph
            .nodes
            .iter()
            .find(|n| n.node_id == id)
            .map_or_else(|| id.to_owned(), |n| format!("{} {}", n.node_id, n.clerp))
    };
    let strongest = |keep: &dyn Fn(&GraphLink) -> bool| {
        let mut links: Vec<&GraphLink> = graph.links.iter().filter(|l| keep(l)).collect();
        links.sort_by(|a, b| b.weight.abs().total_cmp(&a.weight.abs()));
        links
    };
    let incoming = strongest(&|l| l.target == node.node_id);
    let outgoing = strongest(&|l| l.source == node.node_id);
    let is_pinned = view.pins.contains(&node.node_id);
    let toggle_pin = {
        let (view, id) = (view.clone(), node.node_id.clone());
        Callback::from(move |_: MouseEvent| {
            let mut pins = view.pins.clone();
            if let Some(i) = pins.iter().position(|p| *p == id) {
                pins.remove(i);
            } else {
                pins.push(id.clone());
            }
            view.set_pins(&pins);
        })
    };
    let feature = feature_at(node).map(|(layer, index)| {
        html! { <Link<Route> to={Route::Feature { layer, index }}>{ "Open the feature" }</Link<Route>> }
    });
    // An input from an earlier token crossed positions through attention: which heads?
    let split_button = |l: &GraphLink| {
        let before = graph
            .nodes
            .iter()
            .find(|n| n.node_id == l.source)
            .is_some_and(|n| n.ctx_idx < node.ctx_idx);
        (props.live && l.target == node.node_id && before).then(|| {
            let (view, source) = (view.clone(), l.source.clone());
            let onclick = Callback::from(move |_: MouseEvent| view.split_edge(&source, ""));
            html! { <>{ " " }<button class="split-edge" {onclick}>{ "which heads?" }</button></> }
        })
    };
    let edge_list = |links: &[&GraphLink], other: fn(&GraphLink) -> &str| {
        html! {
            <ol class="edges">
                { for links.iter().take(8).map(|l| html! {
                    <li><span class={if l.weight >= 0.0 { "status-ok" } else { "status-bad" }}>{ format!("{:+.3}", l.weight) }</span>{ " " }{ label_of(other(l)) }{ for split_button(l) }</li>
                }) }
            </ol>
        }
    };
    let on_steer = {
        let view = view.clone();
        Callback::from(move |edit| view.add_steering(edit))
    };
    let intervention = props.live.then(|| target_of(node)).flatten().map(|target| {
        html! { <Intervention key={node.node_id.clone()} text={view.query.text.clone()} contrast={view.query.contrast()} {target} on_steer={on_steer} /> }
    });
    html! {
        <aside class="node-details" id="node-details">
            <h3>{ format!("{} — {}", node.node_id, node.feature_type) }</h3>
            <p>{ node.clerp.clone() }</p>
            <p class="muted">{ format!("position {} · activation {:.3} · cumulative influence {:.3}", node.ctx_idx, node.activation.unwrap_or(0.0), node.influence.unwrap_or(0.0)) }</p>
            <p>
                <button id="pin-node" onclick={toggle_pin}>{ if is_pinned { "Unpin" } else { "Pin" } }</button>
                { " " }{ for feature }
            </p>
            { group_controls(&node.node_id, view, &new_group) }
            { for intervention }
            <h4>{ "Strongest inputs" }</h4>
            { edge_list(&incoming, |l| l.source.as_str()) }
            if props.live {
                <EdgeHeadsPanel view={view.clone()} target={node.node_id.clone()} />
            }
            <h4>{ "Strongest outputs" }</h4>
            { edge_list(&outgoing, |l| l.target.as_str()) }
        </aside>
    }
}

/// A change to the list of supernodes.
type GroupEdit = dyn Fn(&mut Vec<Supernode>);

/// Buttons to put node `id` in a supernode (an existing one, or a new one named in the
/// box) or take it out of one.
fn group_controls(id: &str, view: &View, new_group: &UseStateHandle<String>) -> Html {
    let groups: &[Supernode] = &view.groups;
    let member_of = groups.iter().find(|g| g.members.iter().any(|m| m == id));
    let change = |edit: Rc<GroupEdit>| {
        let view = view.clone();
        Callback::from(move |_: MouseEvent| {
            let mut groups: Vec<Supernode> = view.groups.as_ref().clone();
            edit(&mut groups);
            view.set_groups(&groups);
        })
    };
    let join = |label: String| {
        let id = id.to_owned();
        change(Rc::new(move |groups: &mut Vec<Supernode>| {
            group_node(groups, &id, &label);
        }))
    };
    let existing = groups.iter().filter(|g| Some(*g) != member_of).map(|g| {
        html! { <button class="add-to-group" onclick={join(g.label.clone())}>{ format!("Add to “{}”", g.label) }</button> }
    });
    let leave = member_of.map(|group| {
        let id = id.to_owned();
        let onclick = change(Rc::new(move |groups: &mut Vec<Supernode>| {
            ungroup_node(groups, &id);
        }));
        html! { <button id="leave-group" {onclick}>{ format!("Take out of “{}”", group.label) }</button> }
    });
    let label = clean_label(new_group);
    let create = {
        let (make, new_group) = (join(label.clone()), new_group.clone());
        Callback::from(move |event: MouseEvent| {
            make.emit(event);
            new_group.set(String::new());
        })
    };
    let on_name = {
        let new_group = new_group.clone();
        Callback::from(move |event: InputEvent| {
            new_group.set(event.target_unchecked_into::<HtmlInputElement>().value());
        })
    };
    html! {
        <div class="group-controls">
            { for leave }
            { for existing }
            <input id="group-label" type="text" placeholder="new supernode label" aria-label="new supernode label" value={(**new_group).clone()} oninput={on_name} />
            <button id="group-node" onclick={create} disabled={label.is_empty()}>{ "Group" }</button>
        </div>
    }
}
