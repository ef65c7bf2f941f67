//! Running an engine's future to its end where it never waits (the CPU engine's), from
//! code that is not async (the command line, the pack build).

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// The output of `future` if it completes without waiting (the CPU engine's work does);
/// `None` if it would wait (it ran on an engine that needs an executor).
pub fn now<F: Future>(future: F) -> Option<F::Output> {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}
