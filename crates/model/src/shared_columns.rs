//! The browser's [`ColumnHelper`]: another worker, reached through a `SharedArrayBuffer`
//! (a cross-origin isolated page can post one to several workers) and woken with
//! `Atomics`. The buffer is a small header, then room for the rows of `a` and the
//! helper's chunks of the product's columns (or for the `q`, `k` and `v` of an
//! attention's heads, then the `z` of the helper's chunks of heads):
//!
//! - the worker that runs the model writes `a` and the request into the buffer, sets the
//!   state to asked and notifies; it then takes chunks of the product's columns
//!   ([`product_chunks`]) from a counter in the header (`Atomics.add`) and computes them,
//!   until none is left. If the helper has not picked the request up by then, it takes the
//!   request back (the state, compared and exchanged, back to idle); else it waits for
//!   done (spinning first), copies the helper's chunks out and sets the state to idle;
//! - the helper's worker sits in [`serve`] until asked to stop: it picks a request up
//!   (the state, compared and exchanged, to working), takes chunks from the same counter,
//!   computes them with its own copy of the model and writes them one after another, in
//!   the order taken, while they fit; then it sets the state to done (or failed, with
//!   nothing taken, where the weight or the shapes are not its).
//!
//! Either side takes the next chunk as soon as it is free, so the side slowed down (by
//! the browser's other work on its core, or a late wake-up) takes fewer: the model's
//! worker waits at most about a chunk's time for the helper. An attention is shared the
//! same way, in chunks of heads ([`head_chunks`]).
//!
//! Only the browser runs this module (natively there is no `SharedArrayBuffer`; it
//! compiles for the crates that name it).
//!
//! A worker blocks in `Atomics.wait`; a page's main thread may not, and spins instead.

use std::cell::Cell;

use js_sys::{Atomics, Date, Float32Array, Int32Array, SharedArrayBuffer};

use crate::column_split::{
    ColumnHelper, ColumnRequest, HeadsRequest, ProductParts, WeightTable, head_chunks,
    heads_of_attention, product_chunks,
};

/// Header words: the state, then the request.
const STATE: u32 = 0;
const NUMBER: u32 = 1;
const ROWS: u32 = 2;
const DEPTH: u32 = 3;
const WIDTH: u32 = 4;
/// The next chunk of a product's columns (or of an attention's heads) not taken yet, by
/// either side.
const NEXT_CHUNK: u32 = 5;
/// Values the helper wrote, its chunks one after another.
const ANSWERED: u32 = 6;
const TRANSPOSED: u32 = 7;
/// The helper's [`WeightTable::fingerprint`], written when it starts serving (0 before).
const FINGERPRINT: u32 = 8;
/// What is asked: [`COLUMNS`] (the words from [`NUMBER`] to [`TRANSPOSED`]) or [`HEADS`]
/// (the words from [`HEAD_COUNT`] to [`SCALE`]).
const KIND: u32 = 9;
const HEAD_COUNT: u32 = 10;
const QUERIES: u32 = 11;
const KEYS: u32 = 12;
const D_HEAD: u32 = 13;
const OFFSET: u32 = 14;
/// The scale's f32 bits.
const SCALE: u32 = 15;
/// 1 while the helper spins (and picks a request up at once), 0 while it sleeps in
/// `Atomics.wait` (a request is then picked up only after its wake-up).
const AWAKE: u32 = 16;
/// Bytes before the values (thirty-two words, the last ones unused).
const HEADER_BYTES: u32 = 128;

/// The kinds of request.
const COLUMNS: i32 = 0;
const HEADS: i32 = 1;

/// The states of a request.
const IDLE: i32 = 0;
const ASKED: i32 = 1;
const DONE: i32 = 2;
const FAILED: i32 = 3;
const STOP: i32 = 4;
/// The helper picked the request up and computes it.
const WORKING: i32 = 5;

/// How long either side spins before blocking, in milliseconds: about a product's
/// difference in time between the two sides, or the gap between two products.
const SPIN_MS: f64 = 2.0;
/// Multiply-adds of a product worth waking a sleeping helper for (about a millisecond's
/// work, which waking it costs): a smaller one is computed here alone (the helper would
/// pick it up too late to take a chunk), and the helper woken so that it spins for the
/// products coming after. (In Chromium, before products were shared in chunks, the
/// default pack's 1-token pass, a single shared product, went from 2.0 to 3.1 ms when it
/// waited for the wake-up.)
const WORTH_A_WAKE_UP: usize = 4 << 20;
/// How long the model's worker waits for its helper before computing the columns itself.
const PATIENCE_MS: f64 = 20_000.0;

