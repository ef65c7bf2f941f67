//! The circuit view: a prompt's attribution graph, pruned by two thresholds that move
//! live, with nodes to hover (label and top examples), select, pin, group into labelled
//! supernodes and intervene on; pins, supernodes, the selection and the thresholds live in
//! the link. The graph's JSON (with that view in its `qParams`) exports, and a graph file
//! (ours or circuit-tracer's) imports, with its pins and supernodes. A search box finds
//! nodes in it (the link's `find`) and groups them. Graph steering (`steer=`, `n=`) sets
//! nodes and continues the prompt next to the unsteered text. A second prompt (`vs=`) gets
//! its graph compared with this one's. Groups of alike features are suggested as
//! supernodes.

mod compare;
mod details;
mod edge_heads;
mod find;
mod graph_steer;
mod hover;
mod intervention;
mod suggestions;
mod supernodes;
mod work;

use std::rc::Rc;

use glassbox_lab::{DOCUMENT_START, GraphFile, MAX_GRAPH_FILE_BYTES, NodeEdit, Supernode};
use glassbox_web::engine::client::EngineClient;
use glassbox_web::engine::protocol::{Ask, Circuit, ImportGraph, Response};
use glassbox_web::links::{
    format_node_edits, format_supernodes, parse_node_edits, parse_supernodes,
};
use web_sys::HtmlInputElement;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::components::circuit_graph::CircuitGraph;
use crate::components::copy_link::CopyLink;
use crate::components::status::ReadyGate;
use crate::components::text_field::TextField;
use crate::route::{AttentionQuery, CircuitQuery, LensQuery, MAX_PINS, Route};
use crate::state::{Answer, AnswerView, Engine, LinkErrors, Shared, use_query, use_request};
use compare::Comparison;
use details::NodeDetails;
use find::GraphFinder;
use graph_steer::GraphSteering;
use hover::HoverCard;
use suggestions::SuggestedGroups;
use supernodes::SupernodePanel;
use work::GraphWorkNote;

/// The view's state as the panels change it.
#[derive(Clone, PartialEq)]
pub(crate) struct View {
    /// The link's state.
    pub(crate) query: CircuitQuery,
    /// Pinned node ids.
    pub(crate) pins: Vec<String>,
    /// The supernodes.
    pub(crate) groups: Rc<Vec<Supernode>>,
    /// Changes the link.
    pub(crate) go: Callback<CircuitQuery>,
}

impl View {
    /// The link with `pins` pinned.
    pub(crate) fn set_pins(&self, pins: &[String]) {
        self.go.emit(CircuitQuery {
            pin: pins.join(","),
            ..self.query.clone()
        });
    }

    /// The link with `groups` as its supernodes.
    pub(crate) fn set_groups(&self, groups: &[Supernode]) {
        self.go.emit(CircuitQuery {
            groups: format_supernodes(groups),
            ..self.query.clone()
        });
    }

    /// The link with `edits` as the graph steering's nodes.
    pub(crate) fn set_steering(&self, edits: &[NodeEdit]) {
        self.go.emit(CircuitQuery {
            steer: format_node_edits(edits),
            ..self.query.clone()
        });
    }

    /// The link with `edit` added to the graph steering's nodes, in place of any edit of
    /// the same node.
    pub(crate) fn add_steering(&self, edit: NodeEdit) {
        let mut edits = parse_node_edits(&self.query.steer).unwrap_or_default();
        edits.retain(|e| e.node() != edit.node());
        edits.push(edit);
        self.set_steering(&edits);
    }

    /// The link with node `id` selected.
    pub(crate) fn select(&self, id: &str) {
        self.go.emit(CircuitQuery {
            at: id.to_owned(),
            heads: String::new(),
            head: String::new(),
            ..self.query.clone()
        });
    }

    /// The link with the edge from `source` into the selected node split by heads, the
    /// QK attribution of `head` (`block.head`; the top carrier when empty).
    pub(crate) fn split_edge(&self, source: &str, head: &str) {
        self.go.emit(CircuitQuery {
            heads: source.to_owned(),
            head: head.to_owned(),
            ..self.query.clone()
        });
    }
}

/// A box that begins the prompt with `<|endoftext|>` or takes it away: circuit-tracer
/// begins every prompt with its BOS (for GPT-2, this token) and leaves that position's
/// features and errors out of the graph, which the lab does for such a prompt too.
fn bos_toggle(query: &CircuitQuery, go: &Callback<CircuitQuery>) -> Html {
    let begins = query.text.starts_with(DOCUMENT_START);
    let onchange = {
        let (query, go) = (query.clone(), go.clone());
        Callback::from(move |_: Event| {
            let text = match query.text.strip_prefix(DOCUMENT_START) {
                Some(rest) => rest.to_owned(),
                None => format!("{DOCUMENT_START}{}", query.text),
            };
            go.emit(CircuitQuery {
                text,
                ..query.clone()
            });
        })
    };
    html! {
        <label class="muted">
            <input type="checkbox" id="circuit-bos" checked={begins} {onchange} />
            { format!(" begin with {DOCUMENT_START}, as circuit-tracer begins every prompt (that position's features and errors are then left out of the graph)") }
        </label>
    }
}

