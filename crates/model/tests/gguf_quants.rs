//! Every GGUF block format Glassbox reads, against llama.cpp's own Python package
//! (`gguf`'s `dequantize`) on random blocks (`fixtures/make_quant_fixtures.py`).
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

use candle_core::Device;
use glassbox_model::gguf::{TensorType, dequantize, quantize};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod common;

both! {
    fn every_block_format_decodes_as_llama_cpp_does() {
        let fixture = candle_core::safetensors::load_buffer(
            include_bytes!("fixtures/quants/blocks.safetensors"),
            &Device::Cpu,
        )
        .unwrap();
        let kinds = [
            ("Q4_0", TensorType::Q4_0),
            ("Q4_1", TensorType::Q4_1),
            ("Q5_0", TensorType::Q5_0),
            ("Q5_1", TensorType::Q5_1),
            ("Q8_0", TensorType::Q8_0),
            ("Q2_K", TensorType::Q2K),
            ("Q3_K", TensorType::Q3K),
            ("Q4_K", TensorType::Q4K),
            ("Q5_K", TensorType::Q5K),
            ("Q6_K", TensorType::Q6K),
        ];
        for (name, kind) in kinds {
            let raw: Vec<u8> = fixture[&format!("{name}.raw")].to_vec1().unwrap();
            let expected: Vec<f32> = fixture[&format!("{name}.values")].to_vec1().unwrap();
            let ours = dequantize(kind, &raw);
            assert_eq!(ours.len(), expected.len(), "{name}");
            for (i, (a, b)) in ours.iter().zip(&expected).enumerate() {
                assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{name}[{i}]: {a} vs {b}");
            }
        }
    }
}

#[test]
fn quantized_blocks_come_back_within_half_a_step() {
    let mut rng = glassbox_model::rng::SplitMix64::new(3);
    let values: Vec<f32> = (0..32 * 40)
        .map(|_| (rng.next_normal() * 0.3) as f32)
        .collect();
    for (kind, steps) in [
        (TensorType::Q8_0, 254.0),
        (TensorType::Q4_0, 14.0),
        (TensorType::Q4_1, 15.0),
    ] {
        let bytes = quantize(kind, &values).unwrap();
        assert_eq!(bytes.len(), 40 * kind.block_bytes());
        let back = dequantize(kind, &bytes);
        for (block, restored) in values.chunks(32).zip(back.chunks(32)) {
            let (lo, hi) = block
                .iter()
                .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
            let range = if kind == TensorType::Q4_1 {
                hi - lo
            } else {
                2.0 * lo.abs().max(hi.abs())
            };
            let step = range / steps;
            for (v, r) in block.iter().zip(restored) {
                assert!(
                    (v - r).abs() <= step * 0.6,
                    "{kind:?}: {v} came back as {r}"
                );
            }
        }
    }
    assert!(quantize(TensorType::Q6K, &values).is_none());
    assert!(quantize(TensorType::Q8_0, &values[..31]).is_none());
}
