// The k largest entries of each row of x [rows, width] (dispatched by the engine's
// pass recorder); ties go to the lower index, NaNs are never chosen. Results land in
// out_values[row, j] and out_indices[row, j], j < k, largest first; when a row has fewer
// than k entries the rest read index NONE, value LOWEST.
//
// For k up to MAX_K, two steps without any barrier (barriers are what software GPUs
// such as lavapipe and SwiftShader pay for most):
// - `segment_top_k`: thread (row, s) keeps, in private memory, the k largest of the
//   entries s, s + segments, s + 2 segments, … of its row, written to the candidate
//   buffers values/indices [rows, segments, k];
// - `merge_top_k`: one thread per row keeps the k largest of the row's candidates.
// For larger k, `row_top_k`: one workgroup per row picks the next largest k times.
// - `keep_top_k`: zeroes every entry of x that is not among its row's k largest or is not
//   positive (a TopK dictionary's activation, after the steps above).

struct Params {
    rows: u32,
    width: u32,
    k: u32,
    segments: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> values: array<f32>;
@group(0) @binding(3) var<storage, read_write> indices: array<u32>;
@group(0) @binding(4) var<storage, read_write> out_values: array<f32>;
@group(0) @binding(5) var<storage, read_write> out_indices: array<u32>;

const THREADS: u32 = 64u;
const NONE: u32 = 0xffffffffu;
const MAX_K: u32 = 64u;

var<workgroup> best_value: array<f32, 64>;
var<workgroup> best_index: array<u32, 64>;


// Whether (v, i) comes before (w, j): larger value first, then lower index; NONE last.
fn before(v: f32, i: u32, w: f32, j: u32) -> bool {
    if (j == NONE) {
        return i != NONE;
    }
    if (i == NONE) {
        return false;
    }
    return v > w || (v == w && i < j);
}

// A sorted list of at most k entries in private memory.
struct Best {
    v: array<f32, 64>,
    i: array<u32, 64>,
    count: u32,
}

fn offer(best: ptr<function, Best>, v: f32, i: u32) {
    let k = params.k;
    if (i == NONE || v != v) {
        return;
    }
    if ((*best).count == k && !before(v, i, (*best).v[k - 1u], (*best).i[k - 1u])) {
        return;
    }
    var j = (*best).count;
    if (j == k) {
        j = k - 1u;
    } else {
        (*best).count += 1u;
    }
    while (j > 0u && before(v, i, (*best).v[j - 1u], (*best).i[j - 1u])) {
        (*best).v[j] = (*best).v[j - 1u];
        (*best).i[j] = (*best).i[j - 1u];
        j -= 1u;
    }
    (*best).v[j] = v;
    (*best).i[j] = i;
}

fn empty() -> Best {
    var best: Best;
    best.count = 0u;
    return best;
}

@compute @workgroup_size(256, 1, 1)
fn segment_top_k(@builtin(global_invocation_id) id: vec3<u32>) {
    let thread = linear_index(id);
    if (thread >= params.rows * params.segments) {
        return;
    }
    let row = thread / params.segments;
    let segment = thread % params.segments;
    var best = empty();
    for (var i = segment; i < params.width; i += params.segments) {
        offer(&best, x[row * params.width + i], i);
    }
    let base = thread * params.k;
    for (var j = 0u; j < params.k; j++) {
        if (j < best.count) {
            values[base + j] = best.v[j];
            indices[base + j] = best.i[j];
        } else {
            values[base + j] = LOWEST;
            indices[base + j] = NONE;
        }
    }
}

@compute @workgroup_size(256, 1, 1)
fn merge_top_k(@builtin(global_invocation_id) id: vec3<u32>) {
    let row = linear_index(id);
    if (row >= params.rows) {
        return;
    }
    var best = empty();
    let candidates = params.segments * params.k;
    for (var c = 0u; c < candidates; c++) {
        let at = row * candidates + c;
        offer(&best, values[at], indices[at]);
    }
    for (var j = 0u; j < params.k; j++) {
        if (j < best.count) {
            out_values[row * params.k + j] = best.v[j];
            out_indices[row * params.k + j] = best.i[j];
        } else {
            out_values[row * params.k + j] = LOWEST;
            out_indices[row * params.k + j] = NONE;
        }
    }
}

@compute @workgroup_size(64, 1, 1)
fn row_top_k(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>) {
    let row = row_index(group);
    let lane = local.x;
    if (row >= params.rows) {
        return;
    }
    let base = row * params.width;
    // The last entry chosen; every later pick comes after it in the order.
    var last_value = LOWEST;
    var last_index = NONE;
    for (var t = 0u; t < params.k; t++) {
        var mine_value = LOWEST;
        var mine_index = NONE;
        for (var i = lane; i < params.width; i += THREADS) {
            let v = x[base + i];
            if (v != v) {
                continue;
            }
            // Nothing comes after NONE, so a row that ran out stays out.
            let after_last = t == 0u || before(last_value, last_index, v, i);
            if (after_last && before(v, i, mine_value, mine_index)) {
                mine_value = v;
                mine_index = i;
            }
        }
        best_value[lane] = mine_value;
        best_index[lane] = mine_index;
        workgroupBarrier();
        for (var stride = THREADS / 2u; stride > 0u; stride /= 2u) {
            if (lane < stride && before(best_value[lane + stride], best_index[lane + stride], best_value[lane], best_index[lane])) {
                best_value[lane] = best_value[lane + stride];
                best_index[lane] = best_index[lane + stride];
            }
            workgroupBarrier();
        }
        last_value = best_value[0];
        last_index = best_index[0];
        if (lane == 0u) {
            out_values[row * params.k + t] = select(last_value, LOWEST, last_index == NONE);
            out_indices[row * params.k + t] = last_index;
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(256, 1, 1)
fn keep_top_k(@builtin(global_invocation_id) id: vec3<u32>) {
    let index = linear_index(id);
    if (index >= params.rows * params.width) {
        return;
    }
    let row = index / params.width;
    let i = index % params.width;
    let v = x[index];
    let kth = row * params.k + params.k - 1u;
    let kth_index = out_indices[kth];
    var kept = v > 0.0;
    if (kth_index != NONE) {
        kept = kept && (i == kth_index || before(v, i, out_values[kth], kth_index));
    }
    if (!kept) {
        x[index] = 0.0;
    }
}