/// The circuit view.
#[component]
pub(crate) fn CircuitPage() -> Html {
    let navigator = use_navigator();
    let (query, link_errors) = use_query::<CircuitQuery>();
    let imported = use_state(|| None::<(String, Shared<GraphFile>)>);
    let import_error = use_state(|| None::<String>);
    let hovered = use_state(|| None::<String>);
    let request = (!query.text.trim().is_empty() && imported.is_none()).then(|| Circuit {
        text: query.text.clone(),
        contrast: query.contrast(),
        nodes: query.nodes,
        edges: query.edges,
    });
    let answer = use_request(request);
    // The callbacks the graph gets stay the same from render to render (hovering
    // re-renders the page; the graph, with its thousands of edges, need not).
    let go = use_callback(navigator.clone(), |q: CircuitQuery, navigator| {
        if let Some(navigator) = navigator {
            let _ = navigator.replace_with_query(&Route::Circuit, &q);
        }
    });
    let (groups, groups_error) = match parse_supernodes(&query.groups) {
        Ok(groups) => (groups, None),
        Err(error) => (Vec::new(), Some(error)),
    };
    let groups = use_memo(groups, Clone::clone);
    let (pins, too_many_pins) = query.pins();
    let view = View {
        pins,
        groups: Rc::clone(&groups),
        query: query.clone(),
        go: go.clone(),
    };
    let on_text = {
        let (go, query, imported) = (go.clone(), query.clone(), imported.clone());
        Callback::from(move |text: String| {
            imported.set(None);
            go.emit(CircuitQuery {
                text,
                pin: String::new(),
                groups: String::new(),
                at: String::new(),
                steer: String::new(),
                ..query.clone()
            });
        })
    };
    let on_versus = {
        let (go, query, imported) = (go.clone(), query.clone(), imported.clone());
        Callback::from(move |versus: String| {
            imported.set(None);
            go.emit(CircuitQuery {
                versus,
                at: String::new(),
                ..query.clone()
            });
        })
    };
    let on_vs = {
        let (go, query) = (go.clone(), query.clone());
        Callback::from(move |vs: String| {
            go.emit(CircuitQuery {
                vs,
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
    // The answer's graph, copied out once per answer (not on every render).
    let computed = use_memo(answer.clone(), |answer| match answer {
        Answer::Done(graph) => Some(Shared::new((***graph).clone())),
        _ => None,
    });
    let graph: Option<Shared<GraphFile>> = match &*imported {
        Some((_, g)) => Some(g.clone()),
        None => (*computed).clone(),
    };
    let on_select = use_callback(view.clone(), |id: String, view| view.select(&id));
    // Double-clicking a feature opens its feature view.
    let on_open = use_callback(
        (navigator.clone(), graph.clone()),
        |id: String, (navigator, graph)| {
            let feature = graph
                .as_ref()
                .and_then(|g| g.nodes.iter().find(|n| n.node_id == id))
                .and_then(details::feature_at);
            if let (Some(navigator), Some((layer, index))) = (navigator, feature) {
                navigator.push(&Route::Feature { layer, index });
            }
        },
    );
    let on_hover = use_callback(hovered.setter(), |id: Option<String>, set| set.set(id));
    let client = use_context::<Engine>().map(|engine| Rc::clone(&engine.client));
    let on_import = import_callback(&imported, &import_error, &go, &query, client);
    let selected = (!query.at.is_empty()).then(|| query.at.clone());
    let found = use_memo((graph.clone(), query.find.clone()), |(graph, find)| {
        graph.as_ref().map(|g| g.find(find)).unwrap_or_default()
    });
    let details = graph.as_ref().zip(selected.as_ref()).and_then(|(g, id)| {
        g.nodes.iter().any(|n| &n.node_id == id).then(|| {
            html! {
                <NodeDetails graph={g.clone()} id={id.clone()} view={view.clone()} live={imported.is_none()} />
            }
        })
    });
    let hover_card = hovered.as_ref().and_then(|id| {
        let node = graph.as_ref()?.nodes.iter().find(|n| &n.node_id == id)?;
        let (layer, feature) = details::feature_at(node)?;
        Some(html! { <HoverCard {layer} {feature} id={id.clone()} /> })
    });
    let other_views = (!query.text.trim().is_empty()).then(|| {
        let text = query.text.clone();
        html! {
            <span class="muted">
                { "Same prompt: " }
                <Link<Route, AttentionQuery> to={Route::Attention} query={Some(AttentionQuery { text: text.clone(), ..AttentionQuery::default() })}>{ "attention" }</Link<Route, AttentionQuery>>
                { " · " }
                <Link<Route, LensQuery> to={Route::Lens} query={Some(LensQuery { text })}>{ "logit lens" }</Link<Route, LensQuery>>
            </span>
        }
    });
    html! {
        <ReadyGate>
            <section class="panel">
                <h2>{ "Circuit" }</h2>
                <p class="muted">{ "The attribution graph of a prompt: the active transcoder features (the most influential, when there are many), each transcoder's error, the embeddings and the likeliest next tokens, joined by their direct effects in the model with attention patterns and norm scales frozen (Ameisen et al., 2025). Pruned to the nodes and edges that carry most of the influence on the logits. Hover a feature for its label and top examples; click a node to pin it, group it into a supernode, or intervene on it; double-click a feature to open it." }</p>
                <TextField id="circuit-prompt" value={query.text.clone()} on_commit={on_text} label="prompt" placeholder="The jury said that the city of" />
                { bos_toggle(&query, &go) }
                <p class="muted versus">
                    { "Why the likeliest next token rather than another? Name one token (mind its leading space) and the graph attributes the difference of their logits instead: " }
                    <TextField id="circuit-versus" value={query.versus.clone()} on_commit={on_versus} label="rather than (one token)" placeholder=" was" />
                </p>
                <p class="muted versus">
                    { "Compare with a second prompt (its graph beside this one, what appears, vanishes or flips sign): " }
                    <TextField id="circuit-vs" value={query.vs.clone()} on_commit={on_vs} label="second prompt" placeholder="The woman said that she" />
                </p>
                <div class="controls">
                    { slider("nodes", query.nodes, |q, v| q.nodes = v) }
                    { slider("edges", query.edges, |q, v| q.edges = v) }
                    <CopyLink />
                    { for graph.as_ref().map(|g| html! { <ExportLink graph={g.clone()} view={view.clone()} /> }) }
                    <label class="import">{ "Import a graph file " }
                        <input type="file" accept=".json,application/json" id="circuit-import" onchange={on_import} />
                    </label>
                    { for other_views }
                </div>
                if let Some((name, _)) = &*imported {
                    <p class="muted" id="imported-from">{ format!("Showing {name} (imported; share the file, its pins and supernodes go with it).") }</p>
                }
                if let Some(error) = &*import_error {
                    <p class="status-bad" role="alert" id="import-error">{ error.clone() }</p>
                }
                <LinkErrors errors={link_errors} />
                if too_many_pins {
                    <p class="status-bad" role="alert" id="pins-error">{ format!("The link pins more than {MAX_PINS} nodes; the first {MAX_PINS} are pinned.") }</p>
                }
                if let Some(error) = groups_error {
                    <p class="status-bad" role="alert" id="groups-error">{ format!("The link's supernodes are ignored: {error}") }</p>
                }
            </section>
            { match (&graph, &answer) {
                (Some(g), _) => html! {
                    <section class="panel">
                        <h2 id="circuit-summary">{ format!("{} nodes, {} edges", g.nodes.len(), g.links.len()) }</h2>
                        { attributed_note(g) }
                        { scores_note(g) }
                        if imported.is_none() {
                            <GraphWorkNote text={query.text.clone()} contrast={query.contrast()} />
                        }
                        <GraphFinder graph={g.clone()} found={Rc::clone(&found)} view={view.clone()} />
                        // The card's slot is always there: a card coming and going must not
                        // move the graph (which would fire its nodes' pointer events again).
                        <div class="circuit-stage">
                            <CircuitGraph graph={g.clone()} pinned={view.pins.clone()} groups={Rc::clone(&groups)} selected={selected.clone()} found={Rc::clone(&found)} {on_select} {on_open} {on_hover} />
                            <div class="hover-slot">{ for hover_card }</div>
                        </div>
                        <div class="details-slot">{ for details }</div>
                        <SupernodePanel graph={g.clone()} view={view.clone()} />
                        if imported.is_none() {
                            <SuggestedGroups view={view.clone()} />
                            <GraphSteering view={view.clone()} />
                        }
                        <Comparison graph={g.clone()} view={view.clone()} />
                    </section>
                },
                (None, Answer::Waiting) => html! { <p class="muted">{ "Type a prompt to see its graph." }</p> },
                (None, answer) => AnswerView::new("Computing the graph…").error_id("circuit-error").show(answer, |_| html! {}),
            } }
        </ReadyGate>
    }
}

/// How many of the active features the graph holds, when it is fewer than all.
fn attributed_note(graph: &GraphFile) -> Html {
    let Some(active) = graph.metadata.active_features else {
        return html! { <p class="muted" id="attributed-note">{ "An imported graph." }</p> };
    };
    let cap = glassbox_lab::MAX_CIRCUIT_FEATURES;
    let text = if active > cap {
        format!(
            "{active} transcoder features are active on this prompt; the graph is built from the {cap} most influential (chosen as circuit-tracer does), then pruned."
        )
    } else {
        format!(
            "{active} transcoder features are active on this prompt; the graph is built from all of them, then pruned."
        )
    };
    html! { <p class="muted" id="attributed-note">{ text }</p> }
}

/// The graph's replacement and completeness scores, whole and pruned, where the file has
/// them.
fn scores_note(graph: &GraphFile) -> Html {
    let Some(scores) = graph.metadata.scores else {
        return html! {};
    };
    let (whole, pruned) = (scores.graph, scores.pruned);
    html! {
        <p class="muted" id="graph-scores" title="As circuit-tracer defines them. Replacement: the share of the input's influence on the logits that reaches them through features rather than through the transcoders' errors. Completeness: the share of every node's input, weighted by its influence on the logits, that comes from features and embeddings rather than errors. 1 would be a graph its features explain entirely. Here the position embeddings count as inputs beside the tokens (circuit-tracer's models have no such nodes).">
            { format!(
                "Replacement score {:.2}, completeness {:.2}; of the pruned graph shown, {:.2} and {:.2}.",
                whole.replacement, whole.completeness, pruned.replacement, pruned.completeness
            ) }
        </p>
    }
}

/// Reads a chosen graph file: shown if it parses and fits the model loaded (`model`: its
/// blocks and context), its pins, supernodes and clicked node becoming the view's; refused
/// with the reason if not, a file too large before it is read.
fn import_callback(
    imported: &UseStateHandle<Option<(String, Shared<GraphFile>)>>,
    import_error: &UseStateHandle<Option<String>>,
    go: &Callback<CircuitQuery>,
    query: &CircuitQuery,
    client: Option<Rc<EngineClient>>,
) -> Callback<Event> {
    let (imported, import_error, go, query) = (
        imported.clone(),
        import_error.clone(),
        go.clone(),
        query.clone(),
    );
    Callback::from(move |event: Event| {
        let input = event.target_unchecked_into::<HtmlInputElement>();
        let Some(file) = input.files().and_then(|files| files.get(0)) else {
            return;
        };
        // The same file can be picked again.
        input.set_value("");
        let name = file.name();
        if file.size() > MAX_GRAPH_FILE_BYTES as f64 {
            import_error.set(Some(format!(
                "{name}: the file is {:.0} MB; graph files of at most {} MB are read",
                file.size() / 1e6,
                MAX_GRAPH_FILE_BYTES / 1_000_000
            )));
            return;
        }
        let (Some(client), Ok(url)) = (
            client.as_ref(),
            web_sys::Url::create_object_url_with_blob(&file),
        ) else {
            import_error.set(Some(format!("{name} could not be read")));
            return;
        };
        let (imported, import_error, go, query) = (
            imported.clone(),
            import_error.clone(),
            go.clone(),
            query.clone(),
        );
        // Read and checked by the engine worker: a large file never stalls the page.
        let request = ImportGraph {
            name: name.clone(),
            url: url.clone(),
        };
        client.request(
            request.into_request(),
            Callback::from(move |response: Response| {
                let _ = web_sys::Url::revoke_object_url(&url);
                match ImportGraph::answer(response.clone()) {
                    Some(g) => {
                        import_error.set(None);
                        go.emit(CircuitQuery {
                            text: String::new(),
                            pin: g.q_params.pinned_ids.join(","),
                            groups: format_supernodes(&g.supernodes()),
                            at: g.q_params.clicked_id.clone(),
                            ..query.clone()
                        });
                        imported.set(Some((name.clone(), Shared::new(*g))));
                    }
                    None => import_error.set(Some(match response {
                        Response::Error(error) => error,
                        other => format!("{name}: unexpected answer {other:?}"),
                    })),
                }
            }),
        );
    })
}

/// Properties of [`ExportLink`].
#[derive(Properties, PartialEq)]
struct ExportLinkProps {
    graph: Shared<GraphFile>,
    view: View,
}

/// A link that downloads the graph as JSON with the view in its `qParams`, serialized
/// once per graph and view.
#[component]
fn ExportLink(props: &ExportLinkProps) -> Html {
    let view = &props.view;
    let key = (
        props.graph.clone(),
        view.pins.clone(),
        Rc::clone(&view.groups),
        view.query.at.clone(),
    );
    let link = use_memo(key, |(graph, pins, groups, at)| {
        let json = graph.with_view(pins, groups, at).to_json().ok()?;
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
