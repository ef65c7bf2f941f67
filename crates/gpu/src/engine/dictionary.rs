//! A feature dictionary's weights on the device (where it reads and writes is its
//! [`Attachment`](glassbox_engine::Attachment), kept beside it).

use candle_core::Tensor;
use glassbox_dict::{Architecture, Dictionary};

use super::weights::{Uploader, flat};
use crate::{GpuContext, GpuError};

/// A dictionary's weights on the device.
#[derive(Debug, Clone)]
pub(crate) struct DeviceDictionary {
    pub(crate) architecture: Architecture,
    pub(crate) w_enc: wgpu::Buffer,
    /// `b_enc`, with `b_dec · W_enc` subtracted when the config subtracts `b_dec` from the
    /// input first: the same pre-activations from one product.
    pub(crate) b_enc: wgpu::Buffer,
    pub(crate) w_dec: wgpu::Buffer,
    pub(crate) threshold: Option<wgpu::Buffer>,
    pub(crate) bytes: u64,
}

impl DeviceDictionary {
    pub(crate) fn upload(ctx: &GpuContext, dictionary: &Dictionary) -> Result<Self, GpuError> {
        let config = &dictionary.config;
        let mut up = Uploader::new(ctx);
        let b_enc: Tensor = if config.apply_b_dec_to_input {
            dictionary
                .b_dec
                .unsqueeze(0)
                .and_then(|b| b.matmul(&dictionary.w_enc))
                .and_then(|b| b.squeeze(0))
                .and_then(|b| dictionary.b_enc.sub(&b))?
        } else {
            dictionary.b_enc.clone()
        };
        let threshold = match &dictionary.threshold {
            Some(t) => Some(up.values("dictionary threshold", &flat(t)?)?),
            None => None,
        };
        Ok(Self {
            architecture: config.architecture,
            w_enc: up.tensor("dictionary encoder", &dictionary.w_enc)?,
            b_enc: up.tensor("dictionary encoder bias", &b_enc)?,
            w_dec: up.tensor("dictionary decoder", &dictionary.w_dec)?,
            threshold,
            bytes: up.bytes,
        })
    }
}
