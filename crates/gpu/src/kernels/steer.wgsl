// Steering through a dictionary (dispatched by the pass recorder, engine/pass): for each
// edit (feature f, mode, value) out[row, :] += (new - old) * w_dec[f, :], where old is
// f's activation on this row and new is the value (STEER_CLAMP) or old times the value
// (STEER_SCALE), at the rows where mask[mask_base + row] is set. One thread per element
// of out [rows, d]. Edits and the mask are in `uploads`, the pass's host inputs.

struct Params {
    rows: u32,
    d: u32,
    d_sae: u32,
    edits: u32,
    // The first edit's index in `edits`, the mask's in `mask`.
    edits_base: u32,
    mask_base: u32,
    _padding0: u32,
    _padding1: u32,
}

// An edit's mode.
const STEER_CLAMP: u32 = 0u;
const STEER_SCALE: u32 = 1u;

struct FeatureEdit {
    feature: u32,
    mode: u32,
    value: f32,
    _padding: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> acts: array<f32>;
@group(0) @binding(3) var<storage, read> w_dec: array<f32>;
@group(0) @binding(4) var<storage, read> edits: array<FeatureEdit>;
@group(0) @binding(5) var<storage, read> mask: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn steer(@builtin(global_invocation_id) id: vec3<u32>) {
    let index = linear_index(id);
    if (index >= params.rows * params.d) {
        return;
    }
    let row = index / params.d;
    let col = index % params.d;
    if (mask[params.mask_base + row] == 0.0) {
        return;
    }
    var change = 0.0;
    for (var e = 0u; e < params.edits; e++) {
        let edit = edits[params.edits_base + e];
        let old = acts[row * params.d_sae + edit.feature];
        var new_value = edit.value;
        if (edit.mode == STEER_SCALE) {
            new_value = old * edit.value;
        }
        change = fma(new_value - old, w_dec[edit.feature * params.d + col], change);
    }
    out[index] += change;
}
