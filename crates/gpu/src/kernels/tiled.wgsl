// The tiled product the matmul kernel files share (WGSL has no includes: the engine
// compiles `common.wgsl`, this file and the kernel file together; a kernel file names it
// in a `// uses: tiled.wgsl` line). A workgroup of 16 x 16 threads computes one 64 x 64
// tile of c; each thread a 4 x 4 block of it (rows 4*ty .. 4*ty+3, columns tx, tx+16,
// tx+32, tx+48). Slices of a (64 x 16) and b (16 x 64) are staged in workgroup memory,
// each thread loading four of each. Reads past the edges load zeros and writes past them
// are skipped, so any m, k, n works.
//
// The including file declares `params` (m, k, n, ldc, col_offset, a_offset, has_bias,
// activation), the bindings `a`, `c` and `bias`, and
// - `b_value(kk, col) -> f32`: b[kk, col], however b is stored;
// - `b_tile_position(index) -> vec2<u32>`: which (kk, col) of the 16 x 64 slice of b
//   load number `index` (0 .. 1024) fills, so that neighbouring threads read
//   neighbouring memory.
// fragment

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

fn tiled_product(group: vec3<u32>, local: vec3<u32>) {
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

            let at = b_tile_position(index);
            let b_row = k0 + at.x;
            let b_col = col0 + at.y;
            var value = 0.0;
            if (b_row < params.k && b_col < params.n) {
                value = b_value(b_row, b_col);
            }
            tile_b[at.x * TILE_N + at.y] = value;
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
