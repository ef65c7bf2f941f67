//! Suggested supernodes: the groups the engine finds in the graph (features on one token
//! that feed the same nodes and write alike, `Lab::suggest_supernodes`), each with a
//! name to keep or change; accepted, it becomes a supernode in the link like a hand-made
//! one; rejected, it is hidden while the page is open.

use std::collections::BTreeMap;

use glassbox_lab::{Supernode, group_node};
use glassbox_web::engine::protocol::{Circuit, SuggestGroups};
use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::View;
use crate::state::{AnswerView, use_request};

/// Properties of [`SuggestedGroups`].
#[derive(Properties, PartialEq)]
pub(crate) struct SuggestedGroupsProps {
    /// The view (its link's prompt, thresholds and supernodes).
    pub(crate) view: View,
}

/// The suggestions not yet accepted or rejected.
#[component]
pub(crate) fn SuggestedGroups(props: &SuggestedGroupsProps) -> Html {
    let view = &props.view;
    let query = &view.query;
    let answer = use_request(Some(SuggestGroups {
        graph: Circuit {
            text: query.text.clone(),
            contrast: query.contrast(),
            nodes: query.nodes,
            edges: query.edges,
        },
    }));
    // Rejected suggestions and names changed, by their first member.
    let rejected = use_state(Vec::<String>::new);
    let names = use_state(BTreeMap::<String, String>::new);
    let body = AnswerView::new("Looking for groups…")
        .error_id("suggestions-error")
        .show(&answer, |suggestions| {
            let grouped = |members: &[String]| {
                view.groups
                    .iter()
                    .any(|g: &Supernode| members.iter().all(|m| g.members.contains(m)))
            };
            let open: Vec<_> = suggestions
                .iter()
                .filter(|s| !rejected.contains(&s.members[0]) && !grouped(&s.members))
                .collect();
            if open.is_empty() {
                return html! { <p class="muted" id="no-suggestions">{ if suggestions.is_empty() { "No group of features is alike enough in this graph." } else { "Every suggestion was accepted or rejected." } }</p> };
            }
            html! {
                <ol class="suggestions" id="suggestions">
                    { for open.into_iter().map(|s| {
                        let key = s.members[0].clone();
                        let name = names.get(&key).cloned().unwrap_or_else(|| s.name.clone());
                        let on_name = {
                            let (names, key) = (names.clone(), key.clone());
                            Callback::from(move |event: InputEvent| {
                                let mut changed = (*names).clone();
                                changed.insert(key.clone(), event.target_unchecked_into::<HtmlInputElement>().value());
                                names.set(changed);
                            })
                        };
                        let accept = {
                            let (view, members, name) = (view.clone(), s.members.clone(), name.clone());
                            Callback::from(move |_: MouseEvent| {
                                let mut groups: Vec<Supernode> = view.groups.as_ref().clone();
                                for member in &members {
                                    group_node(&mut groups, member, name.trim());
                                }
                                view.set_groups(&groups);
                            })
                        };
                        let reject = {
                            let (rejected, key) = (rejected.clone(), key.clone());
                            Callback::from(move |_: MouseEvent| {
                                let mut more = (*rejected).clone();
                                more.push(key.clone());
                                rejected.set(more);
                            })
                        };
                        let members = s.members.iter().map(|id| {
                            let select = {
                                let (view, id) = (view.clone(), id.clone());
                                Callback::from(move |_: MouseEvent| view.select(&id))
                            };
                            html! { <button class="link" onclick={select}>{ id.clone() }</button> }
                        });
                        html! {
                            <li class="suggestion">
                                <input class="suggestion-name" aria-label="name of the group" value={name.clone()} oninput={on_name} />
                                <button class="accept" disabled={name.trim().is_empty()} onclick={accept}>{ "Accept" }</button>
                                <button class="reject" onclick={reject}>{ "Reject" }</button>
                                <span class="muted">{ format!(" {} features (edges alike ≥ {:.2}, decoders ≥ {:.2}): ", s.members.len(), s.edge_similarity, s.decoder_similarity) }</span>
                                { for members }
                            </li>
                        }
                    }) }
                </ol>
            }
        });
    html! {
        <section class="suggested-groups" id="suggested-groups">
            <h3>{ "Suggested groups" }</h3>
            <p class="muted">{ "Features on one token that send their influence to the same nodes (edge profiles alike) and write the same direction (decoder vectors alike). On the default pack two members of a suggested group share their part-of-speech tag 88% of the time, against 35% for two features on the same token. Accept one to make it a supernode (its name yours to change), or reject it." }</p>
            { body }
        </section>
    }
}
