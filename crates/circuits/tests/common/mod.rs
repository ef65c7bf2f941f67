//! What the attribution tests share: the frozen-ablation check of a graph's edges.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use glassbox_circuits::{Graph, NodeKind};
use glassbox_dict::Dictionary;
use glassbox_model::{Edit, HookPoint, Hooks, Intervention, Model};

/// Takes each of the three features with the strongest edges into the top logit out of
/// the real model, with attention patterns, norm scales and every other MLP output frozen
/// at their values on `tokens`, and checks that each centred logit moves by minus the
/// feature's edge into it (within `tolerance`, absolute and relative).
#[allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]
pub(crate) fn check_frozen_ablation(
    model: &Model,
    transcoders: &[Arc<Dictionary>],
    tokens: &[u32],
    graph: &Graph,
    tolerance: f32,
) {
    let mut keep = Hooks::none().cache_everything();
    let before = model.forward_ids(tokens, &mut keep).unwrap();
    let cache = keep.take_cache();
    let last = tokens.len() - 1;
    let centred =
        |row: &[f32], token: u32| row[token as usize] - row.iter().sum::<f32>() / row.len() as f32;
    let before: Vec<f32> = before.get(last).unwrap().to_vec1().unwrap();
    let logits: Vec<(usize, u32)> = graph
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| match n.kind {
            NodeKind::Logit { token, .. } => Some((i, token)),
            _ => None,
        })
        .collect();
    let top = logits[0].0;
    let mut strongest: Vec<usize> = (0..graph.len())
        .filter(|&s| matches!(graph.nodes[s].kind, NodeKind::Feature { .. }))
        .collect();
    strongest.sort_by(|&a, &b| {
        graph
            .edge(b, top)
            .abs()
            .total_cmp(&graph.edge(a, top).abs())
    });
    for &source in strongest.iter().take(3) {
        let NodeKind::Feature {
            layer,
            position,
            feature,
        } = graph.nodes[source].kind
        else {
            unreachable!()
        };
        let mut hooks = Hooks::none().freeze_attention_and_norms(&cache).unwrap();
        for (l, transcoder) in transcoders.iter().enumerate() {
            let mut frozen = cache[&HookPoint::MlpOut(l)].clone();
            if l == layer {
                // Take the feature's write out at its position.
                let write = (transcoder.w_dec.get(feature).unwrap()
                    * f64::from(graph.nodes[source].activation))
                .unwrap();
                let d = write.dim(0).unwrap();
                let mut delta = vec![0.0_f32; tokens.len() * d];
                delta[position * d..(position + 1) * d]
                    .copy_from_slice(&write.to_vec1::<f32>().unwrap());
                let delta = Tensor::from_vec(delta, (1, tokens.len(), d), &Device::Cpu).unwrap();
                frozen = (frozen - delta).unwrap();
            }
            hooks = hooks.intervene(Intervention::everywhere(
                HookPoint::MlpOut(l),
                Edit::Replace(frozen),
            ));
        }
        let after: Vec<f32> = model
            .forward_ids(tokens, &mut hooks)
            .unwrap()
            .get(last)
            .unwrap()
            .to_vec1()
            .unwrap();
        for &(node, token) in &logits {
            let actual = centred(&after, token) - centred(&before, token);
            let predicted = -graph.edge(source, node);
            assert!(
                (actual - predicted).abs() < tolerance + tolerance * predicted.abs(),
                "{:?} → logit {token}: predicted {predicted}, actual {actual}",
                graph.nodes[source].kind
            );
        }
        assert!(
            graph.edge(source, top).abs() > 1e-4,
            "the strongest edge is not trivial"
        );
    }
}
