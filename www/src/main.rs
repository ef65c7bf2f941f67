//! The Glassbox playground: a yew app, built by trunk, that runs the engines in the
//! visitor's browser.

mod app;
mod components;
mod draft;
mod fatal;
mod offline;
mod pages;
mod route;
mod state;

fn main() {
    fatal::install_panic_hook();
    offline::keep_the_shell();
    yew::Renderer::<app::App>::new().render();
}
