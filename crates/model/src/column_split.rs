//! Products of many rows shared with a helper that holds the same weights. A page has one
//! core per wasm instance (threads inside one need a nightly toolchain), so its second
//! core is a second worker with its own copy of the model: while a helper is installed on
//! this thread ([`share_with`]), a product of a weight the helper holds is cut in two by
//! columns, this thread computing the first part while the helper computes the rest.
//!
//! Both parts come from the browser's tiles ([`simd_tiles::product_columns`]), which sum
//! each column alike whichever columns are asked for, so a shared product is the unshared
//! one to the bit, and a graph or a steered pair comes out the same with a helper or
//! without. Where the helper declines, fails or stops answering, this thread computes its
//! columns itself and stops sharing: the product is never lost.
//!
//! An attention with nothing hooked between its queries and `z` is cut the same way, by
//! heads ([`shared_heads`]): each head's `z` is the same whichever heads come with it.
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
/// to and from it (tens of microseconds) cost more than half of a product this small.
const MIN_SHARED_WORK: usize = 1 << 20;

/// The columns of one product that a helper is asked for.
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
    /// The product's columns the helper computes.
    pub columns: Range<usize>,
}

/// The heads of one attention that a helper is asked for: queries, keys and values of
/// those heads only, each `[heads, positions, d_head]`, nothing hooked between them and `z`.
#[derive(Debug, Clone)]
pub struct HeadsRequest<'a> {
    /// Queries, `[heads, queries, d_head]`.
    pub q: &'a [f32],
    /// Keys, `[heads, keys, d_head]`.
    pub k: &'a [f32],
    /// Values, `[heads, keys, d_head]`.
    pub v: &'a [f32],
    /// Heads asked for.
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
}

