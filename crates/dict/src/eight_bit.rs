//! Dictionaries stored in 8 bits: the SAELens file with `W_enc` and `W_dec` as signed
//! 8-bit integers, each feature's column of `W_enc` and row of `W_dec` scaled by its own
//! factor (`W_enc.scale`, `W_dec.scale`, `[d_sae]`, so a value is `q · scale`), the biases
//! in f16. A pack's transcoders ship this way at half the size of f16; `Dictionary::load`
//! reads both.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::dictionary::{DictError, Dictionary, Result};

/// The scales' tensor name for matrix `name`.
pub(crate) fn scale_name(name: &str) -> String {
    format!("{name}.scale")
}

/// `values` (`[rows, cols]`, row-major) as 8-bit integers with one scale per row
/// (`per_row`) or per column.
fn quantize(values: &[f32], rows: usize, cols: usize, per_row: bool) -> (Vec<u8>, Vec<f32>) {
    let groups = if per_row { rows } else { cols };
    let at = |g: usize, i: usize| if per_row { g * cols + i } else { i * cols + g };
    let len = if per_row { cols } else { rows };
    let mut scales = vec![0.0_f32; groups];
    for (g, scale) in scales.iter_mut().enumerate() {
        let largest = (0..len).map(|i| values[at(g, i)].abs()).fold(0.0, f32::max);
        *scale = if largest > 0.0 { largest / 127.0 } else { 1.0 };
    }
    let mut bytes = vec![0_u8; values.len()];
    for g in 0..groups {
        for i in 0..len {
            let q = (values[at(g, i)] / scales[g]).round().clamp(-127.0, 127.0) as i8;
            bytes[at(g, i)] = q.to_le_bytes()[0];
        }
    }
    (bytes, scales)
}

/// `bytes` (signed 8-bit, `[rows, cols]`) times each row's (`per_row`) or column's scale.
pub(crate) fn dequantize(
    name: &str,
    bytes: &[u8],
    scales: &[f32],
    (rows, cols): (usize, usize),
    per_row: bool,
) -> Result<Tensor> {
    let groups = if per_row { rows } else { cols };
    if bytes.len() != rows * cols || scales.len() != groups {
        return Err(DictError::Weights(format!(
            "`{name}`: {} values and {} scales for [{rows}, {cols}]",
            bytes.len(),
            scales.len()
        )));
    }
    if scales.iter().any(|s| !s.is_finite()) {
        return Err(DictError::Weights(format!(
            "`{name}`: a scale is not finite"
        )));
    }
    let values: Vec<f32> = bytes
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            let scale = if per_row {
                scales[i / cols]
            } else {
                scales[i % cols]
            };
            f32::from(i8::from_le_bytes([b])) * scale
        })
        .collect();
    Ok(Tensor::from_vec(values, (rows, cols), &Device::Cpu)?)
}

impl Dictionary {
    /// `sae_weights.safetensors` with 8-bit `W_enc` (a scale per feature column) and
    /// `W_dec` (a scale per feature row), biases and any threshold in f16.
    pub fn to_safetensors_8bit(&self) -> Result<Vec<u8>> {
        let (d_in, d_sae, d_out) = (self.config.d_in, self.config.d_sae, self.config.d_out());
        let w_enc: Vec<f32> = self.w_enc.flatten_all()?.to_vec1()?;
        let w_dec: Vec<f32> = self.w_dec.flatten_all()?.to_vec1()?;
        let (enc, enc_scales) = quantize(&w_enc, d_in, d_sae, false);
        let (dec, dec_scales) = quantize(&w_dec, d_sae, d_out, true);
        let f16 = |t: &Tensor| -> Result<Vec<u8>> {
            let values: Vec<half::f16> = t.to_dtype(DType::F16)?.flatten_all()?.to_vec1()?;
            Ok(values.iter().flat_map(|v| v.to_le_bytes()).collect())
        };
        let scales =
            |s: &[f32]| -> Result<Vec<u8>> { f16(&Tensor::from_slice(s, s.len(), &Device::Cpu)?) };
        let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = vec![
            ("W_enc".to_owned(), Dtype::I8, vec![d_in, d_sae], enc),
            (
                scale_name("W_enc"),
                Dtype::F16,
                vec![d_sae],
                scales(&enc_scales)?,
            ),
            (
                "b_enc".to_owned(),
                Dtype::F16,
                vec![d_sae],
                f16(&self.b_enc)?,
            ),
            ("W_dec".to_owned(), Dtype::I8, vec![d_sae, d_out], dec),
            (
                scale_name("W_dec"),
                Dtype::F16,
                vec![d_sae],
                scales(&dec_scales)?,
            ),
            (
                "b_dec".to_owned(),
                Dtype::F16,
                vec![d_out],
                f16(&self.b_dec)?,
            ),
        ];
        if let Some(threshold) = &self.threshold {
            owned.push((
                "threshold".to_owned(),
                Dtype::F16,
                vec![d_sae],
                f16(threshold)?,
            ));
        }
        let views: HashMap<String, TensorView<'_>> = owned
            .iter()
            .map(|(name, dtype, shape, bytes)| {
                TensorView::new(*dtype, shape.clone(), bytes)
                    .map(|view| (name.clone(), view))
                    .map_err(|e| DictError::Weights(e.to_string()))
            })
            .collect::<Result<_>>()?;
        safetensors::serialize(&views, None).map_err(|e| DictError::Weights(e.to_string()))
    }
}

