// Attribution's transposed passes (dispatched by engine/attribution/batch.rs). Gradients
// g[target, position, d] of a batch of targets are carried from a block's output back
// to its input through the frozen attention, and read off against the sources written
// at each block. `span` positions are carried (attention is causal: nothing a target at
// position p reads comes from later); the frozen pattern holds `stride` positions.
// - `seed`: g = each target's direction at its position, zero elsewhere. Directions are
//   a[a_base + t * d ..], positions c[c_base + t].
// - `attention_back`: out[t, k, g * dh + i] = sum over the query heads h sharing key/value
//   head g, and over q >= k, of A_h(q, k) a[t, q, h * dh + i] (the pattern transposed;
//   a holds heads * dh values a row, out kv_heads * dh), the pattern at
//   b[b_base + (h * stride + q) * stride + k].
// - `norm_back`: out[t, k, :] += P(a[t, k, :] * gain) * inverse_scale[k], back through
//   ln_1 (gain, centring P where `centred` (LayerNorm; an RMSNorm does not centre), frozen
//   scale) and the residual connection; gain at b[b_base ..], inverse scales at
//   b[b_scales ..]. One workgroup of REDUCE_THREADS threads per row.
// - `read_off`: for each entry (position, row, scale bits, column) at c[c_base + 4 e ..],
//   out[t * out_cols + column] = scale * (a[t, position, :] . b[b_base + row * d ..]);
//   entries at positions beyond the span write 0.

struct Params {
    count: u32,
    span: u32,
    d: u32,
    heads: u32,
    stride: u32,
    entries: u32,
    out_cols: u32,
    a_base: u32,
    b_base: u32,
    c_base: u32,
    b_scales: u32,
    kv_heads: u32,
    d_head: u32,
    centred: u32,
    _padding0: u32,
    _padding1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> c: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn seed(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = linear_index(id);
    let d = params.d;
    if (i >= params.count * params.span * d) {
        return;
    }
    let t = i / (params.span * d);
    let p = (i / d) % params.span;
    var value = 0.0;
    if (p == c[params.c_base + t]) {
        value = a[params.a_base + t * d + i % d];
    }
    out[i] = value;
}

@compute @workgroup_size(256, 1, 1)
fn attention_back(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = linear_index(id);
    let dh = params.d_head;
    let width = params.kv_heads * dh;
    let span = params.span;
    if (i >= params.count * span * width) {
        return;
    }
    let t = i / (span * width);
    let k = (i / width) % span;
    let column = i % width;
    let g = column / dh;
    let within = column % dh;
    let group = params.heads / params.kv_heads;
    let heads_width = params.heads * dh;
    let stride = params.stride;
    var sum = 0.0;
    for (var h = g * group; h < (g + 1u) * group; h++) {
        let pattern = params.b_base + h * stride * stride + k;
        let source_column = h * dh + within;
        for (var q = k; q < span; q++) {
            sum += b[pattern + q * stride] * a[(t * span + q) * heads_width + source_column];
        }
    }
    out[i] = sum;
}

@compute @workgroup_size(64, 1, 1)
fn norm_back(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_id) local: vec3<u32>,
) {
    let row = row_index(group);
    if (row >= params.count * params.span) {
        return;
    }
    let d = params.d;
    let lane = local.x;
    var total = 0.0;
    for (var i = lane; i < d; i += REDUCE_THREADS) {
        total += a[row * d + i] * b[params.b_base + i];
    }
    let mean = select(0.0, workgroup_sum(total, lane) / f32(d), params.centred == 1u);
    let inverse_scale = b[params.b_scales + row % params.span];
    for (var i = lane; i < d; i += REDUCE_THREADS) {
        out[row * d + i] += (a[row * d + i] * b[params.b_base + i] - mean) * inverse_scale;
    }
}

@compute @workgroup_size(256, 1, 1)
fn read_off(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = linear_index(id);
    if (i >= params.count * params.entries) {
        return;
    }
    let t = i / params.entries;
    let entry = params.c_base + 4u * (i % params.entries);
    let position = c[entry];
    let row = c[entry + 1u];
    let scale = bitcast<f32>(c[entry + 2u]);
    let column = c[entry + 3u];
    let d = params.d;
    var sum = 0.0;
    if (position < params.span) {
        let g = (t * params.span + position) * d;
        let v = params.b_base + row * d;
        for (var j = 0u; j < d; j++) {
            sum += a[g + j] * b[v + j];
        }
    }
    out[t * params.out_cols + column] = scale * sum;
}
