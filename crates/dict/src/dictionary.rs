//! A loaded dictionary: encode activations into features, decode features back.

use candle_core::{D, DType, Device, Tensor};
use safetensors::SafeTensors;

use crate::{Architecture, DictConfig};

/// What can go wrong loading or running a dictionary.
#[derive(Debug, thiserror::Error)]
pub enum DictError {
    /// `cfg.json` is not a dictionary config, or its numbers are impossible.
    #[error("bad dictionary config: {0}")]
    Config(String),
    /// The weights file is malformed or disagrees with the config.
    #[error("bad dictionary weights: {0}")]
    Weights(String),
    /// Input of the wrong width.
    #[error("bad input: {0}")]
    Input(String),
    /// A failure inside candle.
    #[error("tensor computation failed: {0}")]
    Tensor(#[from] candle_core::Error),
}

pub(crate) type Result<T> = std::result::Result<T, DictError>;

/// A sparse autoencoder or transcoder, in f32 on the CPU.
#[derive(Debug, Clone)]
pub struct Dictionary {
    /// The config it was loaded with.
    pub config: DictConfig,
    /// `W_enc`, `[d_in, d_sae]`.
    pub w_enc: Tensor,
    /// `b_enc`, `[d_sae]`.
    pub b_enc: Tensor,
    /// `W_dec`, `[d_sae, d_out]`: row `i` is feature `i`'s direction.
    pub w_dec: Tensor,
    /// `b_dec`, `[d_out]`.
    pub b_dec: Tensor,
    /// JumpReLU thresholds, `[d_sae]`.
    pub threshold: Option<Tensor>,
}

impl Dictionary {
    /// Loads `cfg.json` and `sae_weights.safetensors` contents, checking every shape.
    pub fn load(config_json: &str, weights: &[u8]) -> Result<Self> {
        let config: DictConfig =
            serde_json::from_str(config_json).map_err(|e| DictError::Config(e.to_string()))?;
        if config.d_in == 0 || config.d_sae == 0 || config.d_out() == 0 {
            return Err(DictError::Config(
                "d_in, d_sae and d_out must be positive".to_owned(),
            ));
        }
        if config.architecture == Architecture::TopK
            && !config.k.is_some_and(|k| k > 0 && k <= config.d_sae)
        {
            return Err(DictError::Config(format!(
                "topk needs 1 ≤ k ≤ d_sae = {}, got {:?}",
                config.d_sae, config.k
            )));
        }
        let file = SafeTensors::deserialize(weights)
            .map_err(|e| DictError::Weights(format!("not a valid safetensors file: {e}")))?;
        let (d_in, d_sae, d_out) = (config.d_in, config.d_sae, config.d_out());
        let get = |name: &str, shape: &[usize]| -> Result<Tensor> {
            let view = file
                .tensor(name)
                .map_err(|_| DictError::Weights(format!("missing tensor `{name}`")))?;
            if view.shape() != shape {
                return Err(DictError::Weights(format!(
                    "`{name}` has shape {:?}, but the config implies {shape:?}",
                    view.shape()
                )));
            }
            let dtype = match view.dtype() {
                safetensors::Dtype::F32 => DType::F32,
                safetensors::Dtype::F16 => DType::F16,
                safetensors::Dtype::BF16 => DType::BF16,
                safetensors::Dtype::I8 if matches!(name, "W_enc" | "W_dec") => {
                    let scales = crate::eight_bit::scales(&file, name, d_sae)?;
                    return crate::eight_bit::dequantize(
                        name,
                        view.data(),
                        &scales,
                        (shape[0], shape[1]),
                        name == "W_dec",
                    );
                }
                other => {
                    return Err(DictError::Weights(format!(
                        "`{name}` is {other:?}; f32, f16 and bf16 are read (and 8-bit W_enc, W_dec with their scales)"
                    )));
                }
            };
            Ok(
                Tensor::from_raw_buffer(view.data(), dtype, shape, &Device::Cpu)?
                    .to_dtype(DType::F32)?,
            )
        };
        let threshold = if config.architecture == Architecture::JumpReLU {
            Some(get("threshold", &[d_sae])?)
        } else {
            None
        };
        Ok(Self {
            w_enc: get("W_enc", &[d_in, d_sae])?,
            b_enc: get("b_enc", &[d_sae])?,
            w_dec: get("W_dec", &[d_sae, d_out])?,
            b_dec: get("b_dec", &[d_out])?,
            threshold,
            config,
        })
    }

