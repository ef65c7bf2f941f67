// Linear layers: c[m, n] = act(a[m, k] * b[k, n] + bias[n]), every matrix row-major.
//
// uses: tiled.wgsl
//
// Dispatched by matmul.rs and the pass recorder (the Params block and the constants are
// checked against kernels/params.rs by its tests). Two entry points:
// - `main`, tiled (tiled.wgsl's `tiled_product`);
// - `gemv`, for at most GEMV_ROWS rows (one-token decode steps, the last position's
//   logits): each thread computes one column for every row, reading b down that column;
//   neighbouring threads read neighbouring columns.
// `a_offset` skips that many values of a (e.g. to start at the last position's row);
// c's rows are `ldc` apart and its columns start at `col_offset`, so a product over a
// slice of b's columns (a split embedding) lands in its place.

struct Params {
    m: u32,
    k: u32,
    n: u32,
    ldc: u32,
    col_offset: u32,
    a_offset: u32,
    // 1: add bias[col]; 0: no bias (the slot is bound but not read).
    has_bias: u32,
    // An ACT_* code of common.wgsl, applied after the bias.
    activation: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

// b[kk, col], row-major.
fn b_value(kk: u32, col: u32) -> f32 {
    return b[kk * params.n + col];
}

// Neighbouring threads load neighbouring columns of a row of b.
fn b_tile_position(index: u32) -> vec2<u32> {
    return vec2<u32>(index / TILE_N, index % TILE_N);
}

@compute @workgroup_size(16, 16, 1)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_id) local: vec3<u32>,
) {
    tiled_product(group, local);
}

@compute @workgroup_size(256, 1, 1)
fn gemv(@builtin(global_invocation_id) id: vec3<u32>) {
    let col = id.x;
    if (col >= params.n) {
        return;
    }
    var acc: array<f32, 8>;
    for (var r = 0u; r < GEMV_ROWS; r++) {
        acc[r] = 0.0;
    }
    let rows = min(params.m, GEMV_ROWS);
    for (var kk = 0u; kk < params.k; kk++) {
        let b_value = b[kk * params.n + col];
        for (var r = 0u; r < rows; r++) {
            acc[r] = fma(a[params.a_offset + r * params.k + kk], b_value, acc[r]);
        }
    }
    for (var r = 0u; r < rows; r++) {
        c[r * params.ldc + params.col_offset + col] = epilogue(acc[r], col);
    }
}
