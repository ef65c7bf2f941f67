//! A non-linearity applied element by element as a candle custom op: one vectorized pass
//! forward (the function is inlined into the loop, never called through a pointer) and
//! one for its slope backward. GELU and `SiLU` each say only their function and slope.

use std::marker::PhantomData;

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use crate::cpu_rows::map_each;

/// An elementwise function and its derivative.
pub(crate) trait Pointwise: Send + Sync + 'static {
    /// The op's name in candle's graph.
    const NAME: &'static str;
    /// The function at `x`.
    fn value(x: f32) -> f32;
    /// Its derivative at `x`.
    fn slope(x: f32) -> f32;
}

/// `F` applied to every element of `x` (f32), with its gradient.
pub(crate) fn apply<F: Pointwise>(x: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1(Forward::<F>(PhantomData))
}

struct Forward<F>(PhantomData<F>);

impl<F: Pointwise> CustomOp1 for Forward<F> {
    fn name(&self) -> &'static str {
        F::NAME
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        map_each(storage, layout, F::value)
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let slope = arg
            .contiguous()?
            .apply_op1_no_bwd(&Slope::<F>(PhantomData))?;
        Ok(Some(grad_res.mul(&slope)?))
    }
}

struct Slope<F>(PhantomData<F>);

impl<F: Pointwise> CustomOp1 for Slope<F> {
    fn name(&self) -> &'static str {
        "pointwise-slope"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        map_each(storage, layout, F::slope)
    }
}
