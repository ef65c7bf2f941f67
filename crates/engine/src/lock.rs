//! Locking the engines' shared state: a panic on another thread while it held a lock
//! leaves the state as it was, which is still the best there is, so the lock is taken
//! anyway (the one place this is decided).

use std::sync::{Mutex, MutexGuard, PoisonError};

/// `mutex`'s guard, poisoned or not.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
