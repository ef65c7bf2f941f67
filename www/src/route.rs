//! Every view of the app, as a URL fragment (`#/...`), so any view can be linked to.

use yew_router::Routable;

/// The app's routes. A `HashRouter` keeps them after `#`, so the page works from any
/// static host.
#[derive(Debug, Clone, PartialEq, Eq, Routable)]
pub(crate) enum Route {
    /// The start page: which engine runs here, and a check of the GPU kernels.
    #[at("/")]
    Home,
    /// Any link the app does not know.
    #[not_found]
    #[at("/404")]
    NotFound,
}
