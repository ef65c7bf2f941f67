//! The browser's [`ColumnHelper`]: another worker, reached through a `SharedArrayBuffer`
//! (a cross-origin isolated page can post one to several workers) and woken with
//! `Atomics`. The buffer is a small header, then room for the rows of `a` and the
//! helper's columns of the product:
//!
//! - the worker that runs the model writes `a` and the request into the buffer, sets the
//!   state to asked and notifies; it computes its own columns meanwhile, then waits for
//!   done (spinning first: the helper is usually as quick), copies the helper's columns
//!   out and sets the state back to idle;
//! - the helper's worker sits in [`serve`] until asked to stop: it computes what is asked
//!   with its own copy of the model, writes the columns and sets the state to done (or
//!   failed, with the request left unanswered where the weight or the shapes are not its).
//!
//! Only the browser runs this module (natively there is no `SharedArrayBuffer`; it
//! compiles for the crates that name it).
//!
//! A worker blocks in `Atomics.wait`; a page's main thread may not, and spins instead.

use std::cell::Cell;

use js_sys::{Atomics, Date, Float32Array, Int32Array, SharedArrayBuffer};

use crate::column_split::{ColumnHelper, ColumnRequest, WeightTable, columns_of_product};

/// Header words: the state, then the request.
const STATE: u32 = 0;
const NUMBER: u32 = 1;
const ROWS: u32 = 2;
const DEPTH: u32 = 3;
const WIDTH: u32 = 4;
const FIRST: u32 = 5;
const END: u32 = 6;
const TRANSPOSED: u32 = 7;
/// The helper's [`WeightTable::fingerprint`], written when it starts serving (0 before).
const FINGERPRINT: u32 = 8;
/// Bytes before the values (sixteen words, the last ones unused).
const HEADER_BYTES: u32 = 64;

/// The states of a request.
const IDLE: i32 = 0;
const ASKED: i32 = 1;
const DONE: i32 = 2;
const FAILED: i32 = 3;
const STOP: i32 = 4;

/// How long either side spins before blocking, in milliseconds: about a product's
/// difference in time between the two sides, or the gap between two products.
const SPIN_MS: f64 = 2.0;
/// Multiply-adds of a product worth waking a sleeping helper for (about a millisecond's
/// work, which waking it costs): a smaller one is computed here alone, and the helper woken
/// so that it spins for the products coming after (in Chromium the default pack's 1-token
/// pass, a single shared product, went from 2.0 to 3.1 ms when it waited for the wake-up).
const WORTH_A_WAKE_UP: usize = 4 << 20;
/// How long the model's worker waits for its helper before computing the columns itself.
const PATIENCE_MS: f64 = 20_000.0;

/// Bytes of a buffer for products of up to `rows` rows, `a` at most `widest_input` wide
/// and the whole product at most `widest_output` (the helper computes at most half).
#[must_use]
pub fn buffer_bytes(rows: usize, widest_input: usize, widest_output: usize) -> usize {
    HEADER_BYTES as usize + 4 * rows * (widest_input + widest_output.div_ceil(2))
}

/// The model's side: hands columns to the helper serving `buffer`.
#[derive(Debug)]
pub struct SharedColumns {
    header: Int32Array,
    values: Float32Array,
    /// This side's weights by number.
    table: WeightTable,
    /// Their fingerprint, as the helper publishes its own.
    fingerprint: i32,
    /// Where the helper's columns will be, and how many values, while a request is out.
    started: Cell<Option<(u32, u32)>>,
    /// Whether this thread may block in `Atomics.wait` (not a page's main thread).
    may_block: Cell<bool>,
    /// When the helper last answered or was woken (`Date.now()`): it spins [`SPIN_MS`]
    /// after either, then sleeps.
    last_contact: Cell<f64>,
    /// [`WORTH_A_WAKE_UP`] (the tests' may differ).
    worth_a_wake_up: usize,
}

