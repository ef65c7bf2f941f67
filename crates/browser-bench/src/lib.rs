//! The CPU engine and onnxruntime-web side by side in one page (`cargo xtask bench`).
//!
//! This crate, built for the browser as the page is built, gives the page of
//! `tests/bench/onnx_bench.mjs` each benchmark shape's model (the shapes of
//! `crates/model/benches/shapes.rs`, with the same seeded weights) twice: as the CPU
//! engine's [`Gpt2`], to time its forward pass, and as an ONNX model of the same weights
//! ([`gpt2_onnx`]) for onnxruntime-web to time beside it, and to check that both give the
//! same logits.

mod gpt2_onnx;
mod onnx;
mod protobuf;
#[cfg(target_arch = "wasm32")]
pub mod sharing;

#[path = "../../model/benches/shapes.rs"]
#[allow(
    unreachable_pub,
    reason = "a module of the model's benchmarks, shared with this crate"
)]
mod shapes;

use std::cell::RefCell;
use std::rc::Rc;

use glassbox_model::shared_columns::SharedColumns;
use glassbox_model::{Gpt2, Gpt2Weights, Hooks};
use wasm_bindgen::prelude::*;

pub use gpt2_onnx::{INPUT_IDS, LOGITS, gpt2_onnx};

/// Why a benchmark model could not be made or run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The model could not be built or run.
    #[error(transparent)]
    Model(#[from] glassbox_model::ModelError),
    /// A tensor could not be read.
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
    /// The ONNX model could not be written.
    #[error("ONNX export: {0}")]
    Export(String),
    /// No benchmark shape has this number.
    #[error("no benchmark shape {0}")]
    NoShape(usize),
}

/// One benchmark shape's model: the CPU engine's, and its ONNX export until the page takes it.
#[wasm_bindgen]
pub struct BenchModel {
    name: String,
    vocab: usize,
    model: Gpt2,
    onnx: Option<Vec<u8>>,
    /// The helper's side of sharing, once made: kept from one pass to the next, as a
    /// page keeps it.
    #[cfg_attr(
        not(target_arch = "wasm32"),
        expect(dead_code, reason = "sharing is the browser's")
    )]
    columns: RefCell<Option<Rc<SharedColumns>>>,
}

#[wasm_bindgen]
impl BenchModel {
    /// How many benchmark shapes there are.
    #[must_use]
    #[wasm_bindgen(js_name = shapeCount)]
    pub fn shape_count() -> usize {
        shapes::bench_shapes().len()
    }

    /// Benchmark shape `index`'s model, with the seed-0 weights the other benchmarks time.
    #[wasm_bindgen(constructor)]
    pub fn new(index: usize) -> Result<BenchModel, JsError> {
        Ok(Self::build(index)?)
    }

    /// Benchmark shape `index`'s model for a helper worker ([`Self::serve_columns`]): the
    /// same weights, without the ONNX export.
    #[wasm_bindgen(js_name = forHelper)]
    pub fn for_helper(index: usize) -> Result<BenchModel, JsError> {
        let (name, config) = Self::shape(index)?;
        let weights = Gpt2Weights::init(&config, 0).map_err(BenchError::from)?;
        Ok(Self {
            name: name.to_owned(),
            vocab: config.vocab_size,
            model: Gpt2::new(config, weights).map_err(BenchError::from)?,
            onnx: None,
            columns: RefCell::default(),
        })
    }

    /// The shape's name, as the other benchmarks print it.
    #[must_use]
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// The vocabulary's size.
    #[must_use]
    #[wasm_bindgen(getter)]
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// The ONNX model of the same weights, once (this side keeps no copy after).
    #[wasm_bindgen(js_name = takeOnnx)]
    pub fn take_onnx(&mut self) -> Result<Vec<u8>, JsError> {
        self.onnx
            .take()
            .ok_or_else(|| JsError::new("the ONNX model was already taken"))
    }

    /// One forward pass over `ids` (every position's logits, left inside the engine).
    pub fn forward(&self, ids: &[u32]) -> Result<(), JsError> {
        self.model
            .forward_ids(ids, &mut Hooks::none())
            .map_err(BenchError::from)?;
        Ok(())
    }

    /// Every position's logits for `ids`, `[tokens · vocab]`, to compare with onnxruntime's.
    pub fn logits(&self, ids: &[u32]) -> Result<Vec<f32>, JsError> {
        let logits = self
            .model
            .forward_ids(ids, &mut Hooks::none())
            .map_err(BenchError::from)?;
        Ok(logits
            .flatten_all()
            .and_then(|l| l.to_vec1())
            .map_err(BenchError::from)?)
    }
}

impl BenchModel {
    fn shape(index: usize) -> Result<(&'static str, glassbox_model::Gpt2Config), BenchError> {
        shapes::bench_shapes()
            .into_iter()
            .nth(index)
            .ok_or(BenchError::NoShape(index))
    }

    fn build(index: usize) -> Result<Self, BenchError> {
        let (name, config) = Self::shape(index)?;
        let weights = Gpt2Weights::init(&config, 0)?;
        let onnx = gpt2_onnx(&config, &weights)?;
        Ok(Self {
            name: name.to_owned(),
            vocab: config.vocab_size,
            model: Gpt2::new(config, weights)?,
            onnx: Some(onnx),
            columns: RefCell::default(),
        })
    }
}
