//! Parts shared by the pages.

pub(crate) mod circuit_graph;
pub(crate) mod continuations;
pub(crate) mod copy_link;
pub(crate) mod draft_bar;
pub(crate) mod gpu_check;
pub(crate) mod lesson_panel;
pub(crate) mod open_model;
pub(crate) mod pack_picker;
pub(crate) mod plots;
pub(crate) mod status;
pub(crate) mod steer_picker;
pub(crate) mod text_field;
pub(crate) mod theme;
