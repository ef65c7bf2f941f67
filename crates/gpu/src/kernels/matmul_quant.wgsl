// Linear layers whose weights stay quantized on the device, as a GGUF file stores them:
// c[m, n] = act(a[m, k] * W[n, k]ᵀ + bias[n]), W's row n (output n) being k / 32 blocks of
// the `format` (QUANT_* below: llama.cpp's Q8_0, Q4_0, Q4_1), dequantized as they are read
// exactly as glassbox-model's GGUF reader dequantizes them. `b` holds the blocks' bytes,
// rows `row_bytes` apart, read as little-endian u32 words.
//
// uses: tiled.wgsl
//
// Dispatched by the pass recorder (engine/pass/ops.rs); the same two shapes as
// matmul.wgsl: `main_quant`, tiled.wgsl's product (b's slices dequantized as loaded),
// and `gemv_quant` for at most GEMV_ROWS rows, one thread per output column walking its
// row's blocks.

struct Params {
    m: u32,
    k: u32,
    n: u32,
    ldc: u32,
    col_offset: u32,
    a_offset: u32,
    has_bias: u32,
    activation: u32,
    // A QUANT_* code.
    format: u32,
    // Bytes of one row of b.
    row_bytes: u32,
    _padding0: u32,
    _padding1: u32,
}

const QUANT_Q8_0: u32 = 0u;
const QUANT_Q4_0: u32 = 1u;
const QUANT_Q4_1: u32 = 2u;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<u32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;

const BLOCK: u32 = 32u;

fn byte_at(address: u32) -> u32 {
    return (b[address / 4u] >> ((address % 4u) * 8u)) & 0xffu;
}

// The IEEE half at `address`, converted exactly in integer arithmetic (`unpack2x16float`
// needs a capability not every device has).
fn half_at(address: u32) -> f32 {
    let h = byte_at(address) | (byte_at(address + 1u) << 8u);
    let sign = (h >> 15u) << 31u;
    let exponent = (h >> 10u) & 0x1fu;
    let mantissa = h & 0x3ffu;
    if (exponent == 0u) {
        // Zero or subnormal: mantissa · 2^-24.
        let magnitude = f32(mantissa) * 5.9604645e-8;
        return bitcast<f32>(bitcast<u32>(magnitude) | sign);
    }
    if (exponent == 31u) {
        // Infinity or NaN: no scale is either; keep the bits' meaning.
        return bitcast<f32>(sign | 0x7f800000u | (mantissa << 13u));
    }
    return bitcast<f32>(sign | ((exponent + 112u) << 23u) | (mantissa << 13u));
}

fn block_bytes() -> u32 {
    switch (params.format) {
        case QUANT_Q8_0: {
            return 34u;
        }
        case QUANT_Q4_0: {
            return 18u;
        }
        default: {
            return 20u;
        }
    }
}

// Value i (0 .. 32) of the block at byte `base`.
fn dequantize(base: u32, i: u32) -> f32 {
    let scale = half_at(base);
    switch (params.format) {
        case QUANT_Q8_0: {
            let q = i32(byte_at(base + 2u + i) << 24u) >> 24u;
            return f32(q) * scale;
        }
        case QUANT_Q4_0: {
            let packed = byte_at(base + 2u + i % 16u);
            let nibble = select(packed & 0xfu, packed >> 4u, i >= 16u);
            return f32(i32(nibble) - 8) * scale;
        }
        default: {
            let packed = byte_at(base + 4u + i % 16u);
            let nibble = select(packed & 0xfu, packed >> 4u, i >= 16u);
            return f32(nibble) * scale + half_at(base + 2u);
        }
    }
}

// W[col, kk]: b's (n, k) element as the product's b[kk, col].
fn b_at(kk: u32, col: u32) -> f32 {
    let base = col * params.row_bytes + (kk / BLOCK) * block_bytes();
    return dequantize(base, kk % BLOCK);
}


fn b_value(kk: u32, col: u32) -> f32 {
    return b_at(kk, col);
}

// Neighbouring threads load neighbouring k of one column: one block's bytes.
fn b_tile_position(index: u32) -> vec2<u32> {
    return vec2<u32>(index % TILE_K, index / TILE_K);
}

@compute @workgroup_size(16, 16, 1)
fn main_quant(
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(local_invocation_id) local: vec3<u32>,
) {
    tiled_product(group, local);
}

@compute @workgroup_size(256, 1, 1)
fn gemv_quant(@builtin(global_invocation_id) id: vec3<u32>) {
    let col = id.x;
    if (col >= params.n) {
        return;
    }
    var acc: array<f32, 8>;
    for (var r = 0u; r < GEMV_ROWS; r++) {
        acc[r] = 0.0;
    }
    let rows = min(params.m, GEMV_ROWS);
    let blocks = params.k / BLOCK;
    let size = block_bytes();
    for (var block = 0u; block < blocks; block++) {
        let base = col * params.row_bytes + block * size;
        for (var i = 0u; i < BLOCK; i++) {
            let value = dequantize(base, i);
            let kk = block * BLOCK + i;
            for (var r = 0u; r < rows; r++) {
                acc[r] = fma(a[params.a_offset + r * params.k + kk], value, acc[r]);
            }
        }
    }
    for (var r = 0u; r < rows; r++) {
        c[r * params.ldc + params.col_offset + col] = epilogue(acc[r], col);
    }
}
