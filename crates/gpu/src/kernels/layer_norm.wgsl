// Normalization of each row of x [rows, d], as TransformerLens hooks it, before the gain
// (and bias), which the recorder applies after the `hook_normalized` site:
// - LayerNorm: out = (x - mean) / scale, scale = sqrt(var + eps) (variance of the centred row);
// - with `rms` set, RMSNorm: out = x / scale, scale = sqrt(mean(x²) + eps).
//
// Dispatched by the engine's pass recorder (engine/pass), one workgroup of REDUCE_THREADS threads
// per row (reductions from common.wgsl).
// - `layer_norm` computes each row's scale, writes it to `scale` (the hook
//   `ln*.hook_scale`) and normalizes with it.
// - `layer_norm_with_scale` normalizes with the scale already in `scale` (frozen or edited).

struct Params {
    rows: u32,
    d: u32,
    eps: f32,
    rms: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> scale: array<f32>;

fn row_mean(base: u32, lane: u32) -> f32 {
    if (params.rms == 1u) {
        return 0.0;
    }
    var sum = 0.0;
    for (var i = lane; i < params.d; i += REDUCE_THREADS) {
        sum += x[base + i];
    }
    return workgroup_sum(sum, lane) / f32(params.d);
}

fn normalize(base: u32, lane: u32, mean: f32, s: f32) {
    for (var i = lane; i < params.d; i += REDUCE_THREADS) {
        out[base + i] = (x[base + i] - mean) / s;
    }
}

@compute @workgroup_size(REDUCE_THREADS, 1, 1)
fn layer_norm(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>) {
    let row = group.x;
    let lane = local.x;
    let base = row * params.d;
    let mean = row_mean(base, lane);
    var squares = 0.0;
    for (var i = lane; i < params.d; i += REDUCE_THREADS) {
        let centred = x[base + i] - mean;
        squares += centred * centred;
    }
    let variance = workgroup_sum(squares, lane) / f32(params.d);
    let s = sqrt(variance + params.eps);
    if (lane == 0u) {
        scale[row] = s;
    }
    normalize(base, lane, mean, s);
}

@compute @workgroup_size(REDUCE_THREADS, 1, 1)
fn layer_norm_with_scale(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>) {
    let row = group.x;
    let lane = local.x;
    let base = row * params.d;
    let mean = row_mean(base, lane);
    normalize(base, lane, mean, scale[row]);
}
