//! Products of five rows or more (a prompt's linear layers, their bias in the product from
//! the start, and its unembedding), in the kernel this build has for them: natively
//! `column_panels` (gemm, one panel of columns per core), in the browser `simd_tiles`.
//! Fewer rows go to `few_rows`. Natively, attention's products for every head
//! too, as a batch of matrices with one task each.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};

use crate::Result;
use crate::cpu_rows::contiguous_rows;
use crate::simd_tiles::TILED;

/// The fewest rows of `a` the kernels here take; fewer go to `few_rows`' kernels or gemm.
pub(crate) const MIN_ROWS: usize = 5;

/// `a · b`, `a` `[m, k]` and `b` `[k, n]`, in this build's kernel where `a` has
/// [`MIN_ROWS`] or more; `None` where not.
pub(crate) fn matmul(a: &Tensor, b: &Tensor) -> Result<Option<Tensor>> {
    product(a, b, Order::KByN)
}

/// `a · b + bias` (a linear layer: `bias` `[n]`, added to every row), where [`matmul`]
/// would take `a · b`: the bias is in the product from the start.
pub(crate) fn matmul_plus_bias(a: &Tensor, b: &Tensor, bias: &Tensor) -> Result<Option<Tensor>> {
    let columns = b.dim(1)?;
    if !(applies(a, b, Order::KByN)
        && bias.dims1().is_ok_and(|n| n == columns)
        && bias.dtype() == candle_core::DType::F32
        && bias.device().is_cpu())
    {
        return Ok(None);
    }
    Ok(Some(a.contiguous()?.apply_op3(
        b,
        &bias.contiguous()?,
        ManyRowsPlusBias(Order::KByN),
    )?))
}

/// `a · eᵀ`, `a` `[m, k]` and `e` `[n, k]`, where [`matmul`] would take `a · e`.
pub(crate) fn matmul_transposed(a: &Tensor, e: &Tensor) -> Result<Option<Tensor>> {
    product(a, e, Order::NByK)
}

/// `a · b` for each matrix of a batch (attention's heads): `a` `[batch, m, k]`, `b`
/// `[batch, k, n]` ([`Order::KByN`]) or `[batch, n, k]` ([`Order::NByK`]), in f32 on the
/// CPU. Natively every matrix is a task of its own on the cores (candle's matmul takes the
/// matrices one after another, each spread over the cores by gemm, which on a head's
/// small products costs more than it gains); `None` in the browser, where there is one
/// core and candle's matmul takes them.
pub(crate) fn batched_matmul(a: &Tensor, b: &Tensor, order: Order) -> Result<Option<Tensor>> {
    let (Ok((count, _, k)), Ok((count_b, rows_b, columns_b))) = (a.dims3(), b.dims3()) else {
        return Ok(None);
    };
    let k_of_b = match order {
        Order::KByN => rows_b,
        Order::NByK => columns_b,
    };
    let applies = cfg!(not(target_arch = "wasm32"))
        && count == count_b
        && k == k_of_b
        && k > 0
        && a.dtype() == candle_core::DType::F32
        && b.dtype() == candle_core::DType::F32
        && matches!(
            (a.device(), b.device()),
            (candle_core::Device::Cpu, candle_core::Device::Cpu)
        );
    if !applies {
        return Ok(None);
    }
    Ok(Some(
        a.contiguous()?
            .apply_op2(&b.contiguous()?, ManyRows(order))?,
    ))
}

fn product(a: &Tensor, b: &Tensor, order: Order) -> Result<Option<Tensor>> {
    if !applies(a, b, order) {
        return Ok(None);
    }
    Ok(Some(a.contiguous()?.apply_op2(b, ManyRows(order))?))
}