    /// The same dictionary for inputs taken before an affine map: where this one read
    /// `u = x̂ · gain + bias` (a LayerNorm's output), the result reads `x̂` and computes
    /// the same features (`W_enc' = diag(gain) · W_enc`, `b_enc' = b_enc + (bias − b_dec
    /// if subtracted) · W_enc`). Only for a dictionary that writes elsewhere than it reads
    /// (a transcoder), whose decoder is unchanged.
    pub fn fold_input_affine(&self, gain: &Tensor, bias: &Tensor) -> Result<Self> {
        let c = &self.config;
        if c.metadata.hook_name_out.is_none()
            || c.metadata.hook_name_out.as_deref() == Some(c.metadata.hook_name.as_str())
        {
            return Err(DictError::Config(
                "only a dictionary that writes elsewhere than it reads (a transcoder) can take \
                 its input before an affine map"
                    .to_owned(),
            ));
        }
        let d_in = c.d_in;
        if gain.dims() != [d_in] || bias.dims() != [d_in] {
            return Err(DictError::Input(format!(
                "the gain and bias are {:?} and {:?}; the dictionary reads {d_in}",
                gain.dims(),
                bias.dims()
            )));
        }
        let shift = if c.apply_b_dec_to_input {
            (bias - &self.b_dec)?
        } else {
            bias.clone()
        };
        let w_enc = self.w_enc.broadcast_mul(&gain.unsqueeze(1)?)?;
        let b_enc = (&self.b_enc + shift.unsqueeze(0)?.matmul(&self.w_enc)?.squeeze(0)?)?;
        let mut config = self.config.clone();
        config.apply_b_dec_to_input = false;
        Ok(Self {
            config,
            w_enc,
            b_enc,
            w_dec: self.w_dec.clone(),
            b_dec: self.b_dec.clone(),
            threshold: self.threshold.clone(),
        })
    }

    /// Feature activations `[rows, d_sae]` of inputs `[rows, d_in]`.
    pub fn encode(&self, x: &Tensor) -> Result<Tensor> {
        let (_, width) = x
            .dims2()
            .map_err(|_| DictError::Input(format!("expected [rows, d_in], got {:?}", x.dims())))?;
        if width != self.config.d_in {
            return Err(DictError::Input(format!(
                "inputs are {width} wide, the dictionary reads {}",
                self.config.d_in
            )));
        }
        let x = if self.config.apply_b_dec_to_input {
            x.broadcast_sub(&self.b_dec)?
        } else {
            x.clone()
        };
        let pre = x.matmul(&self.w_enc)?.broadcast_add(&self.b_enc)?;
        Ok(match self.config.architecture {
            Architecture::Standard | Architecture::Transcoder => pre.relu()?,
            Architecture::JumpReLU => {
                let threshold = self
                    .threshold
                    .as_ref()
                    .ok_or_else(|| DictError::Config("jumprelu without threshold".to_owned()))?;
                let keep = pre.broadcast_gt(threshold)?.to_dtype(DType::F32)?;
                (pre * keep)?
            }
            Architecture::TopK => top_k(&pre.relu()?, self.config.k.unwrap_or(1))?,
        })
    }

    /// The reconstruction (or, for a transcoder, the prediction) `[rows, d_out]`.
    pub fn decode(&self, features: &Tensor) -> Result<Tensor> {
        Ok(features.matmul(&self.w_dec)?.broadcast_add(&self.b_dec)?)
    }
}

/// Keeps the `k` largest entries of each row (ties broken by the lower index), zeroing the
/// rest.
fn top_k(x: &Tensor, k: usize) -> Result<Tensor> {
    let rows: Vec<Vec<f32>> = x.to_vec2()?;
    let width = x.dim(D::Minus1)?;
    let mut out = vec![0.0_f32; rows.len() * width];
    for (r, row) in rows.iter().enumerate() {
        let mut order: Vec<usize> = (0..width).collect();
        let larger_first = |a: &usize, b: &usize| row[*b].total_cmp(&row[*a]).then(a.cmp(b));
        if k > 0 && k < width {
            order.select_nth_unstable_by(k - 1, larger_first);
        }
        for &i in order.iter().take(k) {
            out[r * width + i] = row[i];
        }
    }
    Ok(Tensor::from_vec(out, (rows.len(), width), x.device())?)
}
