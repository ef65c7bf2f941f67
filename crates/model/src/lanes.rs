//! Four f32 lanes and a multiply-add, for the kernels that spell out their SIMD (the
//! browser's tiles, a few rows' dot products): in the browser simd128's `v128`, its
//! multiply-add fused where the build has relaxed SIMD; natively plain arrays, unfused (the
//! widest instructions are then the compiler's to choose).

#[cfg(target_arch = "wasm32")]
pub(crate) use wasm::*;

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use native::*;

/// Four f32 lanes and a multiply-add: fused with relaxed SIMD, else simd128's multiply
/// then add.
#[cfg(target_arch = "wasm32")]
mod wasm {
    use core::arch::wasm32::{f32x4, f32x4_extract_lane, f32x4_splat, v128};

    pub(crate) fn load(values: &[f32; 4]) -> v128 {
        f32x4(values[0], values[1], values[2], values[3])
    }

    pub(crate) fn splat(value: f32) -> v128 {
        f32x4_splat(value)
    }

    /// `a · b + c`, fused.
    #[cfg(target_feature = "relaxed-simd")]
    pub(crate) fn madd(a: v128, b: v128, c: v128) -> v128 {
        core::arch::wasm32::f32x4_relaxed_madd(a, b, c)
    }

    /// `a · b + c`, a multiply then an add.
    #[cfg(not(target_feature = "relaxed-simd"))]
    pub(crate) fn madd(a: v128, b: v128, c: v128) -> v128 {
        core::arch::wasm32::f32x4_add(core::arch::wasm32::f32x4_mul(a, b), c)
    }

    pub(crate) fn to_array(v: v128) -> [f32; 4] {
        [
            f32x4_extract_lane::<0>(v),
            f32x4_extract_lane::<1>(v),
            f32x4_extract_lane::<2>(v),
            f32x4_extract_lane::<3>(v),
        ]
    }
}

/// Four f32 lanes and a multiply-add from plain arrays, unfused: the native build's.
#[cfg(not(target_arch = "wasm32"))]
mod native {
    pub(crate) fn load(values: &[f32; 4]) -> [f32; 4] {
        *values
    }

    pub(crate) fn splat(value: f32) -> [f32; 4] {
        [value; 4]
    }

    /// `a · b + c`, a multiply then an add.
    pub(crate) fn madd(a: [f32; 4], b: [f32; 4], c: [f32; 4]) -> [f32; 4] {
        std::array::from_fn(|i| a[i] * b[i] + c[i])
    }

    pub(crate) fn to_array(v: [f32; 4]) -> [f32; 4] {
        v
    }
}
