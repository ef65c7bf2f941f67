// The k largest entries of each row of x [rows, width] (dispatched by topk.rs), one
// workgroup of 256 threads per row; ties go to the lower index, NaNs are never chosen.
// - `row_top_k`: values[row, j] and indices[row, j] of the j-th largest, j < k; when a row
//   has fewer than k entries the rest read index 0xffffffff, value LOWEST.
// - `keep_top_k`: zeroes every entry of x that is not among its row's k largest or is not
//   positive (a TopK dictionary's activation, after `row_top_k`).

struct Params {
    rows: u32,
    width: u32,
    k: u32,
    _padding: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> values: array<f32>;
@group(0) @binding(3) var<storage, read_write> indices: array<u32>;

const THREADS: u32 = 256u;
const NONE: u32 = 0xffffffffu;

var<workgroup> best_value: array<f32, 256>;
var<workgroup> best_index: array<u32, 256>;

// WGSL has no infinities: the lowest finite f32 stands for -inf.
const LOWEST: f32 = -0x1.fffffep+127f;

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

@compute @workgroup_size(256, 1, 1)
fn row_top_k(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>) {
    let row = group.x + group.y * 65535u;
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
            values[row * params.k + t] = select(last_value, LOWEST, last_index == NONE);
            indices[row * params.k + t] = last_index;
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(256, 1, 1)
fn keep_top_k(@builtin(global_invocation_id) id: vec3<u32>) {
    let index = id.x + id.y * 65535u * 256u;
    if (index >= params.rows * params.width) {
        return;
    }
    let row = index / params.width;
    let i = index % params.width;
    let v = x[index];
    let kth = row * params.k + params.k - 1u;
    let kth_index = indices[kth];
    var kept = v > 0.0;
    if (kth_index != NONE) {
        kept = kept && (i == kth_index || before(v, i, values[kth], kth_index));
    }
    if (!kept) {
        x[index] = 0.0;
    }
}
