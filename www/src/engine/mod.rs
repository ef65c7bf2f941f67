//! The engine as the page uses it: a web worker running the CPU engine on the loaded
//! pack ([`worker`]), the messages between them ([`protocol`]), and the page's side
//! ([`client`]).

pub mod client;
mod fetch;
pub mod protocol;
pub mod worker;