/// Whether a kernel here takes `a · b`: [`MIN_ROWS`] or more rows where a CPU kernel can.
fn applies(a: &Tensor, b: &Tensor, order: Order) -> bool {
    let axis_of_k = match order {
        Order::KByN => 0,
        Order::NByK => 1,
    };
    crate::few_rows::rows_for_a_kernel(a, b, axis_of_k).is_some_and(|m| m >= MIN_ROWS)
}

/// How `b`'s values lie in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Order {
    /// `[k, n]`: a linear layer's weight.
    KByN,
    /// `[n, k]`: the tied embedding, read as the unembedding.
    NByK,
}

/// How many products, and each one's rows and columns.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Matrices {
    /// Products, one after another in the operands and the result.
    pub(crate) count: usize,
    /// Rows of each `a` and of each product.
    pub(crate) m: usize,
    /// Columns of each product.
    pub(crate) n: usize,
}

/// The candle op: `a · b` for `b` laid out as its [`Order`] says.
struct ManyRows(Order);

impl CustomOp2 for ManyRows {
    fn name(&self) -> &'static str {
        "many-rows"
    }

    fn cpu_fwd(
        &self,
        a_storage: &CpuStorage,
        a_layout: &Layout,
        b_storage: &CpuStorage,
        b_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        forward(self.0, (a_storage, a_layout), (b_storage, b_layout), None)
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (a, b) = gradients(self.0, a, b, grad)?;
        Ok((Some(a), Some(b)))
    }
}

/// The candle op: `a · b + bias`, the bias (one value per column) in the product from the
/// start instead of added in a second pass over it.
struct ManyRowsPlusBias(Order);

impl CustomOp3 for ManyRowsPlusBias {
    fn name(&self) -> &'static str {
        "many-rows-plus-bias"
    }

    fn cpu_fwd(
        &self,
        a_storage: &CpuStorage,
        a_layout: &Layout,
        b_storage: &CpuStorage,
        b_layout: &Layout,
        bias_storage: &CpuStorage,
        bias_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (bias, _) = contiguous_rows(bias_storage, bias_layout)?;
        forward(
            self.0,
            (a_storage, a_layout),
            (b_storage, b_layout),
            Some(bias),
        )
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (grad_a, grad_b) = gradients(self.0, a, b, grad)?;
        // Every row of the product adds the bias once.
        let grad_bias = grad.flatten_to(grad.rank().saturating_sub(2))?.sum(0)?;
        Ok((Some(grad_a), Some(grad_b), Some(grad_bias)))
    }
}

/// The products' values and shape: `a` `[m, k]` (or `[count, m, k]`, a batch), `b` as
/// `order` says, and `bias` (one value per column) in every row where given.
fn forward(
    order: Order,
    (a_storage, a_layout): (&CpuStorage, &Layout),
    (b_storage, b_layout): (&CpuStorage, &Layout),
    bias: Option<&[f32]>,
) -> candle_core::Result<(CpuStorage, Shape)> {
    let (a, k) = contiguous_rows(a_storage, a_layout)?;
    let (b, width) = contiguous_rows(b_storage, b_layout)?;
    // `[m, k]`, or `[count, m, k]` for a batch of products.
    let (count, m) = match *a_layout.dims() {
        [count, m, _] => (count, m),
        _ => (1, a.len() / k),
    };
    let n = match order {
        Order::KByN => width,
        Order::NByK => b.len() / count.max(1) / width,
    };
    if b.len() != count * k * n || a.len() != count * m * k {
        return Err(candle_core::Error::Msg(format!(
            "{count} products of {m} rows of {k} by {order:?} matrices of {} values",
            b.len()
        )));
    }
    if let Some(bias) = bias.filter(|bias| bias.len() != n) {
        return Err(candle_core::Error::Msg(format!(
            "a bias of {} values for products of {n} columns",
            bias.len()
        )));
    }
    let matrices = Matrices { count, m, n };
    // A helper computes in the tiles, so a product shared with one is in the tiles here too.
    let out = if TILED || crate::column_split::sharing() {
        tiled_product(a, b, matrices, order, bias)
    } else {
        native_product(a, b, matrices, order, bias)?
    };
    let shape = match a_layout.dims() {
        [_, _, _] => Shape::from((count, m, n)),
        _ => Shape::from((m, n)),
    };
    Ok((CpuStorage::F32(out), shape))
}

