//! The circuit view: a prompt's attribution graph, pruned by two thresholds that move
//! live, with nodes to select, pin (pins live in the link) and open, the graph's JSON to
//! export, and a graph file (ours or circuit-tracer's) to import and view.

use std::rc::Rc;

use glassbox_lab::GraphFile;
use glassbox_web::engine::protocol::{Request, Response};
use wasm_bindgen_futures::JsFuture;
use web_sys::HtmlInputElement;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::components::circuit_graph::CircuitGraph;
use crate::components::copy_link::CopyLink;
use crate::components::status::ReadyGate;
use crate::route::{CircuitQuery, Route};
use crate::state::{Answer, use_request};

/// The circuit view.
#[component]
pub(crate) fn CircuitPage() -> Html {
    let location = use_location();
    let navigator = use_navigator();
    let query = location
        .as_ref()
        .and_then(|l| l.query::<CircuitQuery>().ok())
        .unwrap_or_default();
    let imported = use_state(|| None::<(String, Rc<GraphFile>)>);
    let import_error = use_state(|| None::<String>);
    let selected = use_state(|| None::<String>);
    let request = (!query.text.trim().is_empty() && imported.is_none()).then(|| Request::Circuit {
        text: query.text.clone(),
        nodes: query.nodes,
        edges: query.edges,
    });
    let answer = use_request(request);
    let go = {
        let navigator = navigator.clone();
        Callback::from(move |q: CircuitQuery| {
            if let Some(navigator) = &navigator {
                let _ = navigator.replace_with_query(&Route::Circuit, &q);
            }
        })
    };
    let on_text = {
        let (go, query) = (go.clone(), query.clone());
        Callback::from(move |event: Event| {
            let text = event.target_unchecked_into::<HtmlInputElement>().value();
            go.emit(CircuitQuery {
                text,
                pin: String::new(),
                ..query.clone()
            });
        })
    };
    let slider = |name: &'static str, value: f32, set: fn(&mut CircuitQuery, f32)| {
        let (go, query) = (go.clone(), query.clone());
        let onchange = Callback::from(move |event: Event| {
            if let Ok(v) = event
                .target_unchecked_into::<HtmlInputElement>()
                .value()
                .parse::<f32>()
            {
                let mut q = query.clone();
                set(&mut q, v.clamp(0.0, 1.0));
                go.emit(q);
            }
        });
        html! {
            <label class="slider">{ format!("{name} {value:.2}") }
                <input type="range" min="0.05" max="1" step="0.01" value={value.to_string()} {onchange} id={format!("{name}-threshold")} />
            </label>
        }
    };
    let pinned: Vec<String> = query
        .pin
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    // The answer's graph, copied out once per answer (not on every render).
    let computed = use_memo(answer.clone(), |answer| match answer {
        Answer::Done(response) => match response.as_ref() {
            Response::Circuit(g) => Some(Rc::new((**g).clone())),
            _ => None,
        },
        _ => None,
    });
    let graph: Option<Rc<GraphFile>> = match &*imported {
        Some((_, g)) => Some(Rc::clone(g)),
        None => (*computed).clone(),
    };
    let on_select = {
        let selected = selected.clone();
        Callback::from(move |id: String| selected.set(Some(id)))
    };
    let on_import = {
        let (imported, import_error) = (imported.clone(), import_error.clone());
        Callback::from(move |event: Event| {
            let input = event.target_unchecked_into::<HtmlInputElement>();
            let Some(file) = input.files().and_then(|files| files.get(0)) else {
                return;
            };
            let (imported, import_error) = (imported.clone(), import_error.clone());
            wasm_bindgen_futures::spawn_local(async move {
                let name = file.name();
                let text = JsFuture::from(file.text())
                    .await
                    .ok()
                    .and_then(|t| t.as_string());
                match text.map(|t| GraphFile::parse(&t)) {
                    Some(Ok(g)) => {
                        import_error.set(None);
                        imported.set(Some((name, Rc::new(g))));
                    }
                    Some(Err(e)) => import_error.set(Some(format!("{name}: {e}"))),
                    None => import_error.set(Some(format!("{name} could not be read"))),
                }
            });
        })
    };
    let details = graph.as_ref().zip(selected.as_ref()).and_then(|(g, id)| {
        let node = g.nodes.iter().find(|n| &n.node_id == id)?;
        Some(details(g, node, &pinned, &query, &go))
    });
    html! {
        <ReadyGate>
            <section class="panel">
                <h2>{ "Circuit" }</h2>
                <p class="muted">{ "The attribution graph of a prompt: each active transcoder feature, each transcoder's error, the embeddings and the likeliest next tokens, joined by their direct effects in the model with attention and LayerNorm frozen (Ameisen et al., 2025). Pruned to the nodes and edges that carry most of the influence on the logits." }</p>
                <input id="circuit-prompt" type="text" value={query.text.clone()} onchange={on_text} aria-label="prompt" placeholder="The jury said that the city of" />
                <div class="controls">
                    { slider("nodes", query.nodes, |q, v| q.nodes = v) }
                    { slider("edges", query.edges, |q, v| q.edges = v) }
                    <CopyLink />
                    { for graph.as_ref().map(|g| html! { <ExportLink graph={Rc::clone(g)} /> }) }
                    <label class="import">{ "Import a graph file " }
                        <input type="file" accept=".json,application/json" id="circuit-import" onchange={on_import} />
                    </label>
                </div>
                if let Some((name, _)) = &*imported {
                    <p class="muted" id="imported-from">{ format!("Showing {name} (imported; its view is not in the link — share the file).") }</p>
                }
                if let Some(error) = &*import_error {
                    <p class="status-bad" role="alert" id="import-error">{ error.clone() }</p>
                }
            </section>
            { match (&graph, &answer) {
                (Some(g), _) => html! {
                    <section class="panel">
                        <h2 id="circuit-summary">{ format!("{} nodes, {} edges", g.nodes.len(), g.links.len()) }</h2>
                        <CircuitGraph graph={Rc::clone(g)} pinned={pinned.clone()} selected={(*selected).clone()} {on_select} />
                        { for details }
                    </section>
                },
                (None, Answer::Done(response)) => match response.as_ref() {
                    Response::Error(error) => html! { <p class="status-bad" role="alert" id="circuit-error">{ error.clone() }</p> },
                    _ => html! {},
                },
                (None, Answer::Working) => html! { <p class="muted">{ "Computing the graph…" }</p> },
                (None, Answer::Waiting) => html! { <p class="muted">{ "Type a prompt to see its graph." }</p> },
            } }
        </ReadyGate>
    }
}