/// Bytes of a buffer for products of up to `rows` rows, `a` at most `widest_input` wide
/// and the whole product at most `widest_output`, of which the helper may take about half
/// (it takes no chunk that would not fit; those left are the model's side's). A few rows'
/// share of the depth (every column) fits where `rows` is at least twice as many; an
/// attention over `rows` positions, with `q`, `k` and `v` each as wide as the model,
/// where `widest_input + widest_output / 2` is at least three times that.
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
    /// The request out, if one is.
    started: Cell<Option<Started>>,
    /// Whether this thread may block in `Atomics.wait` (not a page's main thread).
    may_block: Cell<bool>,
    /// Whether the helper was last woken for requests that did not come.
    woken_in_vain: Cell<bool>,
    /// How many times this side has woken the helper for requests to come.
    wake_ups: Cell<usize>,
    /// [`WORTH_A_WAKE_UP`] (the tests' may differ).
    worth_a_wake_up: usize,
}

/// A request out to the helper: a product in `chunks` chunks of columns, or an attention
/// in `chunks` chunks of heads; the helper's values after `at` (the end of the inputs).
#[derive(Debug, Clone, Copy)]
struct Started {
    at: u32,
    chunks: usize,
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
            woken_in_vain: Cell::new(false),
            wake_ups: Cell::new(0),
            worth_a_wake_up: WORTH_A_WAKE_UP,
        })
    }

    /// Waits while the state is [`ASKED`] or [`WORKING`]: spins, then blocks where it
    /// may, until the helper answers or [`PATIENCE_MS`] pass; the state it found.
    fn wait_for_answer(&self) -> i32 {
        let started = Date::now();
        loop {
            let state = load(&self.header, STATE);
            let waited = Date::now() - started;
            if !matches!(state, ASKED | WORKING) || waited > PATIENCE_MS {
                return state;
            }
            if waited > SPIN_MS && self.may_block.get() {
                // Throws on a page's main thread: spin there instead.
                let blocked = Atomics::wait_with_timeout(&self.header, STATE, state, 100.0);
                self.may_block.set(blocked.is_ok());
            }
        }
    }

    /// The helper's answer, the values after `at`, into `into`, once it is done and
    /// says (`answered`) that it wrote as many.
    fn take_answer(
        &self,
        at: u32,
        answered: impl FnOnce() -> usize,
        into: &mut [f32],
    ) -> Result<(), String> {
        match self.wait_for_answer() {
            DONE => {
                let len = answered();
                if into.len() != len {
                    return Err(format!(
                        "the helper computed {len} values where {} were expected",
                        into.len()
                    ));
                }
                let end = at.saturating_add(u32::try_from(len).unwrap_or(u32::MAX));
                self.values.subarray(at, end).copy_to(into);
                store(&self.header, STATE, IDLE);
                Ok(())
            }
            FAILED => {
                store(&self.header, STATE, IDLE);
                Err("the helper could not compute what was asked of it".to_owned())
            }
            ASKED | WORKING => Err(format!(
                "the helper did not answer within {} s",
                PATIENCE_MS / 1000.0
            )),
            state => Err(format!("the helper left the request in state {state}")),
        }
    }
}

impl SharedColumns {
    /// Whether a request of `values` values in all (what is sent and what comes back) and
    /// `work` multiply-adds for the helper may be sent now: it fits, the helper serves this
    /// side's weights and is free, and it is awake or the work is worth waking it for (a
    /// sleeping one is woken for the requests after a small one).
    fn may_ask(&self, values: usize, work: usize) -> bool {
        let fits = values <= self.values.length() as usize;
        // The helper serves the same weights: its table's fingerprint is this side's.
        let same_weights = load(&self.header, FINGERPRINT) == self.fingerprint;
        if !fits
            || !same_weights
            || self.started.get().is_some()
            || load(&self.header, STATE) != IDLE
        {
            return false;
        }
        let awake = load(&self.header, AWAKE) == 1;
        if !awake && work < self.worth_a_wake_up {
            // Wakes the helper for the requests after this one, unless it went back to
            // sleep with nothing asked after the last wake-up (a pass with no other
            // request, as the default pack's one token: it would only spin, on a core the
            // page may need).
            if !self.woken_in_vain.get() {
                notify(&self.header);
                self.wake_ups.set(self.wake_ups.get() + 1);
                self.woken_in_vain.set(true);
            }
            return false;
        }
        self.woken_in_vain.set(false);
        true
    }