/// The gradients of `a · b` (`b` as `order` says) for `a` and `b`.
fn gradients(
    order: Order,
    a: &Tensor,
    b: &Tensor,
    grad: &Tensor,
) -> candle_core::Result<(Tensor, Tensor)> {
    Ok(match order {
        Order::KByN => (grad.matmul(&b.t()?)?, a.t()?.matmul(grad)?),
        Order::NByK => (grad.matmul(b)?, grad.t()?.matmul(a)?),
    })
}

/// The browser's kernel, one matrix after another (a single one shared with a helper where
/// one is installed: `column_split`), the bias added after.
fn tiled_product(
    a: &[f32],
    b: &[f32],
    matrices: Matrices,
    order: Order,
    bias: Option<&[f32]>,
) -> Vec<f32> {
    let Matrices { count, m, n } = matrices;
    let k = a.len() / (count * m).max(1);
    let product = |i: usize| {
        let (a, b) = (&a[i * m * k..][..m * k], &b[i * k * n..][..k * n]);
        crate::simd_tiles::product(a, m, b, n, order)
    };
    let mut out = if count == 1 {
        crate::column_split::shared_product(a, m, b, n, order).unwrap_or_else(|| product(0))
    } else {
        let mut out = Vec::with_capacity(count * m * n);
        for i in 0..count {
            out.extend_from_slice(&product(i));
        }
        out
    };
    if let Some(bias) = bias {
        for row in out.chunks_exact_mut(n.max(1)) {
            for (y, &b) in row.iter_mut().zip(bias) {
                *y += b;
            }
        }
    }
    out
}

