//! Sharing a benchmark model's products with a helper worker that built the same shape,
//! through a `SharedArrayBuffer` (`glassbox_model::shared_columns`): the page's second
//! core, as onnxruntime-web's second thread is its.

use std::rc::Rc;

use glassbox_model::column_split::{self, WeightTable};
use js_sys::SharedArrayBuffer;
use wasm_bindgen::prelude::*;

use crate::{BenchError, BenchModel};

#[wasm_bindgen]
impl BenchModel {
    /// Bytes of a `SharedArrayBuffer` for sharing this model's products of up to
    /// `tokens` rows with a helper.
    #[must_use]
    #[wasm_bindgen(js_name = sharedBytes)]
    pub fn shared_bytes(&self, tokens: usize) -> usize {
        let config = self.model.config();
        let d_mlp = config.n_inner.unwrap_or(4 * config.n_embd);
        glassbox_model::shared_columns::buffer_bytes(
            tokens,
            config.n_embd.max(d_mlp),
            (3 * config.n_embd).max(d_mlp).max(config.vocab_size),
        )
    }

    /// From now on, shares this thread's products with the helper serving `buffer`
    /// (until [`Self::stop_sharing`], or until the helper fails). The first call's
    /// buffer is kept for the later ones, with what this side knows of the helper (as a
    /// page keeps its helper installed from one pass to the next).
    #[wasm_bindgen(js_name = shareColumns)]
    pub fn share_columns(&self, buffer: &SharedArrayBuffer) -> Result<(), JsError> {
        let kept = self.columns.borrow().clone();
        let columns = if let Some(columns) = kept {
            columns
        } else {
            let columns = Rc::new(
                glassbox_model::shared_columns::SharedColumns::new(buffer, self.table()?)
                    .map_err(|why| JsError::new(&why))?,
            );
            *self.columns.borrow_mut() = Some(columns.clone());
            columns
        };
        column_split::share_with(columns);
        Ok(())
    }

    /// Stops sharing this thread's products.
    #[wasm_bindgen(js_name = stopSharing)]
    pub fn stop_sharing(&self) {
        column_split::stop_sharing();
    }

    /// Why sharing stopped on its own (the helper failed or did not answer), if it did.
    #[must_use]
    #[wasm_bindgen(js_name = whySharingStopped)]
    pub fn why_sharing_stopped(&self) -> Option<String> {
        column_split::why_sharing_stopped()
    }

    /// A helper worker's loop: answers the products asked through `buffer` with this
    /// model's weights, blocking the worker until [`stop_helper`].
    #[wasm_bindgen(js_name = serveColumns)]
    pub fn serve_columns(&self, buffer: &SharedArrayBuffer) -> Result<(), JsError> {
        glassbox_model::shared_columns::serve(buffer, &self.table()?)
            .map_err(|why| JsError::new(&why))
    }
}

impl BenchModel {
    /// The model's weights by number, alike in every worker that built the same shape.
    fn table(&self) -> Result<WeightTable, BenchError> {
        let weights = glassbox_model::Model::from(&self.model).product_weights();
        Ok(WeightTable::new(weights)?)
    }
}

/// Asks the helper serving `buffer` to return from [`BenchModel::serve_columns`].
#[wasm_bindgen(js_name = stopHelper)]
pub fn stop_helper(buffer: &SharedArrayBuffer) -> Result<(), JsError> {
    glassbox_model::shared_columns::stop(buffer).map_err(|why| JsError::new(&why))
}
