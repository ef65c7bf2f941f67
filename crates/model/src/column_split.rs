//! Products of many rows shared with a helper that holds the same weights. A page has one
//! core per wasm instance (threads inside one need a nightly toolchain), so its second
//! core is a second worker with its own copy of the model: while a helper is installed on
//! this thread ([`share_with`]), a product of a weight the helper holds is cut into chunks
//! ([`product_chunks`]: of columns, or for a few rows of a weight `[k, n]` two shares of
//! its rows), and this thread and the helper each take the next chunk left until none is:
//! whichever side runs slower (a core the browser needs for a while, a helper woken late)
//! takes fewer, and both finish within a small chunk of each other.
//!
//! Every chunk comes from the kernel an unshared product of as many rows takes
//! ([`ProductParts`]), which sums each column alike whichever columns are asked for, so a
//! shared product is the unshared one to the bit, however its chunks fell, and a graph or
//! a steered pair comes out the same with a helper or without. Where the helper declines,
//! fails or stops answering, this thread computes its chunks itself and stops sharing: the
//! product is never lost.
//!
//! An attention with nothing hooked between its queries and `z` is cut the same way, in
//! chunks of heads ([`head_chunks`], [`shared_heads`]): each head's `z` is the same
//! whichever heads come with it.
//!
//! Which weight is which is a [`WeightTable`], built alike on both sides from the model's
//! weights in order (`Model::product_weights`; a weight's address differs between two
//! wasm instances, its place in the list does not), and checked alike by its fingerprint.

use std::cell::RefCell;
use std::ops::Range;
use std::rc::Rc;

use candle_core::{CpuStorage, Storage, Tensor};

use crate::many_rows::Order;
use crate::{ModelError, Result};
use crate::{few_rows, simd_tiles};

/// Multiply-adds below which a product is not shared: a helper's wake-up and the copies
/// to and from it (tens of microseconds) cost more than half of a product this small. (At
/// `1 << 20`, GPT-2 small's `[768, 768]` weights went unshared at one token; in Chromium,
/// at this size its 1-token pass with a helper took 18.1 ms against 19.2.)
const MIN_SHARED_WORK: usize = 1 << 19;

/// Columns of the smallest chunk: two tiles' width, and a cache line of f32 values (so
/// that the two sides seldom read the same line of a weight `[k, n]`).
const SMALLEST_CHUNK: usize = 16;

/// The chunks the `n` columns of a shared product of `m` rows are taken in, in order.
///
/// Of many rows, each a quarter of the columns still left, on a multiple of
/// [`SMALLEST_CHUNK`] and at least that, the last one all that is left (under two smallest
/// chunks): large chunks first cost little in calls, small ones last keep the side that
/// finishes first from waiting long for the other.
///
/// Of a few rows, two halves: such a product is bound by reading the weight (the rows of
/// an unembedding `[n, k]`; a weight `[k, n]` is cut by its rows instead, see
/// [`product_chunks`]). The side that finishes its half first still takes the other where
/// the helper has not picked it up.
#[must_use]
pub fn column_chunks(m: usize, n: usize) -> Vec<Range<usize>> {
    if m <= few_rows::FEW_ROWS {
        let cut = n.div_ceil(2).next_multiple_of(SMALLEST_CHUNK);
        return if cut < n {
            vec![0..cut, cut..n]
        } else {
            (n > 0).then_some(0..n).into_iter().collect()
        };
    }
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < n {
        let left = n - start;
        let width = if left < 2 * SMALLEST_CHUNK {
            left
        } else {
            (left / 4).next_multiple_of(SMALLEST_CHUNK).min(left)
        };
        chunks.push(start..start + width);
        start += width;
    }
    chunks
}

/// A chunk of a shared product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// Columns of the product: `m × width` values, row by row, put in their place.
    Columns(Range<usize>),
    /// Rows of a weight `[k, n]` (a few rows' product, `few_rows::depth_halves`): the
    /// sum over them, `m × n` values, added to the other share.
    Depth(Range<usize>),
}

impl Chunk {
    /// How many values the chunk of a product of `m` rows and `n` columns is.
    #[must_use]
    pub fn values(&self, m: usize, n: usize) -> usize {
        match self {
            Self::Columns(columns) => m * columns.len(),
            Self::Depth(_) => m * n,
        }
    }
}

/// The chunks a shared product of `a` `[m, k]` and a weight of `n` columns (`[k, n]`, or
/// `[n, k]` where `transposed`) is taken in, in order: of a few rows and a weight `[k, n]`,
/// the two shares of its rows that the unshared kernel adds (`few_rows::depth_halves`),
/// each read in one run; otherwise [`column_chunks`].
#[must_use]
pub fn product_chunks(m: usize, k: usize, n: usize, transposed: bool) -> Vec<Chunk> {
    if m <= few_rows::FEW_ROWS && !transposed {
        return (few_rows::depth_halves(k).into_iter())
            .filter(|rows| !rows.is_empty())
            .map(Chunk::Depth)
            .collect();
    }
    column_chunks(m, n)
        .into_iter()
        .map(Chunk::Columns)
        .collect()
}

/// The chunks the `count` heads of a shared attention are taken in, in order: each a
/// quarter of the heads still left (rounded up), the last ones a head each. A head's work
/// is large beside the cost of a call (at the size a shared attention has, thousands of
/// multiply-adds), so the two sides finish within about a head of each other.
#[must_use]
pub fn head_chunks(count: usize) -> Vec<Range<usize>> {
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < count {
        let width = (count - start).div_ceil(4);
        chunks.push(start..start + width);
        start += width;
    }
    chunks
}

/// One product that a helper is asked to share: it takes chunks of it
/// ([`product_chunks`]) until none is left.
#[derive(Debug, Clone)]
pub struct ColumnRequest<'a> {
    /// `a`, `[m, k]`, row by row.
    pub a: &'a [f32],
    /// Rows of `a`.
    pub m: usize,
    /// The weight, this side's copy: `[k, n]`, or `[n, k]` where `transposed`.
    pub weight: &'a [f32],
    /// Columns of the whole product.
    pub n: usize,
    /// Whether `weight` is `[n, k]`, read transposed (an unembedding).
    pub transposed: bool,
}

