//! One module per route.

pub(crate) mod home;
pub(crate) mod not_found;