/// Properties of [`ExportLink`].
#[derive(Properties, PartialEq)]
struct ExportLinkProps {
    graph: Rc<GraphFile>,
}

/// A link that downloads the graph as JSON, serialized once per graph.
#[component]
fn ExportLink(props: &ExportLinkProps) -> Html {
    let link = use_memo(Rc::clone(&props.graph), |graph| {
        let json = graph.to_json().ok()?;
        let href = format!(
            "data:application/json;charset=utf-8,{}",
            js_sys::encode_uri_component(&json)
        );
        let slug = &graph.metadata.slug;
        let name = format!("{}.json", if slug.is_empty() { "graph" } else { slug });
        Some((href, name))
    });
    match &*link {
        Some((href, name)) => html! {
            <a class="button" id="circuit-export" href={href.clone()} download={name.clone()}>{ "Export JSON" }</a>
        },
        None => html! {},
    }
}

/// What the selected node is, its strongest edges, and what can be done with it.
fn details(
    graph: &GraphFile,
    node: &glassbox_lab::FileNode,
    pinned: &[String],
    query: &CircuitQuery,
    go: &Callback<CircuitQuery>,
) -> Html {
    let label_of = |id: &str| {
        graph
            .nodes
            .iter()
            .find(|n| n.node_id == id)
            .map_or_else(|| id.to_owned(), |n| format!("{} {}", n.node_id, n.clerp))
    };
    let mut incoming: Vec<_> = graph
        .links
        .iter()
        .filter(|l| l.target == node.node_id)
        .collect();
    let mut outgoing: Vec<_> = graph
        .links
        .iter()
        .filter(|l| l.source == node.node_id)
        .collect();
    incoming.sort_by(|a, b| b.weight.abs().total_cmp(&a.weight.abs()));
    outgoing.sort_by(|a, b| b.weight.abs().total_cmp(&a.weight.abs()));
    let is_pinned = pinned.contains(&node.node_id);
    let toggle = {
        let (go, query, id) = (go.clone(), query.clone(), node.node_id.clone());
        let pinned: Vec<String> = pinned.to_vec();
        Callback::from(move |_: MouseEvent| {
            let mut pins = pinned.clone();
            if let Some(i) = pins.iter().position(|p| *p == id) {
                pins.remove(i);
            } else {
                pins.push(id.clone());
            }
            go.emit(CircuitQuery {
                pin: pins.join(","),
                ..query.clone()
            });
        })
    };
    let feature = feature_at(node).map(|(layer, index)| {
        html! { <Link<Route> to={Route::Feature { layer, index }}>{ "Open the feature" }</Link<Route>> }
    });
    let edge_list = |links: &[&glassbox_lab::Link], other: fn(&glassbox_lab::Link) -> &str| {
        html! {
            <ol class="edges">
                { for links.iter().take(8).map(|l| html! {
                    <li><span class={if l.weight >= 0.0 { "status-good" } else { "status-bad" }}>{ format!("{:+.3}", l.weight) }</span>{ " " }{ label_of(other(l)) }</li>
                }) }
            </ol>
        }
    };
    let ablation = feature_at(node).map(|(layer, feature)| {
        html! { <Ablation key={node.node_id.clone()} text={query.text.clone()} {layer} position={node.ctx_idx} {feature} /> }
    });
    html! {
        <aside class="node-details" id="node-details">
            <h3>{ format!("{} — {}", node.node_id, node.feature_type) }</h3>
            <p>{ node.clerp.clone() }</p>
            <p class="muted">{ format!("position {} · activation {:.3} · cumulative influence {:.3}", node.ctx_idx, node.activation.unwrap_or(0.0), node.influence.unwrap_or(0.0)) }</p>
            <p>
                <button id="pin-node" onclick={toggle}>{ if is_pinned { "Unpin" } else { "Pin" } }</button>
                { " " }{ for feature }
            </p>
            { for ablation }
            <h4>{ "Strongest inputs" }</h4>
            { edge_list(&incoming, |l| l.source.as_str()) }
            <h4>{ "Strongest outputs" }</h4>
            { edge_list(&outgoing, |l| l.target.as_str()) }
        </aside>
    }
}