/// One attention that a helper is asked to share: it takes chunks of its heads
/// ([`head_chunks`]) until none is left. Queries, keys and values of every head, each
/// `[heads, positions, d_head]`, nothing hooked between them and `z`.
#[derive(Debug, Clone)]
pub struct HeadsRequest<'a> {
    /// Queries, `[heads, queries, d_head]`.
    pub q: &'a [f32],
    /// Keys, `[heads, keys, d_head]`.
    pub k: &'a [f32],
    /// Values, `[heads, keys, d_head]`.
    pub v: &'a [f32],
    /// Heads of the attention (every batch's, one after another).
    pub heads: usize,
    /// Query positions per head.
    pub queries: usize,
    /// Key positions per head (more than the queries after a key/value cache).
    pub keys: usize,
    /// Width of a head.
    pub d_head: usize,
    /// Position of the first query (the causal mask's).
    pub offset: usize,
    /// What each dot product is multiplied by (`1/√d_head`).
    pub scale: f32,
}

impl HeadsRequest<'_> {
    /// Multiply-adds of the heads asked for (both products, masked keys included).
    #[must_use]
    pub fn work(&self) -> usize {
        2 * self.heads * self.queries * self.keys * self.d_head
    }

    /// Values of `z` per head.
    #[must_use]
    pub fn z_per_head(&self) -> usize {
        self.queries * self.d_head
    }

    /// The request for heads `heads` of this one only; `None` where they are not all its
    /// own or its values are shorter than its shapes say.
    #[must_use]
    pub fn of_heads(&self, heads: Range<usize>) -> Option<HeadsRequest<'_>> {
        fn part<'v>(values: &'v [f32], heads: &Range<usize>, per_head: usize) -> Option<&'v [f32]> {
            values.get(heads.start * per_head..heads.end.checked_mul(per_head)?)
        }
        if heads.end > self.heads {
            return None;
        }
        let (q_per_head, kv_per_head) = (self.queries * self.d_head, self.keys * self.d_head);
        Some(HeadsRequest {
            q: part(self.q, &heads, q_per_head)?,
            k: part(self.k, &heads, kv_per_head)?,
            v: part(self.v, &heads, kv_per_head)?,
            heads: heads.len(),
            ..*self
        })
    }
}

