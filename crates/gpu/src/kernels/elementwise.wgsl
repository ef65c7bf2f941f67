// Element-wise steps on x (dispatched by the pass recorder, engine/pass), one thread per
// element of x[base .. base + count]:
// - `add`: x += other (the residual stream).
// - `activate`: x = act(x), act by `op` (an ACT_* code of common.wgsl).
// - `jump_relu`: x = x if x > other[i % width] (the threshold) else 0.
// - `affine`: x[i] = x[i] · other[i % width] (+ mask[i % width] when `op` is 1): a norm's
//   gain (and bias) after its `hook_normalized`.
// - `gate`: x = act(x) · other, act by `op` (a gated MLP: x the gate, other the up
//   projection).
// - `gather_column`: x[i] = other[other_base + i * width + op]: column `op` of a
//   [rows, width] matrix (one feature's activation at each position).
// - `edit`: an intervention at the positions where mask[position] is set; `op` is an
//   EDIT_* code: replace with other, add other, multiply by `factor`, zero. Element i's position is
//   (i / inner) % len: inner is the row width for [pos, …] activations and the number
//   of keys for [head, query, key] ones.

struct Params {
    count: u32,
    base: u32,
    width: u32,
    len: u32,
    inner: u32,
    op: u32,
    factor: f32,
    // Where `edit` finds its value and its mask in `other` and `mask`.
    other_base: u32,
    mask_base: u32,
    _padding0: u32,
    _padding1: u32,
    _padding2: u32,
}

// What `edit` does.
const EDIT_REPLACE: u32 = 0u;
const EDIT_ADD: u32 = 1u;
const EDIT_SCALE: u32 = 2u;
const EDIT_ZERO: u32 = 3u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> other: array<f32>;
@group(0) @binding(3) var<storage, read> mask: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn add(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = linear_index(id);
    if (i < params.count) {
        x[params.base + i] += other[i];
    }
}

@compute @workgroup_size(256, 1, 1)
fn activate(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = linear_index(id);
    if (i >= params.count) {
        return;
    }
    x[params.base + i] = activation(params.op, x[params.base + i]);
}

@compute @workgroup_size(256, 1, 1)
fn jump_relu(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = linear_index(id);
    if (i >= params.count) {
        return;
    }
    let v = x[params.base + i];
    x[params.base + i] = select(0.0, v, v > other[i % params.width]);
}

@compute @workgroup_size(256, 1, 1)
fn edit(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = linear_index(id);
    if (i >= params.count) {
        return;
    }
    let position = (i / params.inner) % params.len;
    if (mask[params.mask_base + position] == 0.0) {
        return;
    }
    let at = params.base + i;
    switch (params.op) {
        case EDIT_REPLACE: {
            x[at] = other[params.other_base + i];
        }
        case EDIT_ADD: {
            x[at] = x[at] + other[params.other_base + i];
        }
        case EDIT_SCALE: {
            x[at] = x[at] * params.factor;
        }
        case EDIT_ZERO, default: {
            x[at] = 0.0;
        }
    }
}

@compute @workgroup_size(256, 1, 1)
fn gather_column(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = linear_index(id);
    if (i < params.count) {
        x[params.base + i] = other[params.other_base + i * params.width + params.op];
    }
}

@compute @workgroup_size(256, 1, 1)
fn affine(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = linear_index(id);
    if (i < params.count) {
        let column = i % params.width;
        var shift = 0.0;
        if (params.op == 1u) {
            shift = mask[column];
        }
        x[params.base + i] = fma(x[params.base + i], other[column], shift);
    }
}

@compute @workgroup_size(256, 1, 1)
fn gate(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = linear_index(id);
    if (i < params.count) {
        x[params.base + i] = activation(params.op, x[params.base + i]) * other[i];
    }
}
