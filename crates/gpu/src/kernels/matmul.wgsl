// Linear layers: c[m, n] = act(a[m, k] * b[k, n] + bias[n]), every matrix row-major.
//
// Dispatched by matmul.rs and the pass recorder (keep TILE_M, TILE_N, GEMV_ROWS and the
// Params block in sync with kernels/params.rs). Two entry points:
// - `main`, tiled: a workgroup of 16 x 16 threads computes one 64 x 64 tile of c; each
//   thread computes a 4 x 4 block of it (rows 4*ty .. 4*ty+3, columns tx, tx+16, tx+32,
//   tx+48, so neighbouring threads touch neighbouring columns). Slices of a (64 x 16) and
//   b (16 x 64) are staged in workgroup memory, each thread loading four of each. Reads
//   past the edges load zeros and writes past them are skipped, so any m, k, n works.
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

const TILE_M: u32 = 64u;
const TILE_N: u32 = 64u;
const TILE_K: u32 = 16u;
const THREADS_PER_SIDE: u32 = 16u;
const THREADS: u32 = 256u;
const PER_THREAD: u32 = 4u;
const GEMV_ROWS: u32 = 8u;

// tile_a[r * TILE_K + kk] holds a[row0 + r, k0 + kk]; tile_b[kk * TILE_N + col] holds b[k0 + kk, col0 + col].
var<workgroup> tile_a: array<f32, 1024>;
var<workgroup> tile_b: array<f32, 1024>;

fn epilogue(value: f32, col: u32) -> f32 {
    var x = value;
    if (params.has_bias == 1u) {
        x += bias[col];
    }
    return activation(params.activation, x);
}

@compute @workgroup_size(16, 16, 1)
fn main(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_id) local: vec3<u32>,
) {
    let row0 = group.y * TILE_M;
    let col0 = group.x * TILE_N;
    let thread = local.y * THREADS_PER_SIDE + local.x;

    var acc: array<array<f32, 4>, 4>;
    for (var i = 0u; i < PER_THREAD; i++) {
        for (var j = 0u; j < PER_THREAD; j++) {
            acc[i][j] = 0.0;
        }
    }

    let k_tiles = (params.k + TILE_K - 1u) / TILE_K;
    for (var t = 0u; t < k_tiles; t++) {
        let k0 = t * TILE_K;
        for (var step = 0u; step < 4u; step++) {
            let index = thread + step * THREADS;

            let a_row = row0 + index / TILE_K;
            let a_col = k0 + index % TILE_K;
            var a_value = 0.0;
            if (a_row < params.m && a_col < params.k) {
                a_value = a[params.a_offset + a_row * params.k + a_col];
            }
            tile_a[index] = a_value;

            let b_row = k0 + index / TILE_N;
            let b_col = col0 + index % TILE_N;
            var b_value = 0.0;
            if (b_row < params.k && b_col < params.n) {
                b_value = b[b_row * params.n + b_col];
            }
            tile_b[index] = b_value;
        }
        workgroupBarrier();

        for (var kk = 0u; kk < TILE_K; kk++) {
            var a_regs: array<f32, 4>;
            var b_regs: array<f32, 4>;
            for (var i = 0u; i < PER_THREAD; i++) {
                a_regs[i] = tile_a[(local.y * PER_THREAD + i) * TILE_K + kk];
                b_regs[i] = tile_b[kk * TILE_N + local.x + i * THREADS_PER_SIDE];
            }
            for (var i = 0u; i < PER_THREAD; i++) {
                for (var j = 0u; j < PER_THREAD; j++) {
                    acc[i][j] = fma(a_regs[i], b_regs[j], acc[i][j]);
                }
            }
        }
        workgroupBarrier();
    }

    for (var i = 0u; i < PER_THREAD; i++) {
        let row = row0 + local.y * PER_THREAD + i;
        if (row >= params.m) {
            break;
        }
        for (var j = 0u; j < PER_THREAD; j++) {
            let col = col0 + local.x + j * THREADS_PER_SIDE;
            if (col < params.n) {
                c[row * params.ldc + params.col_offset + col] = epilogue(acc[i][j], col);
            }
        }
    }
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