/// The native build's kernel ([`TILED`] keeps the browser's builds from it).
fn native_product(
    a: &[f32],
    b: &[f32],
    matrices: Matrices,
    order: Order,
    bias: Option<&[f32]>,
) -> candle_core::Result<Vec<f32>> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::column_panels::product(a, b, matrices, order, bias)
    }
    #[cfg(target_arch = "wasm32")]
    {
        let _ = (a, b, matrices, order, bias);
        Err(candle_core::Error::Msg(
            "no kernel for products of many rows in this build".to_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use crate::few_rows::tests::{matrix, relative_difference, values};

    #[cfg(target_arch = "wasm32")]
    wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

    /// The tensor-level entry points take this build's kernel only for [`MIN_ROWS`] or
    /// more rows of contiguous matrices, and give gemm's product and gradients.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn matmul_takes_this_builds_kernel_where_it_has_one() {
        let a = candle_core::Var::from_tensor(&matrix(9, 300, 1)).unwrap();
        let w = candle_core::Var::from_tensor(&matrix(300, 12, 2)).unwrap();
        let e = candle_core::Var::from_tensor(&matrix(12, 300, 3)).unwrap();
        let ours = matmul(&a, &w).unwrap();
        let ours_transposed = matmul_transposed(&a, &e).unwrap();
        assert!(ours.is_some() && ours_transposed.is_some());
        assert!(matmul(&matrix(MIN_ROWS - 1, 300, 1), &w).unwrap().is_none());
        assert!(
            matmul(&a, &w.t().unwrap().contiguous().unwrap().t().unwrap())
                .unwrap()
                .is_none()
        );
        let (ours, ours_transposed) = (ours.unwrap(), ours_transposed.unwrap());
        let loss = |y: Tensor| y.sqr().unwrap().sum_all().unwrap();
        let gemm = a.matmul(&w).unwrap();
        assert!(relative_difference(&values(&ours), &values(&gemm)) < 1e-5);
        let (ours, theirs) = (
            loss(ours).backward().unwrap(),
            loss(gemm).backward().unwrap(),
        );
        for var in [&a, &w] {
            let (x, y) = (ours.get(var).unwrap(), theirs.get(var).unwrap());
            assert!(relative_difference(&values(x), &values(y)) < 1e-5);
        }
        let gemm = a.matmul(&e.t().unwrap()).unwrap();
        assert!(relative_difference(&values(&ours_transposed), &values(&gemm)) < 1e-5);
        let ours = loss(ours_transposed).backward().unwrap();
        let theirs = loss(gemm).backward().unwrap();
        for var in [&a, &e] {
            let (x, y) = (ours.get(var).unwrap(), theirs.get(var).unwrap());
            assert!(relative_difference(&values(x), &values(y)) < 1e-5);
        }
    }

    /// A linear layer's bias taken into the product gives the product plus the bias, and
    /// the same gradients (`None` for a bias of the wrong length).
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_bias_in_the_product_is_the_product_plus_the_bias() {
        let a = candle_core::Var::from_tensor(&matrix(9, 300, 1)).unwrap();
        let w = candle_core::Var::from_tensor(&matrix(300, 12, 2)).unwrap();
        let bias = candle_core::Var::from_tensor(&matrix(1, 12, 3).flatten_all().unwrap()).unwrap();
        let ours = matmul_plus_bias(&a, &w, &bias).unwrap();
        assert!(
            matmul_plus_bias(&a, &w, &matrix(1, 11, 3).flatten_all().unwrap())
                .unwrap()
                .is_none()
        );
        let ours = ours.unwrap();
        let loss = |y: Tensor| y.sqr().unwrap().sum_all().unwrap();
        let theirs = a.matmul(&w).unwrap().broadcast_add(&bias).unwrap();
        assert!(relative_difference(&values(&ours), &values(&theirs)) < 1e-6);
        let (ours, theirs) = (
            loss(ours).backward().unwrap(),
            loss(theirs).backward().unwrap(),
        );
        for var in [&a, &w, &bias] {
            let (x, y) = (ours.get(var).unwrap(), theirs.get(var).unwrap());
            assert_eq!(x.dims(), y.dims());
            assert!(relative_difference(&values(x), &values(y)) < 1e-5);
        }
    }

    /// Products per matrix of a batch (attention's heads) natively, as candle's batched
    /// matmul gives them, with the same gradients; `None` in the browser.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_batch_of_products_is_candles_batched_matmul() {
        let batch = |x: Tensor, count, rows| {
            let columns = x.dim(1).unwrap();
            candle_core::Var::from_tensor(&x.reshape((count, rows, columns)).unwrap()).unwrap()
        };
        let q = batch(matrix(3 * 7, 16, 1), 3, 7);
        let k = batch(matrix(3 * 5, 16, 2), 3, 5);
        let v = batch(matrix(3 * 5, 16, 3), 3, 5);
        let dots = batched_matmul(&q, &k, Order::NByK).unwrap();
        assert_eq!(dots.is_some(), cfg!(not(target_arch = "wasm32")));
        let Some(dots) = dots else {
            return;
        };
        let z = batched_matmul(&dots, &v, Order::KByN).unwrap().unwrap();
        let theirs = q.matmul(&k.t().unwrap()).unwrap().matmul(&v).unwrap();
        assert_eq!(z.dims(), [3, 7, 16]);
        assert!(relative_difference(&values(&z), &values(&theirs)) < 1e-5);
        let loss = |y: Tensor| y.sqr().unwrap().sum_all().unwrap();
        let (ours, theirs) = (
            loss(z).backward().unwrap(),
            loss(theirs).backward().unwrap(),
        );
        for var in [&q, &k, &v] {
            let (x, y) = (ours.get(var).unwrap(), theirs.get(var).unwrap());
            assert!(relative_difference(&values(x), &values(y)) < 1e-5);
        }
    }
}
