// The embedding: x[p, :] = W_E[ids[p], :] + W_pos[offset + p, :].
//
// Dispatched by embed.rs. The token embedding is stored transposed and possibly split by
// columns, as the unembedding reads it: `table` is one chunk [d, cols] holding tokens
// start .. start + cols, so token t's vector is table[i * cols + (t - start)]. Each chunk's
// dispatch writes the positions whose token it holds; `mode` picks what is written:
// 0 token + position, 1 token only (hook_embed), 2 position only (hook_pos_embed).

struct Params {
    len: u32,
    d: u32,
    offset: u32,
    mode: u32,
    start: u32,
    cols: u32,
    _padding0: u32,
    _padding1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<f32>;
@group(0) @binding(3) var<storage, read> positions: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn embed(@builtin(global_invocation_id) id: vec3<u32>) {
    let index = linear_index(id);
    if (index >= params.len * params.d) {
        return;
    }
    let p = index / params.d;
    let i = index % params.d;
    let position = params.offset + p;
    if (params.mode == 2u) {
        out[index] = positions[position * params.d + i];
        return;
    }
    let token = ids[p];
    if (token < params.start || token >= params.start + params.cols) {
        return;
    }
    var value = table[i * params.cols + (token - params.start)];
    if (params.mode == 0u) {
        value += positions[position * params.d + i];
    }
    out[index] = value;
}
