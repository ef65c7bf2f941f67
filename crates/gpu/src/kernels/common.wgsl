// Shared by every kernel file: kernels/mod.rs compiles each file with this one in front
// (WGSL has no includes). Only what a file's entry points use ends up in its pipelines.

// tanh that stays finite: tanh(15) is 1 in f32 already.
fn safe_tanh(x: f32) -> f32 {
    return tanh(clamp(x, -15.0, 15.0));
}

// erf by Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7).
fn erf(x: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.3275911 * abs(x));
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return sign(x) * (1.0 - poly * exp(-x * x));
}

// The activations kernels apply, by code (`Act` in kernels/params.rs).
const ACT_NONE: u32 = 0u;
const ACT_GELU_TANH: u32 = 1u;
const ACT_GELU_ERF: u32 = 2u;
const ACT_RELU: u32 = 3u;
const ACT_SILU: u32 = 4u;

// The activation with code `code` (ACT_NONE or an unknown code: none).
fn activation(code: u32, x: f32) -> f32 {
    switch (code) {
        case ACT_GELU_TANH: {
            return 0.5 * x * (1.0 + safe_tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
        }
        case ACT_GELU_ERF: {
            return 0.5 * x * (1.0 + erf(x * 0.7071067811865476));
        }
        case ACT_RELU: {
            return max(x, 0.0);
        }
        case ACT_SILU: {
            // x · sigmoid(x), written so that exp never overflows.
            let e = exp(-abs(x));
            return select(x * e / (1.0 + e), x / (1.0 + e), x >= 0.0);
        }
        default: {
            return x;
        }
    }
}

// WGSL has no infinities: the lowest finite f32 stands for -inf (masked attention scores,
// empty top-k slots; the engine reads a masked score back as -inf). exp(LOWEST - max) is
// 0 all the same.
const LOWEST: f32 = -0x1.fffffep+127f;

// Reductions over a workgroup of REDUCE_THREADS threads (one row each), through
// `partial`; every thread gets the result.
const REDUCE_THREADS: u32 = 64u;

var<workgroup> partial: array<f32, 64>;

fn workgroup_sum(value: f32, lane: u32) -> f32 {
    partial[lane] = value;
    workgroupBarrier();
    for (var stride = REDUCE_THREADS / 2u; stride > 0u; stride /= 2u) {
        if (lane < stride) {
            partial[lane] += partial[lane + stride];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    workgroupBarrier();
    return total;
}

fn workgroup_max(value: f32, lane: u32) -> f32 {
    partial[lane] = value;
    workgroupBarrier();
    for (var stride = REDUCE_THREADS / 2u; stride > 0u; stride /= 2u) {
        if (lane < stride) {
            partial[lane] = max(partial[lane], partial[lane + stride]);
        }
        workgroupBarrier();
    }
    let result = partial[0];
    workgroupBarrier();
    return result;
}

// Dispatches laid out by `linear_groups` (kernels/mod.rs) have workgroups of
// LINEAR_THREADS threads, at most MAX_GROUPS_X of them along x, the rest on y.
const LINEAR_THREADS: u32 = 256u;
const MAX_GROUPS_X: u32 = 65535u;

// The thread number of a dispatch laid out by `linear_groups`.
fn linear_index(id: vec3<u32>) -> u32 {
    return id.x + id.y * MAX_GROUPS_X * LINEAR_THREADS;
}

// The row of a dispatch of one workgroup per row laid out by `row_groups`.
fn row_index(group: vec3<u32>) -> u32 {
    return group.x + group.y * MAX_GROUPS_X;
}
