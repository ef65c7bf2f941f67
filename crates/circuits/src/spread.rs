//! A round's batches carried side by side: [`carry_all`] keeps as many batches in flight
//! as the carrier has lanes, and [`Spread`] is a carrier whose other lanes are other
//! workers ([`Lanes`]: each with its own copy of the model and transcoders, on its own
//! core). A row is the same whichever worker carries it, so the graph is the one a single
//! worker computes, number for number.

use std::cell::{Cell, RefCell};
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;

use crate::carry::{Carrier, Row};
use crate::error::{CircuitError, Result};
use crate::setup::Target;

/// What a lane answers: the rows of the batch it was given.
pub type LaneAnswer<'a> = Pin<Box<dyn Future<Output = Result<Vec<Row>>> + 'a>>;

/// A lane taken for a batch, or `None` ([`Lanes::take_free`]).
pub type FreeLane<'a> = Pin<Box<dyn Future<Output = Option<usize>> + 'a>>;

/// Other workers that carry batches of a prompt's targets, one batch each at a time.
pub trait Lanes {
    /// The workers there are (ready or still loading).
    fn count(&self) -> usize;

    /// Takes a ready lane (it stays taken until it answers), waiting for one to come free
    /// if it chooses; `None` when none can take the batch (this worker carries it).
    fn take_free(&self) -> FreeLane<'_>;

    /// The rows of `batch` over the prompt `ids`, carried by lane `lane`.
    fn carry(&self, lane: usize, ids: &[u32], batch: Vec<Target>) -> LaneAnswer<'_>;

    /// A graph of the prompt `ids` begins: lanes may trace it now, while this worker
    /// carries the logits' rows.
    fn prepare(&self, _ids: &[u32]) {}
}

/// The rows of each of `chunks`, in their order, with up to [`Carrier::lanes`] of them
/// in flight at once; the first error ends it.
pub(crate) async fn carry_all<C: Carrier>(
    carrier: &C,
    chunks: &[&[&Target]],
) -> Result<Vec<Vec<Row>>> {
    let at_once = carrier.lanes().max(1);
    let mut carried: Vec<Option<Vec<Row>>> = vec![None; chunks.len()];
    let mut next = 0;
    let mut running = Vec::with_capacity(at_once);
    poll_fn(|cx| {
        loop {
            while running.len() < at_once && next < chunks.len() {
                running.push((next, Box::pin(carrier.carry(chunks[next]))));
                next += 1;
            }
            let before = running.len();
            let mut failed = None;
            running.retain_mut(|(i, rows)| match rows.as_mut().poll(cx) {
                Poll::Ready(Ok(rows)) => {
                    carried[*i] = Some(rows);
                    false
                }
                Poll::Ready(Err(error)) => {
                    failed.get_or_insert(error);
                    false
                }
                Poll::Pending => true,
            });
            if let Some(error) = failed {
                return Poll::Ready(Err(error));
            }
            if running.is_empty() && next == chunks.len() {
                return Poll::Ready(Ok(()));
            }
            if running.len() == before {
                return Poll::Pending;
            }
        }
    })
    .await?;
    carried
        .into_iter()
        .map(|rows| {
            rows.ok_or_else(|| CircuitError::Request("a batch was never carried".to_owned()))
        })
        .collect()
}

/// A carrier that hands batches to [`Lanes`] and carries the rest itself (`local`): a
/// batch carried alone stays here (a lane would leave this worker waiting), others go to
/// the lane [`Lanes::take_free`] gives, here when it gives none. A lane that fails or
/// answers with the wrong number of rows has its batch carried here instead.
pub struct Spread<'a, C> {
    local: C,
    lanes: &'a dyn Lanes,
    ids: &'a [u32],
    /// Batches being carried now.
    in_flight: Cell<usize>,
    /// Batches carried, by this worker first, then by each lane.
    carried: RefCell<Vec<usize>>,
}

impl<'a, C> Spread<'a, C> {
    /// `local` with `lanes` beside it, for the prompt `ids` (which the lanes are told to
    /// prepare).
    pub fn new(local: C, lanes: &'a dyn Lanes, ids: &'a [u32]) -> Self {
        lanes.prepare(ids);
        Self {
            local,
            carried: RefCell::new(vec![0; 1 + lanes.count()]),
            in_flight: Cell::new(0),
            lanes,
            ids,
        }
    }

    /// Batches carried so far: by this worker, then by each lane.
    #[must_use]
    pub fn carried(&self) -> Vec<usize> {
        self.carried.borrow().clone()
    }

    /// `batch`'s rows from a free lane, else from here.
    async fn carry_somewhere(&self, batch: &[&Target]) -> Result<Vec<Row>>
    where
        C: Carrier,
    {
        let alone = self.in_flight.get() == 1;
        if !alone && let Some(lane) = self.lanes.take_free().await {
            let owned = batch.iter().map(|&t| t.clone()).collect();
            if let Ok(rows) = self.lanes.carry(lane, self.ids, owned).await
                && rows.len() == batch.len()
            {
                self.count(1 + lane);
                return Ok(rows);
            }
        }
        self.count(0);
        self.local.carry(batch).await
    }

    fn count(&self, worker: usize) {
        if let Some(n) = self.carried.borrow_mut().get_mut(worker) {
            *n += 1;
        }
    }
}

impl<C: Carrier> Carrier for Spread<'_, C> {
    fn carry(&self, batch: &[&Target]) -> impl Future<Output = Result<Vec<Row>>> {
        // Counted when asked (before it is first polled), so the batches asked together
        // know of each other.
        self.in_flight.set(self.in_flight.get() + 1);
        async move {
            let rows = self.carry_somewhere(batch).await;
            self.in_flight.set(self.in_flight.get() - 1);
            rows
        }
    }

    fn lanes(&self) -> usize {
        1 + self.lanes.count()
    }
}

impl<C> std::fmt::Debug for Spread<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spread")
            .field("lanes", &self.lanes.count())
            .field("carried", &self.carried.borrow())
            .finish_non_exhaustive()
    }
}
