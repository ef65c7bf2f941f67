//! The app shell: header, router and pages.

use yew::prelude::*;
use yew_router::prelude::*;

use crate::pages::{home::Home, not_found::NotFound};
use crate::route::Route;

/// The root component.
#[component]
pub(crate) fn App() -> Html {
    html! {
        <HashRouter>
            <header class="site">
                <h1><Link<Route> to={Route::Home}>{ "Glassbox" }</Link<Route>></h1>
                <p>{ "Look inside a language model, in your browser, on your own GPU." }</p>
            </header>
            <main>
                <Switch<Route> render={switch} />
            </main>
        </HashRouter>
    }
}

#[allow(
    clippy::needless_pass_by_value,
    reason = "yew-router's Switch hands each route over by value"
)]
fn switch(route: Route) -> Html {
    match route {
        Route::Home => html! { <Home /> },
        Route::NotFound => html! { <NotFound /> },
    }
}