/// A feature node's block and feature, from its id `{layer}_{feature}_{position}`.
fn feature_at(node: &glassbox_lab::FileNode) -> Option<(usize, usize)> {
    if node.feature_type != "cross layer transcoder" {
        return None;
    }
    let mut parts = node.node_id.split('_');
    let layer = parts.next()?.parse().ok()?;
    let feature = parts.next()?.parse().ok()?;
    Some((layer, feature))
}

/// Properties of [`Ablation`].
#[derive(Properties, PartialEq)]
struct AblationProps {
    text: String,
    layer: usize,
    position: usize,
    feature: usize,
}

/// "Ablate": the graph's predicted logit changes next to the real model's.
#[component]
fn Ablation(props: &AblationProps) -> Html {
    let asked = use_state(|| false);
    let request = (*asked).then(|| Request::Ablate {
        text: props.text.clone(),
        layer: props.layer,
        position: props.position,
        feature: props.feature,
    });
    let answer = use_request(request);
    let onclick = {
        let asked = asked.clone();
        Callback::from(move |_: MouseEvent| asked.set(true))
    };
    let result = match &answer {
        Answer::Done(response) => match response.as_ref() {
            Response::Ablation(changes) => html! {
                <table class="ablation" id="ablation">
                    <thead><tr><th>{ "logit" }</th><th>{ "predicted (direct effect)" }</th><th>{ "actual (model)" }</th></tr></thead>
                    <tbody>
                        { for changes.iter().map(|c| html! {
                            <tr><td><code>{ format!("{:?}", c.text) }</code></td><td>{ format!("{:+.3}", c.predicted) }</td><td>{ format!("{:+.3}", c.actual) }</td></tr>
                        }) }
                    </tbody>
                </table>
            },
            Response::Error(error) => {
                html! { <p class="status-bad" role="alert">{ error.clone() }</p> }
            }
            _ => html! {},
        },
        Answer::Working => html! { <p class="muted">{ "Ablating…" }</p> },
        Answer::Waiting => html! {},
    };
    html! {
        <div>
            <p>
                <button id="ablate-node" {onclick}>{ "Ablate here" }</button>
                <span class="muted">{ " sets this feature to 0 at this position: the graph's prediction (its direct effect on each logit, everything else frozen) next to the model's own change (attention and later features free)." }</span>
            </p>
            { result }
        </div>
    }
}
