//! One at a time: requests that compute a prompt's graph take turns, so a second request
//! on the same prompt (the suggested groups beside the graph) finds the graph the first
//! kept instead of computing it again alongside. (A graph spread over helper workers, or
//! on the GPU, awaits between its batches, where another request would start.)

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

/// Whose turn it is, and who waits.
#[derive(Debug, Default)]
pub(super) struct Turns {
    taken: Cell<bool>,
    waiting: RefCell<VecDeque<Waker>>,
}

/// A turn; the next waiter's comes when it is dropped.
#[derive(Debug)]
pub(super) struct Turn(Rc<Turns>);

impl Turns {
    /// Waits for the turn.
    pub(super) async fn take(self: &Rc<Self>) -> Turn {
        poll_fn(|cx| {
            if self.taken.replace(true) {
                self.waiting.borrow_mut().push_back(cx.waker().clone());
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
        Turn(Rc::clone(self))
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.0.taken.set(false);
        if let Some(next) = self.0.waiting.borrow_mut().pop_front() {
            next.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_are_taken_one_at_a_time_in_order() {
        let turns = Rc::new(Turns::default());
        let order = Rc::new(RefCell::new(Vec::new()));
        let mut futures: Vec<_> = (0..3)
            .map(|i| {
                let (turns, order) = (Rc::clone(&turns), Rc::clone(&order));
                Box::pin(async move {
                    let _turn = turns.take().await;
                    order.borrow_mut().push(i);
                    // Holds the turn across a suspension, as a spread graph does.
                    let mut once = false;
                    poll_fn(|cx| {
                        if once {
                            Poll::Ready(())
                        } else {
                            once = true;
                            cx.waker().wake_by_ref();
                            Poll::Pending
                        }
                    })
                    .await;
                    order.borrow_mut().push(10 + i);
                })
            })
            .collect();
        let mut cx = std::task::Context::from_waker(Waker::noop());
        let mut done = [false; 3];
        for _ in 0..10 {
            for (future, done) in futures.iter_mut().zip(&mut done) {
                if !*done {
                    *done = future.as_mut().poll(&mut cx).is_ready();
                }
            }
        }
        assert_eq!(done, [true; 3]);
        assert_eq!(*order.borrow(), vec![0, 10, 1, 11, 2, 12]);
    }
}
