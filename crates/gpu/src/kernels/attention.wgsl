// Causal multi-head attention over a KV cache, in three steps that each have a hook
// between them (dispatched by the pass recorder, engine/pass). Queries are rows of
// heads · d_head values, cached keys and values rows of kv_heads · d_head (grouped-query
// attention: query head h reads key/value head h / (heads / kv_heads)).
// - `split_qkv` (GPT-2): the rows of qkv [len, 3d] (queries, keys, values side by side) go
//   to q [len, d] and to the key and value caches [positions, d] at rows offset .. offset+len.
// - `scores`: one workgroup per (query, head) computes the scaled, masked scores
//   [head, query, key] of keys 0 .. offset+query, writes them to `scores`, and, when
//   `fuse_softmax` is set, turns them into the pattern in place in `pattern` instead.
// - `softmax`: one workgroup per (query, head): pattern = softmax(scores) along keys.
// - `values`: one workgroup per (query, head): z[query, head, :] = pattern · v.
// Every thread works on keys lane, lane + 64, …: it only rereads what it wrote itself,
// so the rows live in the output buffers and any context length works.

struct Params {
    len: u32,
    d: u32,
    offset: u32,
    heads: u32,
    d_head: u32,
    keys: u32,
    scale: f32,
    fuse_softmax: u32,
    kv_heads: u32,
    _padding0: u32,
    _padding1: u32,
    _padding2: u32,
}

// The key/value head query head `head` reads, and its first column in a cached row.
fn kv_column(head: u32) -> u32 {
    return head / (params.heads / params.kv_heads) * params.d_head;
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> qkv: array<f32>;
@group(0) @binding(2) var<storage, read_write> q: array<f32>;
@group(0) @binding(3) var<storage, read_write> k_cache: array<f32>;
@group(0) @binding(4) var<storage, read_write> v_cache: array<f32>;
@group(0) @binding(5) var<storage, read_write> scores: array<f32>;
@group(0) @binding(6) var<storage, read_write> pattern: array<f32>;
@group(0) @binding(7) var<storage, read_write> z: array<f32>;

// Softmax in place over pattern[base .. base + keys], which holds scores.
fn softmax_in_place(base: u32, lane: u32) {
    var largest = LOWEST;
    for (var j = lane; j < params.keys; j += REDUCE_THREADS) {
        largest = max(largest, pattern[base + j]);
    }
    largest = workgroup_max(largest, lane);
    var sum = 0.0;
    for (var j = lane; j < params.keys; j += REDUCE_THREADS) {
        let e = exp(pattern[base + j] - largest);
        pattern[base + j] = e;
        sum += e;
    }
    sum = workgroup_sum(sum, lane);
    for (var j = lane; j < params.keys; j += REDUCE_THREADS) {
        pattern[base + j] = pattern[base + j] / sum;
    }
}

@compute @workgroup_size(256, 1, 1)
fn split_qkv(@builtin(global_invocation_id) id: vec3<u32>) {
    let index = linear_index(id);
    if (index >= params.len * params.d) {
        return;
    }
    let row = index / params.d;
    let i = index % params.d;
    let source = row * 3u * params.d + i;
    let cached = (params.offset + row) * params.d + i;
    q[index] = qkv[source];
    k_cache[cached] = qkv[source + params.d];
    v_cache[cached] = qkv[source + 2u * params.d];
}

@compute @workgroup_size(REDUCE_THREADS, 1, 1)
fn scores_step(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>) {
    let query = group.x;
    let head = group.y;
    let lane = local.x;
    let base = (head * params.len + query) * params.keys;
    let q_base = (query * params.heads + head) * params.d_head;
    let kv_width = params.kv_heads * params.d_head;
    let visible = params.offset + query;
    for (var j = lane; j < params.keys; j += REDUCE_THREADS) {
        var s = LOWEST;
        if (j <= visible) {
            let k_base = j * kv_width + kv_column(head);
            var dot = 0.0;
            for (var t = 0u; t < params.d_head; t++) {
                dot = fma(q[q_base + t], k_cache[k_base + t], dot);
            }
            s = dot * params.scale;
        }
        if (params.fuse_softmax == 1u) {
            pattern[base + j] = s;
        } else {
            scores[base + j] = s;
        }
    }
    if (params.fuse_softmax == 1u) {
        softmax_in_place(base, lane);
    }
}

@compute @workgroup_size(REDUCE_THREADS, 1, 1)
fn softmax_step(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>) {
    let base = (group.y * params.len + group.x) * params.keys;
    let lane = local.x;
    for (var j = lane; j < params.keys; j += REDUCE_THREADS) {
        pattern[base + j] = scores[base + j];
    }
    softmax_in_place(base, lane);
}

@compute @workgroup_size(64, 1, 1)
fn values_step(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>) {
    let query = group.x;
    let head = group.y;
    let base = (head * params.len + query) * params.keys;
    let kv_width = params.kv_heads * params.d_head;
    for (var t = local.x; t < params.d_head; t += 64u) {
        let column = kv_column(head) + t;
        var acc = 0.0;
        for (var j = 0u; j < params.keys; j++) {
            acc = fma(pattern[base + j], v_cache[j * kv_width + column], acc);
        }
        z[(query * params.heads + head) * params.d_head + t] = acc;
    }
}