    /// Writes `inputs` one after another at the values' start and `words` into the
    /// header, and asks for what comes in `chunks` chunks: the helper's will be after the
    /// inputs. False (nothing asked) where a number does not fit the buffer's words.
    fn ask(&self, inputs: &[&[f32]], words: &[(u32, usize)], chunks: usize) -> bool {
        let Ok(words) = words
            .iter()
            .chain(&[(NEXT_CHUNK, 0), (ANSWERED, 0)])
            .map(|&(word, value)| i32::try_from(value).map(|value| (word, value)))
            .collect::<Result<Vec<_>, _>>()
        else {
            return false;
        };
        let input: usize = inputs.iter().map(|values| values.len()).sum();
        let Ok(at) = u32::try_from(input) else {
            return false;
        };
        let mut from = 0;
        for values in inputs {
            let to = from + values.len() as u32;
            self.values.subarray(from, to).copy_from(values);
            from = to;
        }
        for (word, value) in words {
            store(&self.header, word, value);
        }
        self.started.set(Some(Started { at, chunks }));
        store(&self.header, STATE, ASKED);
        notify(&self.header);
        true
    }
}

impl ColumnHelper for SharedColumns {
    fn start(&self, request: &ColumnRequest<'_>) -> bool {
        let Some(number) = self.table.number_of(request.weight) else {
            return false;
        };
        let (m, n) = (request.m, request.n);
        let k = request.a.len() / m.max(1);
        let chunks = product_chunks(m, k, n, request.transposed);
        let largest = (chunks.iter().map(|chunk| chunk.values(m, n)).max()).unwrap_or(0);
        // The helper's first chunk fits; it takes none that would not.
        if !self.may_ask(m * k + largest, m * k * n / 2) {
            return false;
        }
        let words = [
            (NUMBER, number),
            (ROWS, m),
            (DEPTH, k),
            (WIDTH, n),
            (TRANSPOSED, usize::from(request.transposed)),
            (KIND, COLUMNS as usize),
        ];
        self.ask(&[request.a], &words, chunks.len())
    }

    fn take_chunk(&self) -> Option<usize> {
        let Started { chunks, .. } = self.started.get()?;
        let chunk = usize::try_from(Atomics::add(&self.header, NEXT_CHUNK, 1).ok()?).ok()?;
        (chunk < chunks).then_some(chunk)
    }

    fn start_heads(&self, request: &HeadsRequest<'_>) -> bool {
        let input = request.q.len() + request.k.len() + request.v.len();
        let chunks = head_chunks(request.heads);
        let widest = chunks.iter().map(ExactSizeIterator::len).max().unwrap_or(0);
        // The helper's first chunk fits; it takes none that would not.
        if !self.may_ask(input + widest * request.z_per_head(), request.work() / 2) {
            return false;
        }
        let words = [
            (HEAD_COUNT, request.heads),
            (QUERIES, request.queries),
            (KEYS, request.keys),
            (D_HEAD, request.d_head),
            (OFFSET, request.offset),
            // A negative scale's bits do not fit a word's i32: not asked.
            (
                SCALE,
                usize::try_from(request.scale.to_bits()).unwrap_or(usize::MAX),
            ),
            (KIND, HEADS as usize),
        ];
        self.ask(&[request.q, request.k, request.v], &words, chunks.len())
    }