/// A helper that computes chunks of a product's columns with its own copy of the weights,
/// and the heads of an attention.
pub trait ColumnHelper {
    /// Hands `request` to the helper, which takes chunks of it from then on;
    /// false where it cannot take it (it does not hold the weight, or the values do not
    /// fit), and then nothing was sent.
    fn start(&self, request: &ColumnRequest<'_>) -> bool;

    /// The next chunk of what was started last for this thread (its place in
    /// [`product_chunks`] or [`head_chunks`]), one the helper has not taken; `None` once
    /// every chunk is taken.
    fn take_chunk(&self) -> Option<usize>;

    /// Hands `request` to the helper, which takes chunks of its heads from then on; false
    /// where it cannot take it, and then nothing was sent. A helper that only computes
    /// columns declines.
    fn start_heads(&self, request: &HeadsRequest<'_>) -> bool {
        let _ = request;
        false
    }

    /// What was started last into `into`, once this thread has taken chunks until none
    /// was left: the chunks it did not take, in order, one after another, each its
    /// [`Chunk::values`] row by row, or the `z` of a chunk's heads, `[heads, queries,
    /// d_head]`. An error where the helper failed or stopped answering.
    fn finish(&self, into: &mut [f32]) -> std::result::Result<(), String>;
}

thread_local! {
    /// The helper this thread's products are shared with, if any.
    static HELPER: RefCell<Option<Rc<dyn ColumnHelper>>> = const { RefCell::new(None) };
    /// Why sharing stopped last, if it did on its own.
    static STOPPED: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Shares this thread's products of many rows with `helper` from now on. While a helper is
/// installed, every product of many rows is computed in the browser's tiles, natively too
/// (so that the tests compare the same sums).
pub fn share_with(helper: Rc<dyn ColumnHelper>) {
    HELPER.with_borrow_mut(|installed| *installed = Some(helper));
    STOPPED.with_borrow_mut(|stopped| *stopped = None);
}

/// Stops sharing this thread's products; the helper that was installed, if any.
pub fn stop_sharing() -> Option<Rc<dyn ColumnHelper>> {
    HELPER.with_borrow_mut(Option::take)
}

/// Why sharing stopped without [`stop_sharing`] (the helper failed or stopped answering),
/// since it was last started.
#[must_use]
pub fn why_sharing_stopped() -> Option<String> {
    STOPPED.with_borrow(Clone::clone)
}

/// Whether a helper is installed on this thread.
#[must_use]
pub fn sharing() -> bool {
    HELPER.with_borrow(Option::is_some)
}

/// `a · b` (`a` `[m, k]`, `b` as `order` says), its chunks of columns shared with the
/// installed helper; `None` where no helper is installed, the product is too small to
/// share, or the helper declines it.
pub(crate) fn shared_product(
    a: &[f32],
    m: usize,
    b: &[f32],
    n: usize,
    order: Order,
) -> Option<Vec<f32>> {
    let helper = HELPER.with_borrow(Clone::clone)?;
    if a.len() * n < MIN_SHARED_WORK {
        return None;
    }
    let (out, answered) = product_with(&*helper, a, m, b, n, order)?;
    if let Err(why) = answered {
        stop_sharing();
        STOPPED.with_borrow_mut(|stopped| *stopped = Some(why));
    }
    Some(out)
}

/// `a · b` as [`shared_product`] computes it with `helper`, whatever its size: the
/// product, and whether the helper answered (where it did not, this thread computed its
/// chunks); `None` where it has a single chunk or the helper declines it.
pub(crate) fn product_with(
    helper: &dyn ColumnHelper,
    a: &[f32],
    m: usize,
    b: &[f32],
    n: usize,
    order: Order,
) -> Option<(Vec<f32>, std::result::Result<(), String>)> {
    let transposed = order == Order::NByK;
    let chunks = product_chunks(m, a.len() / m.max(1), n, transposed);
    if chunks.len() < 2 {
        return None;
    }
    let request = ColumnRequest {
        a,
        m,
        weight: b,
        n,
        transposed,
    };
    if !helper.start(&request) {
        return None;
    }
    let parts = ProductParts::new(a, m, b, n, transposed);
    // Each chunk is added or copied into its place, so none is joined afterwards.
    let mut out = vec![0.0_f32; m * n];
    let mut own = vec![false; chunks.len()];
    while let Some(chunk) = helper.take_chunk() {
        let Some(part) = chunks.get(chunk) else {
            break;
        };
        parts.chunk_into(part, &mut out);
        own[chunk] = true;
    }
    let theirs: Vec<Chunk> = (chunks.into_iter().zip(own))
        .filter_map(|(chunk, own)| (!own).then_some(chunk))
        .collect();
    let mut values = vec![0.0_f32; theirs.iter().map(|chunk| chunk.values(m, n)).sum::<usize>()];
    let answered = helper.finish(&mut values);
    let mut from = 0;
    for chunk in theirs {
        if answered.is_ok() {
            let len = chunk.values(m, n);
            put_in_place(&chunk, &values[from..from + len], &mut out, n);
            from += len;
        } else {
            parts.chunk_into(&chunk, &mut out);
        }
    }
    Some((out, answered))
}

/// `values` of `chunk`, computed by a helper, into the product `out` (`n` columns a row):
/// columns copied into their place, a share of the depth added.
fn put_in_place(chunk: &Chunk, values: &[f32], out: &mut [f32], n: usize) {
    match chunk {
        Chunk::Columns(columns) => {
            let width = columns.len();
            for (r, row) in values.chunks_exact(width.max(1)).enumerate() {
                out[r * n + columns.start..][..width].copy_from_slice(row);
            }
        }
        Chunk::Depth(_) => {
            for (total, part) in out.iter_mut().zip(values) {
                *total += part;
            }
        }
    }
}

/// `z` (`[batch, head, query, d_head]`) of an attention with nothing hooked between `q`
/// and `z` (`q`, `k` and `v` contiguous f32 `[batch, head, position, d_head]`), its chunks
/// of heads shared with the installed helper; `None` where no helper is installed, the
/// attention is too small to share, or the helper declines it.
///
/// # Errors
/// Tensors not laid out as above.
pub(crate) fn shared_heads(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    offset: usize,
    scale: f32,
) -> Result<Option<Tensor>> {
    let Some(helper) = HELPER.with_borrow(Clone::clone) else {
        return Ok(None);
    };
    let (batch, heads, queries, d_head) = q.dims4()?;
    let keys = k.dim(2)?;
    if 2 * batch * heads * queries * keys * d_head < MIN_SHARED_WORK {
        return Ok(None);
    }
    let Some((z, answered)) = heads_with(&*helper, q, k, v, offset, scale)? else {
        return Ok(None);
    };
    if let Err(why) = answered {
        stop_sharing();
        STOPPED.with_borrow_mut(|stopped| *stopped = Some(why));
    }
    Ok(Some(z))
}

/// `z` as [`shared_heads`] computes it with `helper`, whatever its size, and whether the
/// helper answered (where it did not, this thread computed its chunks); `None` where the
/// attention has a single head or the helper declines it.
///
/// # Errors
/// Tensors not laid out as [`shared_heads`] says.
pub(crate) fn heads_with(
    helper: &dyn ColumnHelper,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    offset: usize,
    scale: f32,
) -> Result<Option<(Tensor, std::result::Result<(), String>)>> {
    let (batch, heads, queries, d_head) = q.dims4()?;
    let keys = k.dim(2)?;
    // Every head of every batch in one row of heads.
    let count = batch * heads;
    let chunks = head_chunks(count);
    if chunks.len() < 2 {
        return Ok(None);
    }
    let flat = |x: &Tensor, positions| x.reshape((1, count, positions, d_head));
    let (q, k, v) = (flat(q, queries)?, flat(k, keys)?, flat(v, keys)?);
    let started = with_values(&q, |q_values| {
        with_values(&k, |k_values| {
            with_values(&v, |v_values| {
                helper.start_heads(&HeadsRequest {
                    q: q_values,
                    k: k_values,
                    v: v_values,
                    heads: count,
                    queries,
                    keys,
                    d_head,
                    offset,
                    scale,
                })
            })
        })
    })???;
    if !started {
        return Ok(None);
    }
    let z_of = |heads: &Range<usize>| {
        let of = |x: &Tensor| x.narrow(1, heads.start, heads.len());
        crate::attention::attend_heads(&of(&q)?, &of(&k)?, &of(&v)?, offset, scale)
    };
    // Each chunk's `z`; this thread's computed as it takes them, every one before anything
    // returns, so that the helper's answer is always taken.
    let mut z: Vec<Option<Result<Tensor>>> = chunks.iter().map(|_| None).collect();
    while let Some(chunk) = helper.take_chunk() {
        let Some(heads) = chunks.get(chunk) else {
            break;
        };
        z[chunk] = Some(z_of(heads));
    }
    let theirs: Vec<usize> = (0..chunks.len()).filter(|&c| z[c].is_none()).collect();
    let per_head = queries * d_head;
    let mut values =
        vec![0.0_f32; per_head * theirs.iter().map(|&c| chunks[c].len()).sum::<usize>()];
    let answered = helper.finish(&mut values);
    let mut from = 0;
    for chunk in theirs {
        let heads = &chunks[chunk];
        z[chunk] = Some(if answered.is_ok() {
            let len = heads.len() * per_head;
            let values = values[from..from + len].to_vec();
            from += len;
            Tensor::from_vec(values, (1, heads.len(), queries, d_head), q.device())
                .map_err(Into::into)
        } else {
            // Before sharing stops: natively the kernels are the tiles only while it lasts.
            z_of(heads)
        });
    }
    // Every chunk is this thread's or the helper's (one missing would fail the reshape).
    let z = z.into_iter().flatten().collect::<Result<Vec<Tensor>>>()?;
    let z = Tensor::cat(&z, 1)?.reshape((batch, heads, queries, d_head))?;
    Ok(Some((z, answered)))
}

/// What a helper computes for a heads request: `z` of those heads, `[heads, queries,
/// d_head]`, in the kernels an unshared attention takes, so that both sides' heads are the
/// unshared attention's.
///
/// # Errors
/// Values that are not of the request's shapes.
pub fn heads_of_attention(request: &HeadsRequest<'_>) -> Result<Vec<f32>> {
    let HeadsRequest {
        heads,
        queries,
        keys,
        d_head,
        ..
    } = *request;
    let device = candle_core::Device::Cpu;
    let tensor = |values: &[f32], positions| {
        Tensor::from_slice(values, (1, heads, positions, d_head), &device)
    };
    let (q, k, v) = (
        tensor(request.q, queries)?,
        tensor(request.k, keys)?,
        tensor(request.v, keys)?,
    );
    let z = crate::attention::attend_heads(&q, &k, &v, request.offset, request.scale)?;
    Ok(z.flatten_all()?.to_vec1()?)
}

/// The values of `chunk` of `a · weight` (`weight` `[k, n]`, or `[n, k]` where
/// `transposed`), as a helper computes them ([`Chunk::values`], row by row).
#[must_use]
pub fn chunk_of_product(
    a: &[f32],
    m: usize,
    weight: &[f32],
    n: usize,
    transposed: bool,
    chunk: &Chunk,
) -> Vec<f32> {
    let mut values = Vec::new();
    ProductParts::new(a, m, weight, n, transposed).chunk_values(chunk, &mut values);
    values
}

/// One product computed chunk by chunk (by either side of a helper), in the kernel an
/// unshared product of `m` rows takes (a few rows' kernels, or the tiles, `a` laid out for
/// them once), so that the chunks put together are the unshared product.
pub(crate) struct ProductParts<'a> {
    a: &'a [f32],
    m: usize,
    weight: &'a [f32],
    n: usize,
    transposed: bool,
    /// `a` laid out for the tiles; `None` for a few rows.
    tiles: Option<simd_tiles::TileRows<'a>>,
}

impl<'a> ProductParts<'a> {
    /// `a · weight` for `a` `[m, k]` and `weight` `[k, n]`, or `[n, k]` where
    /// `transposed`.
    pub(crate) fn new(
        a: &'a [f32],
        m: usize,
        weight: &'a [f32],
        n: usize,
        transposed: bool,
    ) -> Self {
        let order = if transposed { Order::NByK } else { Order::KByN };
        let tiles = (m > few_rows::FEW_ROWS).then(|| simd_tiles::TileRows::new(a, m, order));
        Self {
            a,
            m,
            weight,
            n,
            transposed,
            tiles,
        }
    }

