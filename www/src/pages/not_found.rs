//! The page for links the app does not know: says so, and offers a way on.

use yew::prelude::*;
use yew_router::prelude::*;

use crate::route::Route;

/// Shown for any unknown `#/...` link.
#[component]
pub(crate) fn NotFound() -> Html {
    let location = use_location()
        .map(|l| l.path().to_owned())
        .unwrap_or_default();
    html! {
        <section class="panel">
            <h2>{ "No such view" }</h2>
            <p>
                { "This link points to " }<code>{ location }</code>
                { ", which is not a view Glassbox knows. It may come from a newer version, or may have been cut short when it was copied." }
            </p>
            <p><Link<Route> to={Route::Home}>{ "Go to the start page" }</Link<Route>></p>
        </section>
    }
}
