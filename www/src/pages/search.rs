//! Feature search: by label, by tag (`NNS`), by token (`" of"`), or by text (what fires
//! on this sentence).

use glassbox_lab::SearchQuery;
use glassbox_web::engine::protocol::Search;
use yew::prelude::*;
use yew_router::prelude::*;

use crate::components::copy_link::CopyLink;
use crate::components::status::ReadyGate;
use crate::components::text_field::TextField;
use crate::route::{Route, SearchQueryParams};
use crate::state::{AnswerView, Engine, LinkErrors, use_query, use_request};

/// The search view.
#[component]
pub(crate) fn SearchPage() -> Html {
    let navigator = use_navigator();
    let engine = use_context::<Engine>();
    let (SearchQueryParams { q }, link_errors) = use_query::<SearchQueryParams>();
    let tags = engine
        .as_ref()
        .and_then(|e| e.info().map(|i| i.tags.clone()))
        .unwrap_or_default();
    let query = (!q.trim().is_empty()).then(|| SearchQuery::parse(&q, &tags));
    let answer = use_request(query.clone().map(|query| Search { query }));
    let on_commit = Callback::from(move |value: String| {
        if let Some(navigator) = &navigator {
            let _ = navigator.replace_with_query(&Route::Search, &SearchQueryParams { q: value });
        }
    });
    let described = match &query {
        Some(SearchQuery::Label(words)) => format!("features whose label has {words:?}"),
        Some(SearchQuery::Tag(tag)) => format!("features whose best tag is {tag}"),
        Some(SearchQuery::Token(token)) => format!("features that commonly fire on {token:?}"),
        Some(SearchQuery::Text(text)) => format!("features that fire on {text:?}"),
        None => String::new(),
    };
    html! {
        <ReadyGate>
            <section class="panel">
                <h2>{ "Search features" }</h2>
                <TextField id="search" kind="search" value={q.clone()} {on_commit}
                    placeholder={"plural noun · NNS · \" of\" · text: the jury said"} label="search features" />
                <p class="muted">{ "A label's words; a Brown tag such as NNS (or tag:NNS); a token in quotes (\" of\", or token:of); or text:… for what fires on a sentence." }</p>
                <p><CopyLink /></p>
                <LinkErrors errors={link_errors} />
            </section>
            { AnswerView::new("Searching…").error_id("search-error").show(&answer, |hits| html! {
                <section class="panel">
                    <h2>{ format!("{} {described}", hits.len()) }</h2>
                    <ol class="hits" id="hits">
                        { for hits.iter().map(|h| html! {
                            <li>
                                <Link<Route> to={Route::Feature { layer: h.layer, index: h.feature }}>
                                    { format!("{}/{}", h.layer, h.feature) }
                                </Link<Route>>
                                { " " }<span class="label">{ h.label.clone() }</span>
                                <span class="muted">{
                                    if h.activation > 0.0 { format!(" · activation {:.2}", h.activation) }
                                    else { format!(" · fires on {:.2}% of tokens", 100.0 * h.frequency) }
                                }</span>
                            </li>
                        }) }
                    </ol>
                </section>
            }) }
        </ReadyGate>
    }
}