    /// `chunk` of the product into the whole product `out` (`m × n`, zeros where nothing
    /// was put yet): columns in their place, a share of the depth added.
    pub(crate) fn chunk_into(&self, chunk: &Chunk, out: &mut [f32]) {
        match chunk {
            Chunk::Columns(columns) => {
                self.columns_into(columns.clone(), &mut out[columns.start..], self.n);
            }
            Chunk::Depth(rows) => self.add_depth(rows.clone(), out),
        }
    }

    /// The values of `chunk` alone ([`Chunk::values`]) into `into`, which is empty.
    pub(crate) fn chunk_values(&self, chunk: &Chunk, into: &mut Vec<f32>) {
        into.resize(chunk.values(self.m, self.n), 0.0);
        match chunk {
            Chunk::Columns(columns) => self.columns_into(columns.clone(), into, columns.len()),
            Chunk::Depth(rows) => self.add_depth(rows.clone(), into),
        }
    }

    /// Columns `columns` of the product, row `r`'s into `out[r * stride..]`, which holds
    /// zeros there (`stride` ≥ `columns.len()`).
    fn columns_into(&self, columns: Range<usize>, out: &mut [f32], stride: usize) {
        if let Some(tiles) = &self.tiles {
            tiles.columns_into(self.weight, self.n, columns, out, stride);
            return;
        }
        let (m, width) = (self.m, columns.len());
        let k = self.a.len() / m.max(1);
        let values = if self.transposed {
            few_rows::rows_times_transposed(self.a, k, self.weight, columns)
        } else {
            // A few rows of a weight `[k, n]` are shared by depth: columns of it only
            // where asked for alone.
            let whole = few_rows::rows_times(self.a, k, self.weight, self.n);
            (whole.chunks_exact(self.n.max(1)))
                .flat_map(|row| &row[columns.clone()])
                .copied()
                .collect()
        };
        for (r, row) in values.chunks_exact(width.max(1)).enumerate() {
            out[r * stride..][..width].copy_from_slice(row);
        }
    }

    /// The sum over rows `rows` of a weight `[k, n]` (a few rows' kernel), added into
    /// `out` (`m × n`).
    fn add_depth(&self, rows: Range<usize>, out: &mut [f32]) {
        let k = self.a.len() / self.m.max(1);
        few_rows::add_rows_times(self.a, k, self.weight, self.n, rows, out);
    }
}

/// A model's weights by number, the same on both sides of a helper: built from the same
/// list of tensors (a model's named weights, in order), a weight's number names the same
/// weight in the other worker's copy.
#[derive(Debug)]
pub struct WeightTable {
    /// Each weight's tensor with the address and length of its values.
    weights: Vec<(usize, usize, Tensor)>,
}

impl WeightTable {
    /// The table of `weights` (contiguous f32 tensors on the CPU), numbered in order.
    ///
    /// # Errors
    /// A weight that is not a contiguous f32 tensor on the CPU.
    pub fn new(weights: impl IntoIterator<Item = Tensor>) -> Result<Self> {
        let weights = weights
            .into_iter()
            .map(|tensor| {
                let (address, len) =
                    with_values(&tensor, |values| (values.as_ptr().addr(), values.len()))?;
                Ok((address, len, tensor))
            })
            .collect::<Result<_>>()?;
        Ok(Self { weights })
    }

    /// The number of the weight whose values `values` are (the same memory, not equal
    /// values), if it is one of the table's.
    #[must_use]
    pub fn number_of(&self, values: &[f32]) -> Option<usize> {
        let (address, len) = (values.as_ptr().addr(), values.len());
        self.weights
            .iter()
            .position(|&(a, l, _)| a == address && l == len)
    }

