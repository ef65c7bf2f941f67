// The embedding: x[p, :] = W_E[ids[p], :] + W_pos[offset + p, :].
//
// Dispatched by the pass recorder (engine/pass). The token embedding is stored transposed and possibly split by
// columns, as the unembedding reads it: `table` is one chunk [d, cols] holding tokens
// start .. start + cols, so token t's vector is table[i * cols + (t - start)]. Each chunk's
// dispatch writes the positions whose token it holds; `mode` picks what is written.

// `mode`: token + position, token only (hook_embed), position only (hook_pos_embed).
const EMBED_TOKEN_AND_POSITION: u32 = 0u;
const EMBED_TOKEN: u32 = 1u;
const EMBED_POSITION: u32 = 2u;

struct Params {
    len: u32,
    d: u32,
    offset: u32,
    mode: u32,
    start: u32,
    cols: u32,
    // Where the token ids start in `ids` (the pass's uploads).
    ids_base: u32,
    _padding: u32,
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
    if (params.mode == EMBED_POSITION) {
        out[index] = positions[position * params.d + i];
        return;
    }
    let token = ids[params.ids_base + p];
    if (token < params.start || token >= params.start + params.cols) {
        return;
    }
    var value = table[i * params.cols + (token - params.start)];
    if (params.mode == EMBED_TOKEN_AND_POSITION) {
        value += positions[position * params.d + i];
    }
    out[index] = value;
}
