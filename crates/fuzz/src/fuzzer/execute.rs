//! One execution: the target on one input inside `catch_unwind`, with what it allocated
//! measured. A panic's message and place are taken by a panic hook (which stays quiet
//! during executions and passes every other panic to the hook it replaced).

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;
use std::time::{Duration, Instant};

use crate::Behaviour;
use crate::targets::Target;

/// How one execution ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The target returned (whether its parser loaded the input or refused it).
    Returned(Behaviour),
    /// It panicked: the message and where.
    Panicked(String),
}

/// One execution's outcome, the most bytes it had allocated at once, and its time.
#[derive(Debug)]
pub(crate) struct Execution {
    pub(crate) outcome: Outcome,
    pub(crate) allocated: usize,
    pub(crate) took: Duration,
}

thread_local! {
    static IN_TARGET: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `target` on `input`.
pub(crate) fn execute(target: &Target, input: &[u8]) -> Execution {
    install_hook();
    let before = crate::alloc::start();
    let started = Instant::now();
    IN_TARGET.set(true);
    let result = panic::catch_unwind(AssertUnwindSafe(|| target.run(input)));
    IN_TARGET.set(false);
    let took = started.elapsed();
    let allocated = crate::alloc::peak().saturating_sub(before);
    let outcome = match result {
        Ok(behaviour) => Outcome::Returned(behaviour),
        Err(_) => Outcome::Panicked(
            LAST_PANIC
                .take()
                .unwrap_or_else(|| "a panic without a message".to_owned()),
        ),
    };
    Execution {
        outcome,
        allocated,
        took,
    }
}

/// Installs the hook that records panics during executions, once per process.
fn install_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !IN_TARGET.get() {
                previous(info);
                return;
            }
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic with a payload that is not text".to_owned());
            let place = info
                .location()
                .map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
            LAST_PANIC.set(Some(format!("{message}{place}")));
        }));
    });
}