    /// `f` of weight `number`'s values; `None` where the table has no such weight.
    ///
    /// # Errors
    /// Never for a table's own weights (they were checked when it was made).
    pub fn with_weight<R>(&self, number: usize, f: impl FnOnce(&[f32]) -> R) -> Result<Option<R>> {
        match self.weights.get(number) {
            Some((_, _, tensor)) => with_values(tensor, f).map(Some),
            None => Ok(None),
        }
    }

    /// A number that differs between tables of different weights' shapes (and is never 0):
    /// the helper publishes its table's, and a worker shares only with a helper whose
    /// table has the same, so that a weight's number names the same weight on both sides.
    #[must_use]
    pub fn fingerprint(&self) -> u32 {
        // FNV-1a over the number of weights and each one's shape.
        let mut hash: u32 = 0x811c_9dc5;
        let mut add = |value: usize| {
            for byte in (value as u64).to_le_bytes() {
                hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
            }
        };
        add(self.weights.len());
        for (_, _, tensor) in &self.weights {
            add(tensor.rank());
            tensor.dims().iter().for_each(|&d| add(d));
        }
        hash | 1
    }

    /// How many weights the table has.
    #[must_use]
    pub fn len(&self) -> usize {
        self.weights.len()
    }

    /// Whether the table has no weights.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }
}

/// `f` of a contiguous f32 CPU tensor's values.
pub(crate) fn with_values<R>(tensor: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let (storage, layout) = tensor.storage_and_layout();
    let (Storage::Cpu(CpuStorage::F32(values)), Some((start, end))) =
        (&*storage, layout.contiguous_offsets())
    else {
        return Err(ModelError::Input(format!(
            "a weight to share must be a contiguous f32 tensor on the CPU, got {:?} {:?}",
            tensor.dtype(),
            tensor.dims()
        )));
    };
    Ok(f(&values[start..end]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::cell::{Cell, RefCell};

    use super::*;
    use crate::few_rows::tests::{matrix, values};
    use crate::{Activation, Gpt2, Gpt2Config, Gpt2Weights, Hooks, Model};

    #[cfg(target_arch = "wasm32")]
    wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

    /// How the stand-in helper takes chunks beside this thread.
    #[derive(Clone, Copy, Debug)]
    enum Takes {
        /// One chunk before each of this thread's.
        EveryOther,
        /// Every chunk before this thread takes one.
        All,
        /// None: this thread takes them all.
        Nothing,
    }

    /// What a stand-in helper was asked for, its own copy.
    enum Asked {
        /// `a`, its rows, the weight's number, the product's columns, and whether the
        /// weight is read transposed.
        Columns(Vec<f32>, usize, usize, usize, bool),
        /// `q`, `k` and `v`, and the request's shapes.
        Heads(Vec<f32>, Vec<f32>, Vec<f32>, HeadsRequest<'static>),
    }

    impl Asked {
        /// How many chunks it is taken in.
        fn chunks(&self) -> usize {
            match self {
                Self::Columns(a, m, _, n, transposed) => {
                    product_chunks(*m, a.len() / m, *n, *transposed).len()
                }
                Self::Heads(.., shapes) => head_chunks(shapes.heads).len(),
            }
        }
    }

    /// A helper in this thread standing in for another worker: its own copy of the model's
    /// weights, found by number, as the browser's helper finds them.
    struct OtherCopy {
        this_side: WeightTable,
        other_side: WeightTable,
        asked_for: RefCell<Option<Asked>>,
        /// The next chunk of it not taken, and those this helper took.
        next: Cell<usize>,
        taken: RefCell<Vec<usize>>,
        asked: Cell<usize>,
        heads_asked: Cell<usize>,
        takes: Takes,
        fails: bool,
    }

    impl OtherCopy {
        fn new(
            this_side: WeightTable,
            other_side: WeightTable,
            takes: Takes,
            fails: bool,
        ) -> Rc<Self> {
            Rc::new(Self {
                this_side,
                other_side,
                asked_for: RefCell::new(None),
                next: Cell::new(0),
                taken: RefCell::new(Vec::new()),
                asked: Cell::new(0),
                heads_asked: Cell::new(0),
                takes,
                fails,
            })
        }

        /// Takes `asked` from now on, no chunk of it taken yet.
        fn begin(&self, asked: Asked) {
            self.next.set(0);
            self.taken.borrow_mut().clear();
            *self.asked_for.borrow_mut() = Some(asked);
        }

        /// This helper takes the next chunk, if one is left.
        fn take(&self, count: usize) -> bool {
            let next = self.next.get();
            if next < count {
                self.taken.borrow_mut().push(next);
                self.next.set(next + 1);
            }
            next < count
        }

        /// The values of the chunks this helper took of `asked`, one after another.
        fn computed(&self, asked: &Asked) -> std::result::Result<Vec<f32>, String> {
            let taken = self.taken.borrow();
            match asked {
                Asked::Columns(a, m, number, n, transposed) => {
                    let chunks = product_chunks(*m, a.len() / m, *n, *transposed);
                    let values = self.other_side.with_weight(*number, |weight| {
                        (taken.iter())
                            .flat_map(|&c| {
                                chunk_of_product(a, *m, weight, *n, *transposed, &chunks[c])
                            })
                            .collect::<Vec<f32>>()
                    });
                    values.unwrap().ok_or_else(|| "no such weight".to_owned())
                }
                Asked::Heads(q, k, v, shapes) => {
                    let chunks = head_chunks(shapes.heads);
                    let request = HeadsRequest { q, k, v, ..*shapes };
                    Ok((taken.iter())
                        .flat_map(|&c| {
                            let heads = request.of_heads(chunks[c].clone()).unwrap();
                            heads_of_attention(&heads).unwrap()
                        })
                        .collect())
                }
            }
        }
    }

    impl ColumnHelper for OtherCopy {
        fn start(&self, request: &ColumnRequest<'_>) -> bool {
            let Some(number) = self.this_side.number_of(request.weight) else {
                return false;
            };
            self.asked.set(self.asked.get() + 1);
            self.begin(Asked::Columns(
                request.a.to_vec(),
                request.m,
                number,
                request.n,
                request.transposed,
            ));
            true
        }

        fn take_chunk(&self) -> Option<usize> {
            let count = (self.asked_for.borrow().as_ref()).map_or(0, Asked::chunks);
            match self.takes {
                Takes::EveryOther => {
                    self.take(count);
                }
                Takes::All => while self.take(count) {},
                Takes::Nothing => {}
            }
            let next = self.next.get();
            self.next.set(next + 1);
            (next < count).then_some(next)
        }

        fn start_heads(&self, request: &HeadsRequest<'_>) -> bool {
            self.heads_asked.set(self.heads_asked.get() + 1);
            let shapes = HeadsRequest {
                q: &[],
                k: &[],
                v: &[],
                ..*request
            };
            self.begin(Asked::Heads(
                request.q.to_vec(),
                request.k.to_vec(),
                request.v.to_vec(),
                shapes,
            ));
            true
        }

        fn finish(&self, into: &mut [f32]) -> std::result::Result<(), String> {
            let asked = self.asked_for.take().ok_or("nothing was started")?;
            let values = self.computed(&asked)?;
            if self.fails {
                return Err("the helper stopped".to_owned());
            }
            into.copy_from_slice(&values);
            Ok(())
        }
    }

    fn config() -> Gpt2Config {
        Gpt2Config {
            n_layer: 2,
            n_head: 4,
            n_embd: 128,
            n_positions: 64,
            vocab_size: 1000,
            layer_norm_epsilon: 1e-5,
            n_inner: None,
            activation_function: Activation::GeluTanh,
        }
    }

    fn model() -> Gpt2 {
        Gpt2::new(config(), Gpt2Weights::init(&config(), 7).unwrap()).unwrap()
    }

    fn table(model: &Gpt2) -> WeightTable {
        WeightTable::new(Model::from(model).product_weights()).unwrap()
    }

    fn logits(model: &Gpt2, ids: &[u32]) -> Vec<u32> {
        let logits = model.forward_ids(ids, &mut Hooks::none()).unwrap();
        let values: Vec<f32> = logits.flatten_all().unwrap().to_vec1().unwrap();
        values.into_iter().map(f32::to_bits).collect()
    }

    fn helper(this_side: &Gpt2, fails: bool) -> Rc<OtherCopy> {
        OtherCopy::new(table(this_side), table(&model()), Takes::EveryOther, fails)
    }

    /// A helper that declines everything: every product in the tiles, unshared.
    struct Declines;

    impl ColumnHelper for Declines {
        fn start(&self, _: &ColumnRequest<'_>) -> bool {
            false
        }

        fn take_chunk(&self) -> Option<usize> {
            None
        }

        fn finish(&self, _: &mut [f32]) -> std::result::Result<(), String> {
            Err("nothing was started".to_owned())
        }
    }

    /// A forward pass whose large products are shared with another copy of the model
    /// gives the unshared pass's logits to the bit; the helper is asked for every linear
    /// layer and the unembedding of a long prompt, and for none of a short one's.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_shared_pass_is_the_unshared_pass_to_the_bit() {
        let model = model();
        // At 64 rows every product of the model is large enough to share.
        let ids: Vec<u32> = (0..64).map(|i| (i * 37) % 1000).collect();
        share_with(Rc::new(Declines));
        let unshared = logits(&model, &ids);
        let helper = helper(&model, false);
        share_with(helper.clone());
        let shared = logits(&model, &ids);
        let short = logits(&model, &ids[..4]);
        stop_sharing();
        assert!(unshared == shared, "the shared pass differs");
        // Four linear layers per block, and the unembedding; each block's attention.
        assert_eq!(helper.asked.get(), 4 * 2 + 1);
        assert_eq!(helper.heads_asked.get(), 2);
        share_with(Rc::new(Declines));
        assert!(short == logits(&model, &ids[..4]));
        stop_sharing();
        assert_eq!(helper.asked.get(), 4 * 2 + 1, "a short prompt was shared");
        assert_eq!(
            helper.heads_asked.get(),
            2,
            "a short prompt's heads were shared"
        );
    }

    /// The same for a Llama with grouped-query attention and untied unembedding: seven
    /// linear layers per block and the unembedding shared, the logits unchanged.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_shared_llama_pass_is_the_unshared_pass_to_the_bit() {
        let config = crate::LlamaConfig {
            n_layer: 2,
            n_head: 4,
            n_kv_head: 2,
            d_head: 32,
            d_model: 128,
            d_mlp: 384,
            n_positions: 64,
            vocab_size: 1000,
            rms_norm_eps: 1e-5,
            activation: Activation::Silu,
            rope: crate::Rope {
                theta: 10_000.0,
                rotary_dim: 32,
                scaling: crate::RopeScaling::None,
            },
            tie_word_embeddings: false,
            attention_bias: false,
            mlp_bias: false,
        };
        let build = || {
            let weights = crate::llama::LlamaWeights::init(&config, 3).unwrap();
            Model::from(crate::Llama::new(config.clone(), weights).unwrap())
        };
        let (model, copy) = (build(), build());
        let ids: Vec<u32> = (0..64).map(|i| (i * 13) % 1000).collect();
        let logits = |model: &Model| -> Vec<u32> {
            let logits = model.forward_ids(&ids, &mut Hooks::none()).unwrap();
            let values: Vec<f32> = logits.flatten_all().unwrap().to_vec1().unwrap();
            values.into_iter().map(f32::to_bits).collect()
        };
        share_with(Rc::new(Declines));
        let unshared = logits(&model);
        let helper = OtherCopy::new(
            WeightTable::new(model.product_weights()).unwrap(),
            WeightTable::new(copy.product_weights()).unwrap(),
            Takes::EveryOther,
            false,
        );
        share_with(helper.clone());
        let shared = logits(&model);
        stop_sharing();
        assert!(unshared == shared, "the shared pass differs");
        // At 64 rows: q, k, v, o, gate, up, down and the unembedding (k and v, 64 · 128 ·
        // 64 multiply-adds each, just the least shared); each block's attention, its
        // key/value heads repeated for their query heads.
        assert_eq!(helper.asked.get(), 7 * 2 + 1);
        assert_eq!(helper.heads_asked.get(), 2);
    }

    /// A helper that fails: the product is still the whole product to the bit (this thread
    /// computes the helper's columns), sharing stops, and why is kept.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_failing_helper_loses_nothing_and_is_not_asked_again() {
        let model = model();
        let (m, k, n) = (64, 128, 512);
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7) % 13) as f32 / 13.0 - 0.5)
            .collect();
        let weight = &model.weights().blocks[0].mlp_in_weight;
        let whole = with_values(weight, |w| simd_tiles::product(&a, m, w, n, Order::KByN)).unwrap();
        let helper = helper(&model, true);
        share_with(helper.clone());
        let shared = with_values(weight, |w| shared_product(&a, m, w, n, Order::KByN)).unwrap();
        assert!(
            shared == Some(whole),
            "the product with a failing helper differs"
        );
        assert_eq!(helper.asked.get(), 1);
        assert!(!sharing(), "still sharing after a failure");
        assert_eq!(why_sharing_stopped().as_deref(), Some("the helper stopped"));
    }

    /// A helper that fails on heads: `z` is still the unshared attention's to the bit,
    /// and sharing stops.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_helper_failing_on_heads_loses_nothing() {
        let model = model();
        let tensor = |seed| {
            crate::few_rows::tests::matrix(4 * 64, 32, seed)
                .reshape((1, 4, 64, 32))
                .unwrap()
        };
        let (q, k, v) = (tensor(1), tensor(2), tensor(3));
        // In the kernels a shared pass takes (natively too).
        share_with(Rc::new(Declines));
        let whole = crate::attention::attend_heads(&q, &k, &v, 0, 0.125).unwrap();
        let helper = helper(&model, true);
        share_with(helper.clone());
        let shared = shared_heads(&q, &k, &v, 0, 0.125).unwrap().unwrap();
        assert_eq!(helper.heads_asked.get(), 1);
        assert!(!sharing(), "still sharing after a failure");
        let bits = |t: &Tensor| -> Vec<u32> { values(t).into_iter().map(f32::to_bits).collect() };
        assert!(bits(&whole) == bits(&shared), "the heads differ");
    }

    /// An attention's heads shared with a helper, whichever chunks it takes (every other
    /// one, all, none), over two batches of three heads, from the first position and
    /// after a cache (fewer queries than keys): `z` is the unshared attention's to the bit.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn shared_heads_are_the_unshared_attention_whichever_the_helper_takes() {
        let model = model();
        let tensor = |positions, seed| {
            crate::few_rows::tests::matrix(2 * 3 * positions, 32, seed)
                .reshape((2, 3, positions, 32))
                .unwrap()
        };
        for (queries, keys, offset) in [(40, 40, 0), (8, 40, 32)] {
            let (q, k, v) = (tensor(queries, 1), tensor(keys, 2), tensor(keys, 3));
            share_with(Rc::new(Declines));
            let whole = crate::attention::attend_heads(&q, &k, &v, offset, 0.125).unwrap();
            for takes in [Takes::EveryOther, Takes::All, Takes::Nothing] {
                let helper = OtherCopy::new(table(&model), table(&model), takes, false);
                share_with(helper.clone());
                let (shared, answered) = heads_with(&*helper, &q, &k, &v, offset, 0.125)
                    .unwrap()
                    .unwrap();
                stop_sharing();
                answered.unwrap();
                assert_eq!(helper.heads_asked.get(), 1);
                let bits =
                    |t: &Tensor| -> Vec<u32> { values(t).into_iter().map(f32::to_bits).collect() };
                assert!(
                    bits(&whole) == bits(&shared),
                    "{queries} queries from {offset}, the helper taking {takes:?}"
                );
            }
        }
    }

    /// A single head is not shared; six are taken in chunks of a quarter of those left
    /// (rounded up), every head once, in order.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn heads_are_taken_in_narrowing_chunks() {
        assert_eq!(head_chunks(0), Vec::<Range<usize>>::new());
        assert_eq!(head_chunks(1), vec![0..1]);
        assert_eq!(head_chunks(6), vec![0..2, 2..3, 3..4, 4..5, 5..6]);
        assert_eq!(
            head_chunks(12),
            vec![0..3, 3..6, 6..8, 8..9, 9..10, 10..11, 11..12]
        );
        let tensor = crate::few_rows::tests::matrix(64, 32, 1)
            .reshape((1, 1, 64, 32))
            .unwrap();
        let helper = OtherCopy::new(table(&model()), table(&model()), Takes::All, false);
        let one_head = heads_with(&*helper, &tensor, &tensor, &tensor, 0, 0.125).unwrap();
        assert!(one_head.is_none(), "a single head was shared");
        assert_eq!(helper.heads_asked.get(), 0);
    }

    /// Products of one row to many, either layout, shared with a helper holding a copy of
    /// the weight, whichever chunks the helper takes (every other one, all, none): each is
    /// the unshared kernel's product to the bit (a few rows' kernels below five rows, the
    /// tiles from five), a few rows' shares of the depth added in either order.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn shared_products_of_few_rows_and_many_are_the_unshared_kernels() {
        // Each product over the size rule's work, so that it is shared, and small enough
        // for a debug build in the browser (whose page must answer within 30 s).
        let k = 384;
        for (m, n, takes) in [
            (1, 2900, Takes::EveryOther),
            (3, 1000, Takes::All),
            (4, 700, Takes::Nothing),
            (5, 600, Takes::EveryOther),
            (64, 300, Takes::EveryOther),
            (64, 300, Takes::All),
            (64, 300, Takes::Nothing),
        ] {
            assert!(m * k * n >= MIN_SHARED_WORK, "{m} rows would not be shared");
            let weights = [matrix(k, n, 1), matrix(n, k, 2)];
            let copies: Vec<Tensor> = weights.iter().map(|w| w.copy().unwrap()).collect();
            let helper = OtherCopy::new(
                WeightTable::new(weights.clone()).unwrap(),
                WeightTable::new(copies.clone()).unwrap(),
                takes,
                false,
            );
            let a = values(&matrix(m, k, 3));
            for (weight, order) in weights.iter().zip([Order::KByN, Order::NByK]) {
                let transposed = order == Order::NByK;
                let kernel = with_values(weight, |w| match (m <= few_rows::FEW_ROWS, transposed) {
                    (true, true) => few_rows::rows_times_transposed(&a, k, w, 0..n),
                    (true, false) => few_rows::rows_times(&a, k, w, n),
                    (false, _) => simd_tiles::product(&a, m, w, n, order),
                })
                .unwrap();
                share_with(helper.clone());
                let asked = helper.asked.get();
                let shared = with_values(weight, |w| shared_product(&a, m, w, n, order)).unwrap();
                stop_sharing();
                assert_eq!(
                    helper.asked.get(),
                    asked + 1,
                    "{m} rows, {order:?}: not shared"
                );
                let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert!(
                    bits(&shared.unwrap()) == bits(&kernel),
                    "{m} rows, {order:?}, the helper taking {takes:?}: shared"
                );
            }
        }
    }

    /// A product's chunks cover its columns once, in order, on multiples of the smallest
    /// chunk but for the end, never wider than a chunk before them but for the last, and
    /// the last ones as narrow as a chunk may be; a few rows of a weight `[k, n]` are cut
    /// in two shares of its rows instead.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn chunks_cover_the_columns_once_and_narrow_towards_the_end() {
        let many = few_rows::FEW_ROWS + 1;
        assert!(column_chunks(many, 0).is_empty());
        assert_eq!(column_chunks(many, 31), vec![0..31]);
        assert_eq!(column_chunks(many, 32), vec![0..16, 16..32]);
        // A few rows' product in two halves.
        assert_eq!(column_chunks(1, 2304), vec![0..1152, 1152..2304]);
        assert_eq!(column_chunks(4, 50_257), vec![0..25_136, 25_136..50_257]);
        assert_eq!(column_chunks(1, 16), vec![0..16]);
        for n in [33, 200, 768, 2304, 3072, 8192, 50_257] {
            let chunks = column_chunks(many, n);
            assert_eq!(chunks[0].start, 0, "{n}");
            assert_eq!(chunks.last().unwrap().end, n, "{n}");
            for pair in chunks.windows(2) {
                assert_eq!(pair[0].end, pair[1].start, "{n}");
                assert_eq!(pair[0].end % SMALLEST_CHUNK, 0, "{n}");
                assert!(pair[0].len() >= SMALLEST_CHUNK, "{n}");
            }
            let widths: Vec<usize> = chunks.iter().map(ExactSizeIterator::len).collect();
            let (last, before) = widths.split_last().unwrap();
            assert!(before.windows(2).all(|w| w[0] >= w[1]), "{n}: {widths:?}");
            assert!(*last < 2 * SMALLEST_CHUNK, "{n}: {widths:?}");
            assert!(
                widths[0] <= n.div_ceil(4) + SMALLEST_CHUNK,
                "{n}: {widths:?}"
            );
            // Few calls: GPT-2 small's unembedding in about thirty.
            assert!(chunks.len() <= 32, "{n}: {} chunks", chunks.len());
        }
        // A few rows of a weight `[k, n]` in two shares of its rows; of one read
        // transposed, or many rows, in chunks of columns.
        assert_eq!(
            product_chunks(1, 768, 3072, false),
            vec![Chunk::Depth(0..384), Chunk::Depth(384..768)]
        );
        assert_eq!(
            product_chunks(4, 3071, 768, false),
            vec![Chunk::Depth(0..1536), Chunk::Depth(1536..3071)]
        );
        assert_eq!(product_chunks(1, 1, 3072, false), vec![Chunk::Depth(0..1)]);
        assert_eq!(
            product_chunks(1, 768, 2304, true),
            vec![Chunk::Columns(0..1152), Chunk::Columns(1152..2304)]
        );
        let columns: Vec<Chunk> = (column_chunks(many, 3072).into_iter())
            .map(Chunk::Columns)
            .collect();
        assert_eq!(product_chunks(many, 768, 3072, false), columns);
        assert_eq!(Chunk::Depth(0..384).values(2, 3072), 2 * 3072);
        assert_eq!(Chunk::Columns(16..48).values(2, 3072), 2 * 32);
    }

    /// Two copies of a model's weights have the same fingerprint; a table with a weight
    /// fewer, or a weight of another shape, has another.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_fingerprint_tells_tables_of_other_weights_apart() {
        let (one, other) = (table(&model()), table(&model()));
        assert_eq!(one.fingerprint(), other.fingerprint());
        assert_ne!(one.fingerprint(), 0);
        let mut named = Model::from(model()).product_weights();
        named.pop();
        assert_ne!(
            WeightTable::new(named.clone()).unwrap().fingerprint(),
            one.fingerprint()
        );
        let last = named.len() - 1;
        named[last] = named[last].t().unwrap().contiguous().unwrap();
        let transposed = WeightTable::new(named.clone()).unwrap().fingerprint();
        named[last] = named[last].t().unwrap().contiguous().unwrap();
        assert_ne!(transposed, WeightTable::new(named).unwrap().fingerprint());
    }

    /// A weight's number names the same weight in another copy of the model, and memory
    /// that is not one of the table's weights has no number.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn numbers_name_the_same_weight_in_either_copy() {
        let (one, other) = (model(), model());
        let (one_table, other_table) = (table(&one), table(&other));
        assert_eq!(one_table.len(), other_table.len());
        let named = Model::from(&one).product_weights();
        assert_eq!(named.len(), 4 * 2 + 1);
        for (number, tensor) in named.iter().enumerate() {
            let name = format!("weight {number}");
            let values: Vec<f32> = tensor.flatten_all().unwrap().to_vec1().unwrap();
            with_values(tensor, |own| {
                assert_eq!(one_table.number_of(own), Some(number), "{name}");
            })
            .unwrap();
            let theirs = other_table.with_weight(number, <[f32]>::to_vec).unwrap();
            assert!(theirs == Some(values.clone()), "{name}");
            assert_eq!(
                one_table.number_of(&values),
                None,
                "{name}: a copy's values"
            );
        }
        assert!(
            one_table
                .with_weight(named.len(), |_| ())
                .unwrap()
                .is_none()
        );
    }
}
