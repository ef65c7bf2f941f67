//! Suggested supernodes of a prompt's graph (`glassbox_circuits::suggest_supernodes`),
//! with the decoder vectors of this lab's transcoders.

use glassbox_circuits::{Alike, FileNode, GraphFile, Suggestion, suggest_supernodes};

use crate::lab::Lab;

impl Lab {
    /// The supernodes `graph` (computed on this lab's transcoders) suggests: features on
    /// one token whose edge profiles and decoder vectors are as `alike` as asked.
    #[must_use]
    pub fn suggest_supernodes(&self, graph: &GraphFile, alike: Alike) -> Vec<Suggestion> {
        let decoder = |node: &FileNode| -> Option<Vec<f32>> {
            let (layer, feature) = node.transcoder_feature()?;
            let dictionary = self.dictionaries.get(layer)?;
            let row = dictionary.w_dec.get(feature).ok()?;
            row.to_dtype(candle_core::DType::F32).ok()?.to_vec1().ok()
        };
        suggest_supernodes(graph, alike, &decoder)
    }
}