impl SharedColumns {
    /// Shares products of the weights in `table` with the helper that serves `buffer`.
    ///
    /// # Errors
    /// A buffer too small for its header.
    pub fn new(buffer: &SharedArrayBuffer, table: WeightTable) -> Result<Self, String> {
        let (header, values) = views(buffer)?;
        Ok(Self {
            header,
            values,
            fingerprint: table.fingerprint().cast_signed(),
            table,
            started: Cell::new(None),
            may_block: Cell::new(true),
            last_contact: Cell::new(f64::NEG_INFINITY),
            worth_a_wake_up: WORTH_A_WAKE_UP,
        })
    }

    /// Waits while the state is [`ASKED`]: spins, then blocks where it may, until the
    /// helper answers or [`PATIENCE_MS`] pass; the state it found.
    fn wait_for_answer(&self) -> i32 {
        let started = Date::now();
        loop {
            let state = load(&self.header, STATE);
            let waited = Date::now() - started;
            if state != ASKED || waited > PATIENCE_MS {
                return state;
            }
            if waited > SPIN_MS && self.may_block.get() {
                // Throws on a page's main thread: spin there instead.
                let blocked = Atomics::wait_with_timeout(&self.header, STATE, ASKED, 100.0);
                self.may_block.set(blocked.is_ok());
            }
        }
    }
}

impl ColumnHelper for SharedColumns {
    fn start(&self, request: &ColumnRequest<'_>) -> bool {
        let Some(number) = self.table.number_of(request.weight) else {
            return false;
        };
        let m = request.m;
        let k = request.a.len() / m.max(1);
        let (input, output) = (m * k, m * request.columns.len());
        let fits = input + output <= self.values.length() as usize;
        // The helper serves the same weights: its table's fingerprint is this side's.
        let same_weights = load(&self.header, FINGERPRINT) == self.fingerprint;
        if !fits
            || !same_weights
            || self.started.get().is_some()
            || load(&self.header, STATE) != IDLE
        {
            return false;
        }
        let now = Date::now();
        let awake = now - self.last_contact.get() < SPIN_MS / 2.0;
        if !awake && m * k * request.columns.len() < self.worth_a_wake_up {
            // Wakes the helper for the products after this one.
            notify(&self.header);
            self.last_contact.set(now);
            return false;
        }
        let words = [
            number,
            m,
            k,
            request.n,
            request.columns.start,
            request.columns.end,
            usize::from(request.transposed),
        ]
        .map(i32::try_from);
        let (Ok(at), Ok(len)) = (u32::try_from(input), u32::try_from(output)) else {
            return false;
        };
        let Ok(words) = words.into_iter().collect::<Result<Vec<i32>, _>>() else {
            return false;
        };
        self.values.subarray(0, at).copy_from(request.a);
        for (word, value) in (NUMBER..=TRANSPOSED).zip(words) {
            store(&self.header, word, value);
        }
        let (input, output) = (at, len);
        self.started.set(Some((input, output)));
        store(&self.header, STATE, ASKED);
        notify(&self.header);
        true
    }

    fn finish(&self, into: &mut [f32]) -> Result<(), String> {
        let (at, len) = self
            .started
            .take()
            .ok_or_else(|| "no columns were asked of the helper".to_owned())?;
        match self.wait_for_answer() {
            DONE if into.len() == len as usize => {
                self.values.subarray(at, at + len).copy_to(into);
                store(&self.header, STATE, IDLE);
                self.last_contact.set(Date::now());
                Ok(())
            }
            DONE => Err(format!(
                "the helper computed {len} values where {} were expected",
                into.len()
            )),
            FAILED => {
                store(&self.header, STATE, IDLE);
                Err("the helper could not compute the columns asked of it".to_owned())
            }
            ASKED => Err(format!(
                "the helper did not answer within {} s",
                PATIENCE_MS / 1000.0
            )),
            state => Err(format!("the helper left the request in state {state}")),
        }
    }
}

