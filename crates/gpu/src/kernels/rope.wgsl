// Rotary position embeddings in place (dispatched by the pass recorder, engine/pass), in
// Hugging Face's layout: in each head of x[base ..] (rows of heads · d_head values) the
// first rotary_dim dimensions form pairs (i, i + rotary_dim / 2) that rotate by the angle
// of their row's position and frequency i; the rest are left as they are.
//
// `table` holds the angles' cosines [rows, rotary_dim / 2] from `table_base`, then their
// sines, computed on the CPU exactly as the CPU engine computes them.
// One thread per (row, head, pair).

struct Params {
    rows: u32,
    heads: u32,
    d_head: u32,
    rotary_dim: u32,
    base: u32,
    table_base: u32,
    _padding0: u32,
    _padding1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn rotate(@builtin(global_invocation_id) id: vec3<u32>) {
    let half = params.rotary_dim / 2u;
    let index = linear_index(id);
    if (index >= params.rows * params.heads * half) {
        return;
    }
    let pair = index % half;
    let row_head = index / half;
    let row = row_head / params.heads;
    let first = params.base + row_head * params.d_head + pair;
    let angle = params.table_base + row * half + pair;
    let c = table[angle];
    let s = table[angle + params.rows * half];
    let a = x[first];
    let b = x[first + half];
    x[first] = a * c - b * s;
    x[first + half] = b * c + a * s;
}
