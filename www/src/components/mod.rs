//! Reusable pieces of the interface.

pub(crate) mod gpu_check;
