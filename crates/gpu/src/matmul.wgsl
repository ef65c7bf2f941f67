// Tiled f32 matrix multiply: c[m, n] = a[m, k] * b[k, n], every matrix row-major.
//
// Dispatched by matmul.rs (keep TILE_M, TILE_N and the workgroup size in sync with it).
// A workgroup of 16 x 16 threads computes one 64 x 64 tile of c; each thread computes a
// 4 x 4 block of it: rows 4*ty .. 4*ty+3 and columns tx, tx+16, tx+32, tx+48, so that
// neighbouring threads touch neighbouring columns. Slices of a (64 x 16) and b (16 x 64)
// are staged in workgroup memory, each thread loading four elements of each. Reads past
// the edges load zeros and writes past them are skipped, so any m, k, n works.

struct Dims {
    m: u32,
    k: u32,
    n: u32,
    _padding: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<uniform> dims: Dims;

const TILE_M: u32 = 64u;
const TILE_N: u32 = 64u;
const TILE_K: u32 = 16u;
const THREADS_PER_SIDE: u32 = 16u;
const THREADS: u32 = 256u;
const PER_THREAD: u32 = 4u;

// tile_a[r * TILE_K + kk] holds a[row0 + r, k0 + kk]; tile_b[kk * TILE_N + col] holds b[k0 + kk, col0 + col].
var<workgroup> tile_a: array<f32, 1024>;
var<workgroup> tile_b: array<f32, 1024>;

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

    let k_tiles = (dims.k + TILE_K - 1u) / TILE_K;
    for (var t = 0u; t < k_tiles; t++) {
        let k0 = t * TILE_K;
        for (var step = 0u; step < 4u; step++) {
            let index = thread + step * THREADS;

            let a_row = row0 + index / TILE_K;
            let a_col = k0 + index % TILE_K;
            var a_value = 0.0;
            if (a_row < dims.m && a_col < dims.k) {
                a_value = a[a_row * dims.k + a_col];
            }
            tile_a[index] = a_value;

            let b_row = k0 + index / TILE_N;
            let b_col = col0 + index % TILE_N;
            var b_value = 0.0;
            if (b_row < dims.k && b_col < dims.n) {
                b_value = b[b_row * dims.n + b_col];
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
        if (row >= dims.m) {
            break;
        }
        for (var j = 0u; j < PER_THREAD; j++) {
            let col = col0 + local.x + j * THREADS_PER_SIDE;
            if (col < dims.n) {
                c[row * dims.n + col] = acc[i][j];
            }
        }
    }
}