/// The scales of an 8-bit matrix `name` in `file`, `[d_sae]`.
pub(crate) fn scales(file: &SafeTensors<'_>, name: &str, d_sae: usize) -> Result<Vec<f32>> {
    let scale = scale_name(name);
    let view = file
        .tensor(&scale)
        .map_err(|_| DictError::Weights(format!("`{name}` is 8-bit but `{scale}` is missing")))?;
    if view.shape() != [d_sae] {
        return Err(DictError::Weights(format!(
            "`{scale}` has shape {:?}, not [{d_sae}]",
            view.shape()
        )));
    }
    let dtype = match view.dtype() {
        Dtype::F16 => DType::F16,
        Dtype::F32 => DType::F32,
        other => {
            return Err(DictError::Weights(format!(
                "`{scale}` is {other:?}; f16 or f32"
            )));
        }
    };
    Ok(
        Tensor::from_raw_buffer(view.data(), dtype, &[d_sae], &Device::Cpu)?
            .to_dtype(DType::F32)?
            .to_vec1()?,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

    use super::*;
    use crate::{Architecture, DictConfig, DictMetadata};

    fn random(seed: u64, shape: &[usize]) -> Tensor {
        let mut state = seed;
        let values: Vec<f32> = (0..shape.iter().product::<usize>())
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
            })
            .collect();
        Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
    }

    fn dictionary() -> Dictionary {
        Dictionary {
            config: DictConfig {
                architecture: Architecture::TopK,
                d_in: 24,
                d_sae: 40,
                d_out: None,
                k: Some(5),
                apply_b_dec_to_input: false,
                metadata: DictMetadata::default(),
            },
            w_enc: random(1, &[24, 40]),
            b_enc: random(2, &[40]),
            w_dec: random(3, &[40, 24]),
            b_dec: random(4, &[24]),
            threshold: None,
        }
    }

    #[test]
    fn eight_bit_files_load_within_a_step_of_each_features_scale() {
        let d = dictionary();
        let bytes = d.to_safetensors_8bit().unwrap();
        let cfg = serde_json::to_string(&d.config).unwrap();
        let back = Dictionary::load(&cfg, &bytes).unwrap();
        for (name, a, b, per_row) in [
            ("W_enc", &d.w_enc, &back.w_enc, false),
            ("W_dec", &d.w_dec, &back.w_dec, true),
        ] {
            let a: Vec<Vec<f32>> = a.to_vec2().unwrap();
            let b: Vec<Vec<f32>> = b.to_vec2().unwrap();
            let groups = if per_row { a.len() } else { a[0].len() };
            for g in 0..groups {
                let cells: Vec<(f32, f32)> = if per_row {
                    a[g].iter().copied().zip(b[g].iter().copied()).collect()
                } else {
                    a.iter().zip(&b).map(|(ra, rb)| (ra[g], rb[g])).collect()
                };
                let largest = cells.iter().map(|c| c.0.abs()).fold(0.0, f32::max);
                for (x, y) in cells {
                    assert!(
                        (x - y).abs() <= largest / 127.0 * 0.5 + largest * 1e-3,
                        "{name}: {x} vs {y}"
                    );
                }
            }
        }
        // Half the size of f16 for the matrices, or less.
        assert!(bytes.len() < 2 * 24 * 40 + 4 * (40 + 24) * 2 + 1024);
        // The same features fire on the same input.
        let x = random(9, &[3, 24]);
        let (fa, fb) = (d.encode(&x).unwrap(), back.encode(&x).unwrap());
        let active = |t: &Tensor| -> Vec<Vec<bool>> {
            t.to_vec2::<f32>()
                .unwrap()
                .iter()
                .map(|r| r.iter().map(|v| *v > 0.0).collect())
                .collect()
        };
        assert_eq!(active(&fa), active(&fb));
    }

    #[test]
    fn eight_bit_matrices_without_their_scales_are_refused_by_name() {
        let d = dictionary();
        let cfg = serde_json::to_string(&d.config).unwrap();
        let enc = vec![0_u8; 24 * 40];
        let view = TensorView::new(Dtype::I8, vec![24, 40], &enc).unwrap();
        let bytes = safetensors::serialize([("W_enc", view)], None).unwrap();
        let error = Dictionary::load(&cfg, &bytes).unwrap_err().to_string();
        assert!(error.contains("W_enc.scale"), "{error}");
    }
}
