//! The parts of the playground shared by the page and its engine worker.

pub mod chrome;
pub mod engine;
pub mod lesson_link;
pub mod lessons;
pub mod links;
pub mod pack_link;
pub mod packs_index;
pub mod preview;
pub mod query;
pub mod views;
