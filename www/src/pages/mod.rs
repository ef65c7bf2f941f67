//! The app's views, one module each.

pub(crate) mod circuit;
pub(crate) mod feature;
pub(crate) mod gpu;
pub(crate) mod home;
pub(crate) mod not_found;
pub(crate) mod prompt;
pub(crate) mod search;
pub(crate) mod steer;