/// The helper's side: answers the requests of the worker sharing `buffer`, with the
/// weights of `table` (built as that worker built its own), until [`stop`]. Blocks the
/// calling worker all the while.
///
/// # Errors
/// A buffer too small for its header.
pub fn serve(buffer: &SharedArrayBuffer, table: &WeightTable) -> Result<(), String> {
    let (header, values) = views(buffer)?;
    store(&header, FINGERPRINT, table.fingerprint().cast_signed());
    let mut idle_since = Date::now();
    loop {
        if answer_if_asked(&header, &values, table) {
            idle_since = Date::now();
            continue;
        }
        match load(&header, STATE) {
            STOP => return Ok(()),
            state if Date::now() - idle_since > SPIN_MS => {
                // Blocks until the state changes or the model's side wakes it (then it
                // spins again); a worker may block.
                let woken = Atomics::wait_with_timeout(&header, STATE, state, 1000.0)
                    .map_err(|_| "the helper's worker may not block".to_owned())?;
                if woken == "ok" {
                    idle_since = Date::now();
                }
            }
            _ => {}
        }
    }
}

/// Answers the request in the buffer, if one was asked: the columns, and the state done
/// (or failed); whether there was one.
fn answer_if_asked(header: &Int32Array, values: &Float32Array, table: &WeightTable) -> bool {
    if load(header, STATE) != ASKED {
        return false;
    }
    let state = match answer(header, values, table) {
        Some(()) => DONE,
        None => FAILED,
    };
    store(header, STATE, state);
    notify(header);
    true
}

/// Asks the helper serving `buffer` to return from [`serve`].
///
/// # Errors
/// A buffer too small for its header.
pub fn stop(buffer: &SharedArrayBuffer) -> Result<(), String> {
    let (header, _) = views(buffer)?;
    store(&header, FINGERPRINT, 0);
    store(&header, STATE, STOP);
    notify(&header);
    Ok(())
}

/// Computes the request in the buffer and writes the columns after `a`; `None` where the
/// request does not match a weight of `table` or the buffer.
fn answer(header: &Int32Array, values: &Float32Array, table: &WeightTable) -> Option<()> {
    let word = |at| usize::try_from(load(header, at)).ok();
    let (number, m, k, n) = (word(NUMBER)?, word(ROWS)?, word(DEPTH)?, word(WIDTH)?);
    let columns = word(FIRST)?..word(END)?;
    let transposed = load(header, TRANSPOSED) != 0;
    let (input, output) = (m * k, m * columns.len());
    if columns.end > n || input + output > values.length() as usize {
        return None;
    }
    let a = values.subarray(0, input as u32).to_vec();
    let product = table.with_weight(number, |weight| {
        (weight.len() == k * n).then(|| columns_of_product(&a, m, weight, n, transposed, columns))
    });
    // No such weight, a weight of another shape, or one the table cannot read.
    let Ok(Some(Some(product))) = product else {
        return None;
    };
    values
        .subarray(input as u32, (input + output) as u32)
        .copy_from(&product);
    Some(())
}

/// The header's and the values' views of `buffer`.
fn views(buffer: &SharedArrayBuffer) -> Result<(Int32Array, Float32Array), String> {
    let bytes = buffer.byte_length();
    if bytes < HEADER_BYTES {
        return Err(format!(
            "a buffer of {bytes} bytes is too small to share products (at least {HEADER_BYTES})"
        ));
    }
    let header = Int32Array::new_with_byte_offset_and_length(buffer, 0, HEADER_BYTES / 4);
    let values = Float32Array::new_with_byte_offset_and_length(
        buffer,
        HEADER_BYTES,
        (bytes - HEADER_BYTES) / 4,
    );
    Ok((header, values))
}

