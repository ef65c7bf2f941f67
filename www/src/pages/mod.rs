//! The app's views, one module each.

pub(crate) mod attention;
pub(crate) mod circuit;
pub(crate) mod feature;
pub(crate) mod gpu;
pub(crate) mod home;
pub(crate) mod lens;
pub(crate) mod not_found;
pub(crate) mod prompt;
pub(crate) mod qk;
pub(crate) mod quiz;
pub(crate) mod search;
pub(crate) mod steer;
pub(crate) mod write;
