//! Seeded random dictionaries, for tests and benchmarks that need a dictionary of a given
//! shape without training one: the same seed gives the same weights on every machine.

use candle_core::{Device, Tensor};
use glassbox_model::rng::SplitMix64;

use crate::{Architecture, DictConfig, DictError, DictMetadata, Dictionary};

/// The spread of each tensor of a seeded dictionary: values are uniform in `[-s, s)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// Of the encoder `W_enc`.
    pub w_enc: f32,
    /// Of the encoder bias `b_enc`.
    pub b_enc: f32,
    /// Of the decoder `W_dec`.
    pub w_dec: f32,
    /// Of the decoder bias `b_dec`.
    pub b_dec: f32,
}

impl Spread {
    /// Weights of a size that keeps a real model's activations in range (`SmolLM2`, GPT-2).
    pub const SMALL: Spread = Spread {
        w_enc: 0.09,
        b_enc: 0.17,
        w_dec: 0.09,
        b_dec: 0.09,
    };
    /// Large weights, for tiny models where every feature should matter.
    pub const LARGE: Spread = Spread {
        w_enc: 0.5,
        b_enc: 0.3,
        w_dec: 0.5,
        b_dec: 0.2,
    };
}

impl Dictionary {
    /// A random TopK transcoder `d → d_sae → d` keeping `k` features, its weights drawn
    /// from `seed` within `spread`; with `layer`, it is attached where the field's
    /// transcoders sit (`blocks.{layer}.ln2.hook_normalized` → `blocks.{layer}.hook_mlp_out`).
    pub fn seeded_topk(
        d: usize,
        d_sae: usize,
        k: usize,
        seed: u64,
        spread: Spread,
        layer: Option<usize>,
    ) -> Result<Dictionary, DictError> {
        let mut rng = SplitMix64::new(seed);
        let mut tensor = |shape: &[usize], s: f32| {
            let values: Vec<f32> = (0..shape.iter().product::<usize>())
                .map(|_| (rng.next_f64() * 2.0 - 1.0) as f32 * s)
                .collect();
            Tensor::from_vec(values, shape, &Device::Cpu)
        };
        let metadata = layer.map_or_else(DictMetadata::default, |l| DictMetadata {
            hook_name: format!("blocks.{l}.ln2.hook_normalized"),
            hook_name_out: Some(format!("blocks.{l}.hook_mlp_out")),
            model_name: None,
        });
        Ok(Dictionary {
            config: DictConfig {
                architecture: Architecture::TopK,
                d_in: d,
                d_sae,
                d_out: None,
                k: Some(k),
                apply_b_dec_to_input: false,
                metadata,
            },
            w_enc: tensor(&[d, d_sae], spread.w_enc)?,
            b_enc: tensor(&[d_sae], spread.b_enc)?,
            w_dec: tensor(&[d_sae, d], spread.w_dec)?,
            b_dec: tensor(&[d], spread.b_dec)?,
            threshold: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_dictionary_and_values_stay_in_their_spread() {
        let a = Dictionary::seeded_topk(8, 16, 4, 7, Spread::LARGE, Some(3)).unwrap();
        let b = Dictionary::seeded_topk(8, 16, 4, 7, Spread::LARGE, Some(3)).unwrap();
        let c = Dictionary::seeded_topk(8, 16, 4, 8, Spread::LARGE, Some(3)).unwrap();
        let values = |d: &Dictionary| d.w_enc.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(values(&a), values(&b));
        assert_ne!(values(&a), values(&c));
        assert!(values(&a).iter().all(|v| v.abs() <= 0.5));
        assert_eq!(a.config.metadata.hook_name, "blocks.3.ln2.hook_normalized");
        assert_eq!(a.w_dec.dims(), &[16, 8]);
    }
}
