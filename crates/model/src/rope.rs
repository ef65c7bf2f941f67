//! Rotary position embeddings (Su et al., 2021, "`RoFormer`"), in Hugging Face's layout:
//! the first `rotary_dim` dimensions of each head are split into halves that rotate as
//! pairs `(x[i], x[i + rotary_dim/2])`; the rest pass unchanged.

use candle_core::{DType, Device, Tensor};

use crate::Result;

/// How the rotation's frequencies are stretched for longer contexts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RopeScaling {
    /// Frequencies `theta^(-2i/rotary_dim)` as they are.
    None,
    /// Every frequency divided by `factor` (`rope_type: "linear"`).
    Linear {
        /// The divisor.
        factor: f64,
    },
    /// Llama 3's scaling (`rope_type: "llama3"`): low frequencies divided by `factor`,
    /// high ones kept, the band between blended.
    Llama3 {
        /// The divisor of low frequencies.
        factor: f64,
        /// Wavelengths above `original_context / low_freq_factor` are scaled.
        low_freq_factor: f64,
        /// Wavelengths below `original_context / high_freq_factor` are kept.
        high_freq_factor: f64,
        /// The context the model was first trained on.
        original_context: f64,
    },
}

/// A model's rotary embedding: its base, how many dimensions rotate, and its scaling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rope {
    /// The base of the frequencies, `rope_theta`.
    pub theta: f64,
    /// Dimensions of each head that rotate (even, at most `d_head`).
    pub rotary_dim: usize,
    /// The frequencies' scaling.
    pub scaling: RopeScaling,
}

impl Rope {
    /// The inverse frequencies, one per rotating pair, rounded to f32 as PyTorch keeps them.
    #[must_use]
    pub fn inverse_frequencies(&self) -> Vec<f32> {
        let dim = self.rotary_dim as f64;
        (0..self.rotary_dim / 2)
            .map(|i| {
                let base = 1.0 / self.theta.powf(2.0 * i as f64 / dim);
                self.scale(base) as f32
            })
            .collect()
    }

    fn scale(&self, frequency: f64) -> f64 {
        match self.scaling {
            RopeScaling::None => frequency,
            RopeScaling::Linear { factor } => frequency / factor,
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_context,
            } => {
                let wavelength = 2.0 * std::f64::consts::PI / frequency;
                let low_freq_wavelength = original_context / low_freq_factor;
                let high_freq_wavelength = original_context / high_freq_factor;
                if wavelength < high_freq_wavelength {
                    frequency
                } else if wavelength > low_freq_wavelength {
                    frequency / factor
                } else {
                    let smooth = (original_context / wavelength - low_freq_factor)
                        / (high_freq_factor - low_freq_factor);
                    (1.0 - smooth) * frequency / factor + smooth * frequency
                }
            }
        }
    }

    /// `(cos, sin)`, each `[len, rotary_dim]`, for positions `offset..offset + len`: the
    /// angle of pair `i` at position `p` is `p · inv_freq[i]` (an f32 product, as in
    /// PyTorch), repeated for both halves.
    pub fn tables(&self, offset: usize, len: usize, device: &Device) -> Result<(Tensor, Tensor)> {
        let (half_cos, half_sin) = self.cos_sin(offset, len);
        let half = self.rotary_dim / 2;
        let doubled = |values: &[f32]| -> Vec<f32> {
            values
                .chunks(half.max(1))
                .flat_map(|row| row.iter().chain(row).copied())
                .collect()
        };
        let shape = (len, 2 * half);
        Ok((
            Tensor::from_vec(doubled(&half_cos), shape, device)?,
            Tensor::from_vec(doubled(&half_sin), shape, device)?,
        ))
    }

    /// The cosines and the sines of positions `offset .. offset + len`'s angles, each
    /// `[len, rotary_dim / 2]` row-major: what the GPU engine uploads.
    #[must_use]
    pub fn cos_sin(&self, offset: usize, len: usize) -> (Vec<f32>, Vec<f32>) {
        let frequencies = self.inverse_frequencies();
        let mut cos = Vec::with_capacity(len * frequencies.len());
        let mut sin = Vec::with_capacity(len * frequencies.len());
        for p in offset..offset + len {
            for &f in &frequencies {
                let angle = f64::from(p as f32 * f);
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        (cos, sin)
    }

    /// Rotates `x` `[batch, len, heads, d_head]` with tables from [`Self::tables`].
    pub fn apply(&self, x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
        let (_, len, _, d_head) = x.dims4()?;
        let dim = self.rotary_dim;
        let half = dim / 2;
        // [len, 1, dim]: broadcast over batch and heads.
        let cos = cos.reshape((len, 1, dim))?.to_dtype(x.dtype())?;
        let sin = sin.reshape((len, 1, dim))?.to_dtype(x.dtype())?;
        let rotating = x.narrow(3, 0, dim)?;
        let first = rotating.narrow(3, 0, half)?;
        let second = rotating.narrow(3, half, half)?;
        let rotated_half = Tensor::cat(&[&second.neg()?, &first], 3)?;
        let rotated = (rotating.broadcast_mul(&cos)? + rotated_half.broadcast_mul(&sin)?)?;
        if dim == d_head {
            return Ok(rotated);
        }
        let passing = x.narrow(3, dim, d_head - dim)?;
        Ok(Tensor::cat(&[&rotated, &passing], 3)?.to_dtype(DType::F32)?)
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp, reason = "these values are exact in f32")]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_norms_and_moves_with_position() {
        let rope = Rope {
            theta: 10_000.0,
            rotary_dim: 4,
            scaling: RopeScaling::None,
        };
        let x = Tensor::new(&[[[[1_f32, 2.0, 3.0, 4.0, 5.0, 6.0]]]], &Device::Cpu).unwrap();
        let (cos, sin) = rope.tables(0, 1, &Device::Cpu).unwrap();
        let at0: Vec<f32> = rope
            .apply(&x, &cos, &sin)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(
            at0,
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            "position 0 does not rotate"
        );
        let (cos, sin) = rope.tables(3, 1, &Device::Cpu).unwrap();
        let at3: Vec<f32> = rope
            .apply(&x, &cos, &sin)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        // Pair (x0, x2) turns by 3 radians: (1, 3) → (cos3 − 3 sin3, sin3 + 3 cos3).
        let (c, s) = (3_f32.cos(), 3_f32.sin());
        assert!((at3[0] - (c - 3.0 * s)).abs() < 1e-5 && (at3[2] - (s + 3.0 * c)).abs() < 1e-5);
        let norm = |v: &[f32]| v[..4].iter().map(|a| a * a).sum::<f32>();
        assert!((norm(&at3) - norm(&at0)).abs() < 1e-4);
        assert_eq!(
            &at3[4..],
            &[5.0, 6.0],
            "dimensions past rotary_dim pass unchanged"
        );
    }

    #[test]
    fn llama3_scaling_keeps_high_and_divides_low_frequencies() {
        let rope = Rope {
            theta: 500_000.0,
            rotary_dim: 64,
            scaling: RopeScaling::Llama3 {
                factor: 8.0,
                low_freq_factor: 1.0,
                high_freq_factor: 4.0,
                original_context: 8192.0,
            },
        };
        let plain = Rope {
            scaling: RopeScaling::None,
            ..rope
        };
        let (scaled, base) = (rope.inverse_frequencies(), plain.inverse_frequencies());
        assert_eq!(scaled[0], base[0]);
        assert!((scaled[31] - base[31] / 8.0).abs() < 1e-12);
    }
}
