//! Every GGUF block format Glassbox reads, against llama.cpp's own Python package
//! (`gguf`'s `dequantize`) on random blocks (`fixtures/make_quant_fixtures.py`).
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

use candle_core::Device;
use glassbox_model::gguf::{TensorType, dequantize};

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