    fn finish(&self, into: &mut [f32]) -> Result<(), String> {
        let Some(Started { at, .. }) = self.started.take() else {
            return Err("nothing was asked of the helper".to_owned());
        };
        // Every chunk is taken: a helper that has not picked the request up has none, and
        // will find it taken back.
        let taken_back = Atomics::compare_exchange(&self.header, STATE, ASKED, IDLE);
        if taken_back == Ok(ASKED) {
            return if into.is_empty() {
                Ok(())
            } else {
                Err(format!("the helper took no chunk of {}", into.len()))
            };
        }
        let answered = || usize::try_from(load(&self.header, ANSWERED)).unwrap_or(0);
        self.take_answer(at, answered, into)
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
    store(&header, AWAKE, 1);
    let mut idle_since = Date::now();
    loop {
        if answer_if_asked(&header, &values, table) {
            idle_since = Date::now();
            continue;
        }
        match load(&header, STATE) {
            STOP => {
                store(&header, AWAKE, 0);
                return Ok(());
            }
            state if Date::now() - idle_since > SPIN_MS => {
                // Blocks until the state changes or the model's side wakes it (then it
                // spins again); a worker may block. A request asked meanwhile changed the
                // state, so the wait returns at once.
                store(&header, AWAKE, 0);
                let woken = Atomics::wait_with_timeout(&header, STATE, state, 1000.0)
                    .map_err(|_| "the helper's worker may not block".to_owned())?;
                store(&header, AWAKE, 1);
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
    // Picked up, unless the model's side took it back first.
    if Atomics::compare_exchange(header, STATE, ASKED, WORKING) != Ok(ASKED) {
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

/// Computes the request in the buffer and writes the answer after its inputs; `None`
/// where the request does not match a weight of `table` or the buffer.
fn answer(header: &Int32Array, values: &Float32Array, table: &WeightTable) -> Option<()> {
    match load(header, KIND) {
        COLUMNS => answer_columns(header, values, table),
        HEADS => answer_heads(header, values),
        _ => None,
    }
}

/// Takes chunks of the attention asked in the buffer until none is left (or the next
/// would not fit), computes their heads' `z` and writes them after `q`, `k` and `v`, one
/// after another, and how many values they are; `None` where the request does not fit the
/// buffer (found before any chunk is taken) or a chunk cannot be computed.
fn answer_heads(header: &Int32Array, values: &Float32Array) -> Option<()> {
    let word = |at| usize::try_from(load(header, at)).ok();
    let (heads, queries, keys, d_head) = (
        word(HEAD_COUNT)?,
        word(QUERIES)?,
        word(KEYS)?,
        word(D_HEAD)?,
    );
    let (q_len, kv_len) = (heads * queries * d_head, heads * keys * d_head);
    let input = q_len + 2 * kv_len;
    if input > values.length() as usize {
        return None;
    }
    let inputs = values.subarray(0, input as u32).to_vec();
    let (q, kv) = inputs.split_at(q_len);
    let (k, v) = kv.split_at(kv_len);
    let request = HeadsRequest {
        q,
        k,
        v,
        heads,
        queries,
        keys,
        d_head,
        offset: word(OFFSET)?,
        scale: f32::from_bits(load(header, SCALE).cast_unsigned()),
    };
    let chunks = head_chunks(heads);
    let sizes: Vec<usize> = (chunks.iter())
        .map(|chunk| chunk.len() * request.z_per_head())
        .collect();
    let written = take_chunks(header, values, input, &sizes, |chunk, into| {
        let heads = request.of_heads(chunks[chunk].clone())?;
        into.extend(heads_of_attention(&heads).ok()?);
        Some(())
    })?;
    store(header, ANSWERED, i32::try_from(written).ok()?);
    Some(())
}

/// Takes chunks of the product asked in the buffer until none is left (or the next would
/// not fit), computes them and writes them after `a`, one after another, and how many
/// values they are; `None` where the request does not match a weight of `table` or the
/// buffer (found before any chunk is taken).
fn answer_columns(header: &Int32Array, values: &Float32Array, table: &WeightTable) -> Option<()> {
    let word = |at| usize::try_from(load(header, at)).ok();
    let (number, m, k, n) = (word(NUMBER)?, word(ROWS)?, word(DEPTH)?, word(WIDTH)?);
    let transposed = load(header, TRANSPOSED) != 0;
    let input = m * k;
    if input > values.length() as usize {
        return None;
    }
    let a = values.subarray(0, input as u32).to_vec();
    let chunks = product_chunks(m, k, n, transposed);
    let sizes: Vec<usize> = chunks.iter().map(|chunk| chunk.values(m, n)).collect();
    let written = table.with_weight(number, |weight| {
        if weight.len() != k * n {
            return None;
        }
        let parts = ProductParts::new(&a, m, weight, n, transposed);
        take_chunks(header, values, input, &sizes, |chunk, into| {
            parts.chunk_values(&chunks[chunk], into);
            Some(())
        })
    });
    // No such weight, a weight of another shape, or one the table cannot read.
    let Ok(Some(Some(written))) = written else {
        return None;
    };
    store(header, ANSWERED, i32::try_from(written).ok()?);
    Some(())
}

/// The helper's turn at the chunks of a request whose inputs are the first `input` values:
/// takes the next chunk from the header's counter while the largest left (`sizes` are the
/// chunks' values) fits the room after the inputs and those written, computes it
/// (`compute(chunk, into)`, `into` empty) and writes it after them; how many values it
/// wrote, or `None` where a chunk could not be computed.
fn take_chunks(
    header: &Int32Array,
    values: &Float32Array,
    input: usize,
    sizes: &[usize],
    mut compute: impl FnMut(usize, &mut Vec<f32>) -> Option<()>,
) -> Option<usize> {
    let room = (values.length() as usize).checked_sub(input)?;
    let mut written = 0;
    let mut chunk_values = Vec::new();
    loop {
        // The chunk taken next is this one or a later one: the largest left must fit.
        let next = usize::try_from(load(header, NEXT_CHUNK)).ok()?;
        let largest = (sizes.get(next..)).and_then(|left| left.iter().copied().max());
        if largest.is_none_or(|largest| written + largest > room) {
            return Some(written);
        }
        let taken = usize::try_from(Atomics::add(header, NEXT_CHUNK, 1).ok()?).ok()?;
        let Some(&size) = sizes.get(taken) else {
            return Some(written);
        };
        chunk_values.clear();
        compute(taken, &mut chunk_values)?;
        if chunk_values.len() != size {
            return None;
        }
        let at = (input + written) as u32;
        values
            .subarray(at, at + size as u32)
            .copy_from(&chunk_values);
        written += size;
    }
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

    /// When, in this thread, the helper's own step picks a product up, beside the model's
    /// side taking chunks.
    #[derive(Clone, Copy, Debug)]
    enum HelperStep {
        /// Before the model's side takes any chunk: it takes all that fit its room.
        First,
        /// After the model's side took one.
        AfterOneChunk,
        /// After the model's side took them all and took the request back: never.
        TooLate,
    }

    /// The model's side of the buffer, with the helper's own step taken in this thread at
    /// the moment `step` says.
    struct Stepping<'a> {
        model_side: &'a SharedColumns,
        helper: (&'a Int32Array, &'a Float32Array, &'a WeightTable),
        step: HelperStep,
        /// Chunks the model's side took.
        taken: Cell<usize>,
    }

    impl Stepping<'_> {
        fn helper_answers(&self) -> bool {
            let (header, values, table) = self.helper;
            answer_if_asked(header, values, table)
        }
    }

    impl ColumnHelper for Stepping<'_> {
        fn start(&self, request: &ColumnRequest<'_>) -> bool {
            let started = self.model_side.start(request);
            if started && matches!(self.step, HelperStep::First) {
                assert!(self.helper_answers());
            }
            started
        }

        fn start_heads(&self, request: &HeadsRequest<'_>) -> bool {
            let started = self.model_side.start_heads(request);
            if started && matches!(self.step, HelperStep::First) {
                assert!(self.helper_answers());
            }
            started
        }

        fn take_chunk(&self) -> Option<usize> {
            if matches!(self.step, HelperStep::AfterOneChunk) && self.taken.get() == 1 {
                assert!(self.helper_answers());
            }
            let chunk = self.model_side.take_chunk();
            self.taken
                .set(self.taken.get() + usize::from(chunk.is_some()));
            chunk
        }

        fn finish(&self, into: &mut [f32]) -> Result<(), String> {
            let answer = self.model_side.finish(into);
            if matches!(self.step, HelperStep::TooLate) {
                assert!(!self.helper_answers(), "a request taken back was answered");
            }
            answer
        }
    }

    /// `a · weight` (`weight` `[k, n]`, or `[n, k]` where `transposed`) shared through the
    /// buffer as `column_split` shares it, the helper's step taken at `step`; and how many
    /// chunks the helper computed.
    fn through_the_buffer(
        model_side: &SharedColumns,
        helper: (&Int32Array, &Float32Array, &WeightTable),
        (a, m): (&[f32], usize),
        (weight, n, transposed): (&Tensor, usize, bool),
        step: HelperStep,
    ) -> (Vec<f32>, usize) {
        let stepping = Stepping {
            model_side,
            helper,
            step,
            taken: Cell::new(0),
        };
        let order = if transposed {
            crate::many_rows::Order::NByK
        } else {
            crate::many_rows::Order::KByN
        };
        let (product, answered) = crate::column_split::with_values(weight, |own| {
            crate::column_split::product_with(&stepping, a, m, own, n, order)
        })
        .unwrap()
        .expect("not asked");
        answered.unwrap();
        let k = a.len() / m;
        let helpers = product_chunks(m, k, n, transposed).len() - stepping.taken.get();
        (product, helpers)
    }

    /// Products asked through the buffer, answered in this thread by the helper's own step
    /// with another copy of the weights, whenever it picks them up: put together, the
    /// chunks are the whole product's to the bit, for a weight `[k, n]` and one read
    /// transposed. The helper takes no chunk past its room; one picked up late takes none
    /// and a request taken back is not answered. A request the helper cannot answer (its
    /// weight of another shape) is an error, and one too large is not sent.
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
        let helper = (&header, &values_view, &helper_table);
        // 16 rows in chunks of columns, and 2 rows of a weight `[k, n]` in two shares of
        // its rows.
        for (m, weight, transposed, n) in [
            (16, &this_side[0], false, 200),
            (16, &this_side[2], true, 300),
            (2, &this_side[0], false, 200),
        ] {
            let order = if transposed {
                crate::many_rows::Order::NByK
            } else {
                crate::many_rows::Order::KByN
            };
            let a = &a[..m * 96];
            let whole = if m == 16 {
                crate::simd_tiles::product(a, m, &values(weight), n, order)
            } else {
                crate::few_rows::rows_times(a, 96, &values(weight), n)
            };
            let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            let chunks = product_chunks(m, 96, n, transposed).len();
            for step in [
                HelperStep::First,
                HelperStep::AfterOneChunk,
                HelperStep::TooLate,
            ] {
                let (product, helpers) =
                    through_the_buffer(&model_side, helper, (a, m), (weight, n, transposed), step);
                assert!(bits(&product) == bits(&whole), "{m} × {n}, {step:?}");
                match (step, m) {
                    // Its room holds half the widest product's values: a part of either.
                    (HelperStep::First, 16) => {
                        assert!(0 < helpers && helpers < chunks, "{helpers}");
                    }
                    // Both shares fit: the helper took both, this side none.
                    (HelperStep::First, _) => assert_eq!(helpers, chunks, "{step:?}"),
                    (HelperStep::AfterOneChunk, _) => assert!(0 < helpers, "{step:?}"),
                    (HelperStep::TooLate, _) => assert_eq!(helpers, 0, "{step:?}"),
                }
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
        while model_side.take_chunk().is_some() {}
        assert!(model_side.finish(&mut vec![0.0; 16 * 300]).is_err());
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

    /// Heads of an attention through the buffer as `column_split` shares them, answered in
    /// this thread by the helper's own step whenever it picks them up: their `z` is the
    /// unshared attention's to the bit, with a causal offset and more keys than queries
    /// too. The helper takes no chunk past its room, one picked up late takes none, and
    /// heads that do not fit are not sent.
    #[wasm_bindgen_test::wasm_bindgen_test]
    fn heads_through_the_buffer_are_the_unshared_attentions() {
        let table = WeightTable::new(weights(1)).unwrap();
        let buffer = SharedArrayBuffer::new(u32::try_from(buffer_bytes(16, 96, 300)).unwrap());
        let mut model_side =
            SharedColumns::new(&buffer, WeightTable::new(weights(1)).unwrap()).unwrap();
        model_side.worth_a_wake_up = 0;
        let (header, values_view) = views(&buffer).unwrap();
        store(&header, FINGERPRINT, table.fingerprint().cast_signed());
        let tensor = |heads, positions, seed: usize| {
            let values: Vec<f32> = (0..heads * positions * 16)
                .map(|i| ((i * 31 + seed) % 23) as f32 / 23.0 - 0.5)
                .collect();
            Tensor::from_vec(values, (1, heads, positions, 16), &Device::Cpu).unwrap()
        };
        let bits = |t: &Tensor| -> Vec<u32> { values(t).into_iter().map(f32::to_bits).collect() };
        // Six heads, in five chunks. Of 12 queries, `q`, `k` and `v` leave the helper room
        // for the `z` of two heads and a half: it takes the first chunk only.
        for (queries, keys, offset) in [(12, 12, 0), (3, 12, 9)] {
            let (q, k, v) = (
                tensor(6, queries, 1),
                tensor(6, keys, 2),
                tensor(6, keys, 3),
            );
            let whole = crate::attention::attend_heads(&q, &k, &v, offset, 0.25).unwrap();
            for step in [
                HelperStep::First,
                HelperStep::AfterOneChunk,
                HelperStep::TooLate,
            ] {
                let stepping = Stepping {
                    model_side: &model_side,
                    helper: (&header, &values_view, &table),
                    step,
                    taken: Cell::new(0),
                };
                let (z, answered) =
                    crate::column_split::heads_with(&stepping, &q, &k, &v, offset, 0.25)
                        .unwrap()
                        .expect("not asked");
                answered.unwrap();
                assert!(
                    bits(&z) == bits(&whole),
                    "{queries} queries from {offset}, {step:?}"
                );
                let helpers = 5 - stepping.taken.get();
                match (step, queries) {
                    (HelperStep::First, 12) => assert_eq!(helpers, 1, "past its room"),
                    (HelperStep::First, _) => assert_eq!(helpers, 5, "{step:?}"),
                    (HelperStep::AfterOneChunk, _) => assert!(0 < helpers && helpers < 5),
                    (HelperStep::TooLate, _) => assert_eq!(helpers, 0, "{step:?}"),
                }
            }
        }
        // 2 heads of 300 positions do not fit a buffer for products of 16 rows.
        let long = vec![0.5_f32; 2 * 300 * 16];
        let too_long = HeadsRequest {
            q: &long,
            k: &long,
            v: &long,
            heads: 2,
            queries: 300,
            keys: 300,
            d_head: 16,
            offset: 0,
            scale: 0.25,
        };
        assert!(!model_side.start_heads(&too_long));
        assert!(!answer_if_asked(&header, &values_view, &table));
    }

    /// A product too small to be worth waking a sleeping helper for is not sent, and the
    /// helper is woken; the next one, while it is awake, is sent, and so is one worth a
    /// wake-up whenever. A wake-up no request followed is not repeated until one does.
    #[wasm_bindgen_test::wasm_bindgen_test]
    fn a_small_product_wakes_a_sleeping_helper_instead_of_waiting_for_it() {
        let weights = vec![
            Tensor::from_vec(vec![0.5_f32; 64 * 64], (64, 64), &Device::Cpu).unwrap(),
            Tensor::from_vec(vec![0.25_f32; 1024 * 4096], (1024, 4096), &Device::Cpu).unwrap(),
        ];
        let table = WeightTable::new(weights.clone()).unwrap();
        let fingerprint = table.fingerprint().cast_signed();
        // Room for a few rows' share of the larger weight's depth.
        let buffer = SharedArrayBuffer::new(u32::try_from(buffer_bytes(8, 1024, 4096)).unwrap());
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
                })
            })
            .unwrap();
            if sent {
                // Every chunk taken here, and the request taken back from the helper, so
                // that the next request may go.
                while model_side.take_chunk().is_some() {}
                model_side.finish(&mut []).unwrap();
            }
            sent
        };
        let wake_ups = || model_side.wake_ups.get();
        // The helper sleeps.
        assert!(
            !ask(&weights[0], 4),
            "a small product sent to a sleeping helper"
        );
        assert_eq!(wake_ups(), 1, "a sleeping helper not woken");
        // Woken, it spins.
        store(&header, AWAKE, 1);
        assert!(
            ask(&weights[0], 4),
            "a small product not sent to a helper awake"
        );
        store(&header, AWAKE, 0);
        assert!(
            ask(&weights[1], 4),
            "a large product not sent to a sleeping helper"
        );
        assert!(!ask(&weights[0], 4));
        assert_eq!(wake_ups(), 2);
        // It went back to sleep with nothing asked: not woken again by a small product
        // until a request goes.
        assert!(!ask(&weights[0], 4));
        assert_eq!(wake_ups(), 2, "woken again after a wake-up in vain");
        assert!(ask(&weights[1], 4));
        assert!(!ask(&weights[0], 4));
        assert_eq!(wake_ups(), 3, "not woken after a request went");
    }
}
