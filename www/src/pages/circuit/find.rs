//! Finding nodes in the graph shown (the link's `find`): the matches are highlighted in
//! the graph, counted here, and can be grouped into one supernode (all the features on a
//! token, all the positions of one feature, every feature whose label says "plural").

use std::rc::Rc;

use glassbox_lab::{GraphFile, NodeQuery, group_node};
use glassbox_web::links::{MAX_SUPERNODE_MEMBERS, MAX_SUPERNODES, clean_label};
use yew::prelude::*;

use super::View;
use crate::components::text_field::TextField;
use crate::route::CircuitQuery;
use crate::state::Shared;

/// Properties of [`GraphFinder`].
#[derive(Properties, PartialEq)]
pub(crate) struct GraphFinderProps {
    /// The graph searched.
    pub(crate) graph: Shared<GraphFile>,
    /// The ids found (the page computes them once for the graph's highlight too).
    pub(crate) found: Rc<Vec<String>>,
    /// The view's state.
    pub(crate) view: View,
}

/// The search box, what it found, and grouping the matches.
#[component]
pub(crate) fn GraphFinder(props: &GraphFinderProps) -> Html {
    let view = props.view.clone();
    let query = view.query.find.clone();
    let on_commit = {
        let view = view.clone();
        Callback::from(move |find: String| {
            view.go.emit(CircuitQuery {
                find,
                ..view.query.clone()
            });
        })
    };
    let found = &props.found;
    // The group is named after what was searched: a token's text, else the search itself.
    let label = clean_label(&match NodeQuery::parse(&query) {
        Some(NodeQuery::Token(token)) => token,
        _ => query.trim().to_owned(),
    });
    let groupable = !found.is_empty()
        && found.len() <= MAX_SUPERNODE_MEMBERS
        && !label.is_empty()
        && (view.groups.len() < MAX_SUPERNODES || view.groups.iter().any(|g| g.label == label));
    let on_group = {
        let (view, found, label) = (view.clone(), Rc::clone(found), label.clone());
        Callback::from(move |_: MouseEvent| {
            let mut groups = (*view.groups).clone();
            for id in found.iter() {
                group_node(&mut groups, id, &label);
            }
            view.set_groups(&groups);
        })
    };
    let summary = match found.len() {
        _ if query.trim().is_empty() => String::new(),
        0 => format!("No node of these {} matches.", props.graph.nodes.len()),
        1 => "1 node matches (ringed in the graph).".to_owned(),
        n => format!("{n} nodes match (ringed in the graph)."),
    };
    html! {
        <div class="graph-find">
            <label>{ "Find nodes: " }
                <TextField id="graph-find" kind="search" value={query.clone()} {on_commit}
                    placeholder={"a label's words · \"token\" · 0/460 · a node id"} />
            </label>
            <span class="muted" id="found-note">{ summary }</span>
            if groupable {
                <button type="button" id="group-found" onclick={on_group}
                    title="Put every node found into one supernode named after the search">
                    { format!("Group them as “{label}”") }
                </button>
            }
        </div>
    }
}