/// A helper that computes columns of a product with its own copy of the weights, and the
/// heads of an attention.
pub trait ColumnHelper {
    /// Hands `request` to the helper; false where it cannot take it (it does not hold the
    /// weight, or the values do not fit), and then nothing was sent.
    fn start(&self, request: &ColumnRequest<'_>) -> bool;

    /// Hands `request` to the helper; false where it cannot take it, and then nothing was
    /// sent. A helper that only computes columns declines.
    fn start_heads(&self, request: &HeadsRequest<'_>) -> bool {
        let _ = request;
        false
    }

    /// What was started last into `into`: the columns, `m × columns.len()` values row by
    /// row, or the heads' `z`, `[heads, queries, d_head]`; an error where the helper failed
    /// or stopped answering.
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

/// `a · b` (`a` `[m, k]`, `b` as `order` says), its last columns computed by the installed
/// helper; `None` where no helper is installed, the product is too small to share, or the
/// helper declines it.
pub(crate) fn shared_product(
    a: &[f32],
    m: usize,
    b: &[f32],
    n: usize,
    order: Order,
) -> Option<Vec<f32>> {
    let helper = HELPER.with_borrow(Clone::clone)?;
    let k = a.len() / m.max(1);
    // The helper's columns start on a tile's edge.
    let cut = n.div_ceil(2).next_multiple_of(8);
    if m * k * n < MIN_SHARED_WORK || cut >= n {
        return None;
    }
    let request = ColumnRequest {
        a,
        m,
        weight: b,
        n,
        transposed: order == Order::NByK,
        columns: cut..n,
    };
    if !helper.start(&request) {
        return None;
    }
    let transposed = request.transposed;
    let own = columns_of_product(a, m, b, n, transposed, 0..cut);
    let mut theirs = vec![0.0_f32; m * (n - cut)];
    if let Err(why) = helper.finish(&mut theirs) {
        stop_sharing();
        STOPPED.with_borrow_mut(|stopped| *stopped = Some(why));
        theirs = columns_of_product(a, m, b, n, transposed, cut..n);
    }
    let mut out = Vec::with_capacity(m * n);
    for (own, theirs) in own.chunks_exact(cut).zip(theirs.chunks_exact(n - cut)) {
        out.extend_from_slice(own);
        out.extend_from_slice(theirs);
    }
    Some(out)
}

/// `z` (`[batch, head, query, d_head]`) of an attention with nothing hooked between `q`
/// and `z` (`q`, `k` and `v` contiguous f32 `[batch, head, position, d_head]`), its last
/// heads computed by the installed helper; `None` where no helper is installed, the
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
    // Every head of every batch in one row of heads, cut in two.
    let count = batch * heads;
    let cut = count / 2;
    if cut == 0 || 2 * count * queries * keys * d_head < MIN_SHARED_WORK {
        return Ok(None);
    }
    let flat = |x: &Tensor, positions| x.reshape((1, count, positions, d_head));
    let (q, k, v) = (flat(q, queries)?, flat(k, keys)?, flat(v, keys)?);
    let theirs = |x: &Tensor| x.narrow(1, cut, count - cut);
    let (their_q, their_k, their_v) = (theirs(&q)?, theirs(&k)?, theirs(&v)?);
    let started = with_values(&their_q, |q_values| {
        with_values(&their_k, |k_values| {
            with_values(&their_v, |v_values| {
                let request = HeadsRequest {
                    q: q_values,
                    k: k_values,
                    v: v_values,
                    heads: count - cut,
                    queries,
                    keys,
                    d_head,
                    offset,
                    scale,
                };
                helper.start_heads(&request)
            })
        })
    })???;
    if !started {
        return Ok(None);
    }
    let ours = |x: &Tensor| x.narrow(1, 0, cut);
    // Computed before anything returns, so that the helper's answer is always taken.
    let own =
        (|| crate::attention::attend_heads(&ours(&q)?, &ours(&k)?, &ours(&v)?, offset, scale))();
    let mut values = vec![0.0_f32; (count - cut) * queries * d_head];
    let theirs = match helper.finish(&mut values) {
        Ok(()) => Tensor::from_vec(values, (1, count - cut, queries, d_head), q.device())?,
        Err(why) => {
            // Before sharing stops: natively the kernels are the tiles only while it lasts.
            let z = crate::attention::attend_heads(&their_q, &their_k, &their_v, offset, scale);
            stop_sharing();
            STOPPED.with_borrow_mut(|stopped| *stopped = Some(why));
            z?
        }
    };
    let z = Tensor::cat(&[&own?, &theirs], 1)?;
    Ok(Some(z.reshape((batch, heads, queries, d_head))?))
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

/// What a helper computes for a request: columns `columns` of `a · weight`, `m ×
/// columns.len()` values row by row (`weight` `[k, n]`, or `[n, k]` where `transposed`),
/// in the kernel an unshared product of `m` rows takes (a few rows' kernels, or the
/// tiles), so that both sides' columns are the unshared product's.
#[must_use]
pub fn columns_of_product(
    a: &[f32],
    m: usize,
    weight: &[f32],
    n: usize,
    transposed: bool,
    columns: Range<usize>,
) -> Vec<f32> {
    let k = a.len() / m.max(1);
    match (m <= few_rows::FEW_ROWS, transposed) {
        (true, true) => few_rows::rows_times_transposed(a, k, weight, columns),
        (true, false) => few_rows::rows_times(a, k, weight, n, columns),
        (false, true) => simd_tiles::product_columns(a, m, weight, n, Order::NByK, columns),
        (false, false) => simd_tiles::product_columns(a, m, weight, n, Order::KByN, columns),
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

    /// A helper in this thread standing in for another worker: its own copy of the model's
    /// weights, found by number, as the browser's helper finds them.
    struct OtherCopy {
        this_side: WeightTable,
        other_side: WeightTable,
        pending: RefCell<Option<Vec<f32>>>,
        asked: Cell<usize>,
        heads_asked: Cell<usize>,
        fails: bool,
    }

    impl ColumnHelper for OtherCopy {
        fn start(&self, request: &ColumnRequest<'_>) -> bool {
            let Some(number) = self.this_side.number_of(request.weight) else {
                return false;
            };
            let columns = self.other_side.with_weight(number, |weight| {
                columns_of_product(
                    request.a,
                    request.m,
                    weight,
                    request.n,
                    request.transposed,
                    request.columns.clone(),
                )
            });
            self.asked.set(self.asked.get() + 1);
            *self.pending.borrow_mut() = columns.unwrap();
            true
        }

        fn start_heads(&self, request: &HeadsRequest<'_>) -> bool {
            self.heads_asked.set(self.heads_asked.get() + 1);
            *self.pending.borrow_mut() = Some(heads_of_attention(request).unwrap());
            true
        }

        fn finish(&self, into: &mut [f32]) -> std::result::Result<(), String> {
            let columns = self.pending.take().ok_or("nothing was started")?;
            if self.fails {
                return Err("the helper stopped".to_owned());
            }
            into.copy_from_slice(&columns);
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
        Rc::new(OtherCopy {
            this_side: table(this_side),
            other_side: table(&model()),
            pending: RefCell::new(None),
            asked: Cell::new(0),
            heads_asked: Cell::new(0),
            fails,
        })
    }

    /// A helper that declines everything: every product in the tiles, unshared.
    struct Declines;

    impl ColumnHelper for Declines {
        fn start(&self, _: &ColumnRequest<'_>) -> bool {
            false
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
        let helper = Rc::new(OtherCopy {
            this_side: WeightTable::new(model.product_weights()).unwrap(),
            other_side: WeightTable::new(copy.product_weights()).unwrap(),
            pending: RefCell::new(None),
            asked: Cell::new(0),
            heads_asked: Cell::new(0),
            fails: false,
        });
        share_with(helper.clone());
        let shared = logits(&model);
        stop_sharing();
        assert!(unshared == shared, "the shared pass differs");
        // At 64 rows: q, o, gate, up, down and the unembedding (k and v, 64 · 128 · 64
        // multiply-adds each, are under the least shared); each block's attention, its
        // key/value heads repeated for their query heads.
        assert_eq!(helper.asked.get(), 5 * 2 + 1);
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

    /// Products of one row to many, either layout, shared with a helper holding a copy of
    /// the weight: each is the unshared kernel's product to the bit (a few rows' kernels
    /// below five rows, the tiles from five).
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn shared_products_of_few_rows_and_many_are_the_unshared_kernels() {
        let (k, n) = (384, 2900);
        let weights = [matrix(k, n, 1), matrix(n, k, 2)];
        let copies: Vec<Tensor> = weights.iter().map(|w| w.copy().unwrap()).collect();
        let helper = Rc::new(OtherCopy {
            this_side: WeightTable::new(weights.clone()).unwrap(),
            other_side: WeightTable::new(copies).unwrap(),
            pending: RefCell::new(None),
            asked: Cell::new(0),
            heads_asked: Cell::new(0),
            fails: false,
        });
        for m in [1, 3, 4, 5, 64] {
            let a = values(&matrix(m, k, 3));
            for (weight, order) in weights.iter().zip([Order::KByN, Order::NByK]) {
                let transposed = order == Order::NByK;
                let unshared = with_values(weight, |w| {
                    columns_of_product(&a, m, w, n, transposed, 0..n)
                })
                .unwrap();
                let kernel = with_values(weight, |w| match (m <= few_rows::FEW_ROWS, transposed) {
                    (true, true) => few_rows::rows_times_transposed(&a, k, w, 0..n),
                    (true, false) => few_rows::rows_times(&a, k, w, n, 0..n),
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
                    bits(&unshared) == bits(&kernel),
                    "{m} rows, {order:?}: columns_of_product"
                );
                assert!(
                    bits(&shared.unwrap()) == bits(&kernel),
                    "{m} rows, {order:?}: shared"
                );
            }
        }
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
