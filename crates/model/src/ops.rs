//! Small operations every family's forward pass uses: checking the token ids it is given,
//! a linear layer over `[batch, positions, in]`, the MLP's non-linearity.

use candle_core::{DType, Tensor};

use crate::{Activation, ModelError, Result};

/// Checks a `[batch, positions]` tensor of u32 ids for a model with `n_positions` of
/// context and `vocab_size` tokens, run after `offset` cached positions; returns
/// `(batch, positions)`.
pub(crate) fn check_tokens(
    tokens: &Tensor,
    offset: usize,
    n_positions: usize,
    vocab_size: usize,
) -> Result<(usize, usize)> {
    let (batch, len) = tokens.dims2().map_err(|_| {
        ModelError::Input(format!(
            "tokens must be [batch, positions], got {:?}",
            tokens.dims()
        ))
    })?;
    if tokens.dtype() != DType::U32 {
        return Err(ModelError::Input(format!(
            "token ids must be u32, got {:?}",
            tokens.dtype()
        )));
    }
    if batch == 0 || len == 0 {
        return Err(ModelError::Input("no tokens to run".to_owned()));
    }
    if offset + len > n_positions {
        return Err(ModelError::Input(format!(
            "{} tokens is more than the model's context of {n_positions} (n_positions)",
            offset + len,
        )));
    }
    let largest = tokens.flatten_all()?.max(0)?.to_scalar::<u32>()?;
    if largest as usize >= vocab_size {
        return Err(ModelError::Input(format!(
            "token id {largest} is out of range: the vocabulary has {vocab_size} tokens (0..{})",
            vocab_size - 1
        )));
    }
    Ok((batch, len))
}

/// `x · weight (+ bias)` over the last axis, for `x` of shape `[batch, positions, in]`
/// and `weight` stored `[in, out]`.
pub(crate) fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let (batch, len, input) = x.dims3()?;
    let output = weight.dim(1)?;
    let x = x.reshape((batch * len, input))?;
    let y = match bias {
        Some(bias) => match crate::many_rows::matmul_plus_bias(&x, weight, bias)? {
            Some(y) => y,
            None => crate::few_rows::matmul(&x, weight)?.broadcast_add(bias)?,
        },
        None => crate::few_rows::matmul(&x, weight)?,
    };
    Ok(y.reshape((batch, len, output))?)
}

/// An MLP's non-linearity.
pub(crate) fn activate(x: &Tensor, activation: Activation) -> Result<Tensor> {
    Ok(match activation {
        Activation::GeluTanh => crate::gelu::gelu_tanh(x)?,
        Activation::GeluErf => x.gelu_erf()?,
        Activation::Relu => x.relu()?,
        Activation::Silu => crate::silu::silu(x)?,
    })
}