fn load(header: &Int32Array, word: u32) -> i32 {
    Atomics::load(header, word).unwrap_or(IDLE)
}

fn store(header: &Int32Array, word: u32, value: i32) {
    // Only fails on a view that is not of integers; the header is.
    let _ = Atomics::store(header, word, value);
}

fn notify(header: &Int32Array) {
    let _ = Atomics::notify(header, STATE);
}

#[cfg(all(test, target_arch = "wasm32"))]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use candle_core::{Device, Tensor};

    use super::*;
    use crate::column_split::ColumnHelper;

    wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

    fn weights(seed: usize) -> Vec<Tensor> {
        [(96, 200), (200, 96), (300, 96)]
            .into_iter()
            .map(|(rows, columns)| {
                let values: Vec<f32> = (0..rows * columns)
                    .map(|i| ((i * 7919 + seed) % 1000) as f32 / 500.0 - 1.0)
                    .collect();
                Tensor::from_vec(values, (rows, columns), &Device::Cpu).unwrap()
            })
            .collect()
    }

    fn values(tensor: &Tensor) -> Vec<f32> {
        tensor.flatten_all().unwrap().to_vec1().unwrap()
    }

    /// One request through the buffer, answered in this thread by the helper's own step
    /// with another copy of the weights: the columns are the whole product's to the bit,
    /// for a weight `[k, n]` and one read transposed; a request the helper cannot answer
    /// (its weight of another shape) is an error, and one too large is not sent.
    #[wasm_bindgen_test::wasm_bindgen_test]
    fn a_request_through_the_buffer_is_answered_with_the_helpers_copy() {
        let this_side = weights(1);
        let other_copy: Vec<Tensor> = this_side.iter().map(|t| t.copy().unwrap()).collect();
        let buffer = SharedArrayBuffer::new(u32::try_from(buffer_bytes(16, 96, 300)).unwrap());
        let mut model_side =
            SharedColumns::new(&buffer, WeightTable::new(this_side.clone()).unwrap()).unwrap();
        // A sleeping helper is woken for these small products (tested below).
        model_side.worth_a_wake_up = 0;
        let helper_table = WeightTable::new(other_copy).unwrap();
        let (header, values_view) = views(&buffer).unwrap();
        let publish =
            |table: &WeightTable| store(&header, FINGERPRINT, table.fingerprint().cast_signed());
        let a: Vec<f32> = (0..16 * 96).map(|i| (i % 17) as f32 / 17.0 - 0.5).collect();
        publish(&helper_table);
        for (weight, transposed, n) in [(&this_side[0], false, 200), (&this_side[2], true, 300)] {
            let weight = values(weight);
            let order = if transposed {
                crate::many_rows::Order::NByK
            } else {
                crate::many_rows::Order::KByN
            };
            let whole = crate::simd_tiles::product(&a, 16, &weight, n, order);
            // The helper's part, as `column_split` cuts it.
            let columns = n.div_ceil(2).next_multiple_of(8)..n;
            let started = crate::column_split::with_values(
                if transposed {
                    &this_side[2]
                } else {
                    &this_side[0]
                },
                |own| {
                    model_side.start(&ColumnRequest {
                        a: &a,
                        m: 16,
                        weight: own,
                        n,
                        transposed,
                        columns: columns.clone(),
                    })
                },
            )
            .unwrap();
            assert!(started);
            assert!(answer_if_asked(&header, &values_view, &helper_table));
            let mut theirs = vec![0.0; 16 * columns.len()];
            model_side.finish(&mut theirs).unwrap();
            for r in 0..16 {
                let expected = &whole[r * n + columns.start..(r + 1) * n];
                let got = &theirs[r * columns.len()..(r + 1) * columns.len()];
                assert!(
                    expected
                        .iter()
                        .zip(got)
                        .all(|(x, y)| x.to_bits() == y.to_bits()),
                    "row {r}, transposed {transposed}"
                );
            }
        }
        // A helper whose weights are not this side's is asked nothing; one that answers for
        // weights it does not have fails.
        let other_copy: Vec<Tensor> = this_side.iter().map(|t| t.copy().unwrap()).collect();
        let short_table = WeightTable::new(other_copy[..2].to_vec()).unwrap();
        let ask_for_the_last = || {
            crate::column_split::with_values(&this_side[2], |own| {
                model_side.start(&ColumnRequest {
                    a: &a,
                    m: 16,
                    weight: own,
                    n: 300,
                    transposed: true,
                    columns: 152..300,
                })
            })
            .unwrap()
        };
        publish(&short_table);
        assert!(!ask_for_the_last());
        assert!(!answer_if_asked(&header, &values_view, &short_table));
        publish(&helper_table);
        assert!(ask_for_the_last());
        assert!(answer_if_asked(&header, &values_view, &short_table));
        assert!(model_side.finish(&mut vec![0.0; 16 * 148]).is_err());
        // Nothing is asked of a helper not serving yet.
        store(&header, FINGERPRINT, 0);
        assert!(!ask_for_the_last());
        // 64 rows do not fit a buffer for 16.
        let long: Vec<f32> = vec![0.5; 64 * 96];
        let too_long = crate::column_split::with_values(&this_side[0], |own| {
            model_side.start(&ColumnRequest {
                a: &long,
                m: 64,
                weight: own,
                n: 200,
                transposed: false,
                columns: 104..200,
            })
        })
        .unwrap();
        assert!(!too_long);
        assert!(!answer_if_asked(&header, &values_view, &helper_table));
        // A helper asked to stop returns at once.
        publish(&helper_table);
        stop(&buffer).unwrap();
        serve(&buffer, &helper_table).unwrap();
    }

    /// A product too small to be worth waking a sleeping helper for is not sent, and the
    /// helper is woken; the next one, while it is awake, is sent, and so is one worth a
    /// wake-up whenever.
    #[wasm_bindgen_test::wasm_bindgen_test]
    fn a_small_product_wakes_a_sleeping_helper_instead_of_waiting_for_it() {
        let weights = vec![
            Tensor::from_vec(vec![0.5_f32; 64 * 64], (64, 64), &Device::Cpu).unwrap(),
            Tensor::from_vec(vec![0.25_f32; 1024 * 4096], (1024, 4096), &Device::Cpu).unwrap(),
        ];
        let table = WeightTable::new(weights.clone()).unwrap();
        let fingerprint = table.fingerprint().cast_signed();
        let buffer = SharedArrayBuffer::new(u32::try_from(buffer_bytes(4, 1024, 4096)).unwrap());
        let model_side = SharedColumns::new(&buffer, table).unwrap();
        let (header, _) = views(&buffer).unwrap();
        store(&header, FINGERPRINT, fingerprint);
        let ask = |weight: &Tensor, rows: usize| {
            let (k, n) = weight.dims2().unwrap();
            let a = vec![1.0_f32; rows * k];
            let sent = crate::column_split::with_values(weight, |own| {
                model_side.start(&ColumnRequest {
                    a: &a,
                    m: rows,
                    weight: own,
                    n,
                    transposed: false,
                    columns: n / 2..n,
                })
            })
            .unwrap();
            if sent {
                // Answered as a helper would, so that the next request may go.
                store(&header, STATE, DONE);
                model_side
                    .finish(&mut vec![0.0; rows * (n - n / 2)])
                    .unwrap();
            }
            sent
        };
        assert!(
            !ask(&weights[0], 4),
            "a small product sent to a sleeping helper"
        );
        assert!(
            ask(&weights[0], 4),
            "a small product not sent to a helper just woken"
        );
        model_side.last_contact.set(f64::NEG_INFINITY);
        assert!(
            ask(&weights[1], 4),
            "a large product not sent to a sleeping helper"
        );
    }
}
