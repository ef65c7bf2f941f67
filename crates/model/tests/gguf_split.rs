//! GGUF models split over files (llama.cpp's `gguf-split` convention): a file split in two
//! reads back whole (in either order) to the same tensors, byte for byte, and the same
//! logits as the file it came from; its first file alone reads as the model of its blocks,
//! which computes what the whole model computes there; files missing, doubled or mixed
//! are refused by name.
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]
#![allow(
    clippy::float_cmp,
    reason = "the same computation on the same bytes is exact"
)]

mod common;

use candle_core::{Device, Tensor};
use common::{fixtures, max_abs_diff};
use glassbox_model::gguf::{Gguf, TensorType};
use glassbox_model::gguf_split::{outside_or_before_block, split_gguf, split_path, stored_tensors};
use glassbox_model::gguf_write::GgufVocabulary;
use glassbox_model::{HookPoint, Hooks, Model, gpt2_to_gguf};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

/// The `tiny` fixture (2 blocks, width 32) as one `Q8_0` file.
fn tiny_gguf() -> (Vec<u8>, Vec<u32>) {
    let fixture = &fixtures()[0];
    let model = fixture.model();
    assert_eq!(model.config().n_layer, 2);
    let vocabulary = GgufVocabulary {
        tokens: (0..model.config().vocab_size)
            .map(|i| format!("t{i}"))
            .collect(),
        types: vec![1; model.config().vocab_size],
        merges: Vec::new(),
        pre: "gpt-2".to_owned(),
        eos: None,
    };
    let bytes = gpt2_to_gguf(&model, "tiny", &vocabulary, TensorType::Q8_0).unwrap();
    (bytes, fixture.tokens())
}

/// Block 0 and everything outside the blocks in the first file; block 1 in the second.
fn first_block(name: &str) -> bool {
    outside_or_before_block(1)(name)
}

fn error_of(result: glassbox_model::Result<(Model, glassbox_model::Tokenizer)>) -> String {
    result.map(|_| ()).expect_err("read").to_string()
}

both! {
    fn a_file_split_in_two_reads_back_as_the_file_it_came_from() {
        let (whole, tokens) = tiny_gguf();
        let [first, second] = split_gguf("tiny.gguf", &whole, first_block).unwrap();
        let (a, b) = (split_path("tiny", 0, 2), split_path("tiny", 1, 2));
        assert_eq!((a.as_str(), b.as_str()), ("tiny-00001-of-00002.gguf", "tiny-00002-of-00002.gguf"));
        // Split, not copied: the two files together are the one's size, give or take
        // headers and alignment.
        assert!(first.len() + second.len() < whole.len() + 4096);
        assert!(first.len() > 1000 && second.len() > 1000);
        let original = Gguf::parse("tiny.gguf", &whole).unwrap();
        for files in [[(a.as_str(), &first[..]), (b.as_str(), &second[..])], [(b.as_str(), &second[..]), (a.as_str(), &first[..])]] {
            let merged = Gguf::parse_files(&files).unwrap();
            assert_eq!(stored_tensors(&merged), stored_tensors(&original));
            for (key, value) in original.metadata() {
                assert_eq!(merged.metadata().get(key), Some(value), "{key}");
            }
            let (model, _) = Model::from_gguf_files(&files).unwrap();
            let (reference, _) = Model::from_gguf("tiny.gguf", &whole).unwrap();
            let diff = max_abs_diff(
                &model.forward_ids(&tokens, &mut Hooks::none()).unwrap(),
                &reference.forward_ids(&tokens, &mut Hooks::none()).unwrap(),
            );
            assert_eq!(diff, 0.0);
        }
    }
}

both! {
    fn the_first_file_alone_is_the_model_of_its_blocks() {
        let (whole, tokens) = tiny_gguf();
        let [first, _] = split_gguf("tiny.gguf", &whole, first_block).unwrap();
        let (head, _) = Model::from_first_gguf_files(&[("tiny-00001-of-00002.gguf", &first)]).unwrap();
        assert_eq!(head.dims().n_layer, 1);
        let (model, _) = Model::from_gguf("tiny.gguf", &whole).unwrap();
        assert_eq!(head.dims().d_model, model.dims().d_model);
        let ids = Tensor::new(tokens.as_slice(), &Device::Cpu).unwrap().unsqueeze(0).unwrap();
        let points = [HookPoint::ResidPre(0), HookPoint::ResidMid(0), HookPoint::MlpOut(0), HookPoint::ResidPost(0)];
        let run = |m: &Model| {
            let mut hooks = points.iter().fold(Hooks::none(), |hooks, p| hooks.cache(*p));
            m.forward(&ids, &mut hooks).unwrap();
            hooks.take_cache()
        };
        let (head_cache, cache) = (run(&head), run(&model));
        for point in points {
            assert_eq!(max_abs_diff(&head_cache[&point], &cache[&point]), 0.0, "{point:?}");
        }
        // All the files read as the first blocks' model too.
        let [first, second] = split_gguf("tiny.gguf", &whole, first_block).unwrap();
        let (all, _) = Model::from_first_gguf_files(&[("a", &first), ("b", &second)]).unwrap();
        assert_eq!(all.dims().n_layer, 2);
    }
}

both! {
    fn split_files_missing_doubled_or_mixed_are_refused() {
        let (whole, _) = tiny_gguf();
        let [first, second] = split_gguf("tiny.gguf", &whole, first_block).unwrap();
        let error = error_of(Model::from_gguf_files(&[("a.gguf", &first)]));
        assert!(error.contains("split over 2 files; 1 given"), "{error}");
        let error = error_of(Model::from_gguf("b.gguf", &second));
        assert!(error.contains("b.gguf: file 2 of 2 given without file 1"), "{error}");
        let error = error_of(Model::from_first_gguf_files(&[("b.gguf", &second)]));
        assert!(error.contains("file 2 of 2 given without file 1"), "{error}");
        let error = error_of(Model::from_gguf_files(&[("a.gguf", &first), ("a2.gguf", &first)]));
        assert!(error.contains("file 1 of 2 given without file 2"), "{error}");
        let error = error_of(Model::from_gguf_files(&[("a.gguf", &first), ("tiny.gguf", &whole)]));
        assert!(error.contains("tiny.gguf") && error.contains("not part of a split model"), "{error}");
        // A split file split again, and a split that leaves a part empty.
        let error = split_gguf("a.gguf", &first, first_block).unwrap_err().to_string();
        assert!(error.contains("split already"), "{error}");
        let error = split_gguf("tiny.gguf", &whole, |_| true).unwrap_err().to_string();
        assert!(error.contains("no tensor"), "{error}");
        // The second file without any block of the first: no model to read.
        let [no_blocks, _] = split_gguf("tiny.gguf", &whole, outside_or_before_block(0)).unwrap();
        let error = error_of(Model::from_first_gguf_files(&[("c.gguf", &no_blocks)]));
        assert!(error.contains("no block"), "{error}");
    }
}
