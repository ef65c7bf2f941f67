//! The engine as the page uses it: a web worker running the loaded pack (or a model the
//! person opened, [`open`]) on the GPU or CPU engine ([`worker`]), the messages between
//! them ([`protocol`]), the helper workers a graph is spread over ([`helpers`]), and the
//! page's side ([`client`]).

pub mod client;
pub mod columns;
mod fetch;
mod helpers;
pub mod kept;
mod open;
pub mod protocol;
mod turn;
pub mod worker;

pub use fetch::capped_bytes;
