//! Products of five rows or more (a prompt's linear layers and its unembedding), in the
//! kernel this build has for them: natively `column_panels` (gemm, one panel of columns
//! per core), in the browser with relaxed SIMD `fma_tiles`; elsewhere (the browser without
//! relaxed SIMD) none, and candle's gemm takes them. Fewer rows go to `few_rows`.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use crate::Result;
use crate::cpu_rows::contiguous_rows;
use crate::fma_tiles::FUSED;

/// Whether this build has a kernel here: natively, or in the browser with relaxed SIMD.
pub(crate) const HAS_KERNEL: bool = cfg!(not(target_arch = "wasm32")) || FUSED;

/// The fewest rows of `a` the kernels here take; fewer go to `few_rows`' kernels or gemm.
pub(crate) const MIN_ROWS: usize = 5;

/// `a · b`, `a` `[m, k]` and `b` `[k, n]`, in this build's kernel where it has one
/// ([`HAS_KERNEL`]) and `a` has [`MIN_ROWS`] or more; `None` where not.
pub(crate) fn matmul(a: &Tensor, b: &Tensor) -> Result<Option<Tensor>> {
    product(a, b, Order::KByN)
}

/// `a · eᵀ`, `a` `[m, k]` and `e` `[n, k]`, where [`matmul`] would take `a · e`.
pub(crate) fn matmul_transposed(a: &Tensor, e: &Tensor) -> Result<Option<Tensor>> {
    product(a, e, Order::NByK)
}

fn product(a: &Tensor, b: &Tensor, order: Order) -> Result<Option<Tensor>> {
    if !(HAS_KERNEL && applies(a, b, order)) {
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
        let (a, k) = contiguous_rows(a_storage, a_layout)?;
        let (b, width) = contiguous_rows(b_storage, b_layout)?;
        let n = match self.0 {
            Order::KByN => width,
            Order::NByK => b.len() / width,
        };
        if b.len() != k * n {
            return Err(candle_core::Error::Msg(format!(
                "rows of {k} times a {:?} matrix of {} values",
                self.0,
                b.len()
            )));
        }
        let m = a.len() / k;
        let out = if FUSED {
            crate::fma_tiles::product(a, m, b, n, self.0)
        } else {
            native_product(a, m, b, n, self.0)?
        };
        Ok((CpuStorage::F32(out), Shape::from((m, n))))
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        Ok(match self.0 {
            Order::KByN => (Some(grad.matmul(&b.t()?)?), Some(a.t()?.matmul(grad)?)),
            Order::NByK => (Some(grad.matmul(b)?), Some(grad.t()?.matmul(a)?)),
        })
    }
}

/// The native build's kernel ([`HAS_KERNEL`] keeps the op from the browser's other
/// builds).
fn native_product(
    a: &[f32],
    m: usize,
    b: &[f32],
    n: usize,
    order: Order,
) -> candle_core::Result<Vec<f32>> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::column_panels::product(a, m, b, n, order)
    }
    #[cfg(target_arch = "wasm32")]
    {
        let _ = (a, m, b, n, order);
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

    /// The tensor-level entry points take this build's kernel exactly where it has one
    /// ([`HAS_KERNEL`]), only for [`MIN_ROWS`] or more rows of contiguous matrices, and
    /// give gemm's product and gradients.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn matmul_takes_this_builds_kernel_where_it_has_one() {
        let a = candle_core::Var::from_tensor(&matrix(9, 300, 1)).unwrap();
        let w = candle_core::Var::from_tensor(&matrix(300, 12, 2)).unwrap();
        let e = candle_core::Var::from_tensor(&matrix(12, 300, 3)).unwrap();
        let ours = matmul(&a, &w).unwrap();
        let ours_transposed = matmul_transposed(&a, &e).unwrap();
        assert_eq!(ours.is_some(), HAS_KERNEL);
        assert_eq!(ours_transposed.is_some(), HAS_KERNEL);
        assert!(matmul(&matrix(MIN_ROWS - 1, 300, 1), &w).unwrap().is_none());
        assert!(
            matmul(&a, &w.t().unwrap().contiguous().unwrap().t().unwrap())
                .unwrap()
                .is_none()
        );
        let (Some(ours), Some(ours_transposed)) = (ours, ours_transposed) else {
            return;
        };
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
}
