//! Natively on x86-64, a kernel's loop compiled for the widest vector instructions the
//! processor has, chosen when it runs: the build targets the baseline (SSE2), so without
//! this the fused kernels use four lanes where AVX-512 has sixteen (the default pack's
//! GELU took twice as long). In the browser, where the build chooses the SIMD, the loop is
//! compiled once.
//!
//! The values do not depend on the choice: Rust never fuses a multiply and an add on its
//! own, and a loop's sums are only reordered where the code says so, so every width
//! rounds the same operations in the same order (the tests compare every width).

/// The instructions a kernel's copy is compiled for.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Width {
    /// AVX-512F: sixteen f32 lanes.
    Avx512,
    /// AVX2: eight.
    Avx2,
    /// SSE2, which every x86-64 processor has: four.
    Baseline,
}

/// The widest [`Width`] this processor has (in tests, the one a test chose).
#[cfg(target_arch = "x86_64")]
pub(crate) fn widest() -> Width {
    #[cfg(test)]
    if let Some(width) = tests::chosen() {
        return width;
    }
    if std::arch::is_x86_feature_detected!("avx512f") {
        Width::Avx512
    } else if std::arch::is_x86_feature_detected!("avx2") {
        Width::Avx2
    } else {
        Width::Baseline
    }
}

/// `fn name[generics](args) { body }`: a function whose body is compiled three times
/// natively on x86-64 (for AVX-512F, for AVX2 and for the baseline) and run in the
/// [`widest`]; once elsewhere. The body's helpers are inlined into each copy when they
/// are small or `#[inline(always)]`.
macro_rules! widest_simd {
    ($(#[$meta:meta])* $vis:vis fn $name:ident [$($generics:tt)*] ($($arg:ident : $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        #[cfg_attr(
            target_arch = "x86_64",
            allow(unsafe_code, reason = "calling a copy compiled for a detected CPU feature")
        )]
        $vis fn $name<$($generics)*>($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn with_avx512<$($generics)*>($($arg: $ty),*) $body
                #[target_feature(enable = "avx2")]
                fn with_avx2<$($generics)*>($($arg: $ty),*) $body
                match $crate::widest_simd::widest() {
                    // SAFETY: `widest` names AVX-512F only where the processor has it.
                    $crate::widest_simd::Width::Avx512 => return unsafe { with_avx512($($arg),*) },
                    // SAFETY: `widest` names AVX2 only where the processor has it.
                    $crate::widest_simd::Width::Avx2 => return unsafe { with_avx2($($arg),*) },
                    $crate::widest_simd::Width::Baseline => {}
                }
            }
            $body
        }
    };
}

pub(crate) use widest_simd;

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU8, Ordering};

    use super::Width;

    /// The width a test chose: 0 for none, else 1 + its index in `[Avx512, Avx2, Baseline]`.
    static CHOSEN: AtomicU8 = AtomicU8::new(0);
    /// Held while a test has chosen a width, so that two tests do not choose at once.
    static CHOOSING: Mutex<()> = Mutex::new(());
    const WIDTHS: [Width; 3] = [Width::Avx512, Width::Avx2, Width::Baseline];

    /// The widths this processor has, widest first.
    fn available() -> Vec<Width> {
        let mut widths = Vec::with_capacity(3);
        if std::arch::is_x86_feature_detected!("avx512f") {
            widths.push(Width::Avx512);
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            widths.push(Width::Avx2);
        }
        widths.push(Width::Baseline);
        widths
    }

    pub(super) fn chosen() -> Option<Width> {
        WIDTHS
            .get(usize::from(CHOSEN.load(Ordering::Relaxed)).checked_sub(1)?)
            .copied()
    }

    /// `run()` with the kernels in each width this processor has, widest first. (Other
    /// tests running meanwhile may take the chosen width too: the values are the same.)
    fn in_each_width<T>(mut run: impl FnMut() -> T) -> Vec<(Width, T)> {
        let _choosing = CHOOSING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let results = available()
            .into_iter()
            .map(|width| {
                let index = WIDTHS.iter().position(|&w| w == width).unwrap_or(2);
                CHOSEN.store(u8::try_from(index + 1).unwrap_or(0), Ordering::Relaxed);
                (width, run())
            })
            .collect();
        CHOSEN.store(0, Ordering::Relaxed);
        results
    }

    /// The fused kernels give the same values to the bit in every width: the GELU, the
    /// softmaxes, the LayerNorm and its statistics, on rows on and off the SIMD lanes.
    #[test]
    fn every_width_gives_the_same_bits() {
        use crate::few_rows::tests::{matrix, values};
        let bits =
            |t: candle_core::Tensor| values(&t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for (rows, columns) in [(3, 7), (33, 64), (300, 256)] {
            let x = (matrix(rows, columns, 11) * 4.0).unwrap();
            let weight = matrix(1, columns, 12).flatten_all().unwrap();
            let bias = matrix(1, columns, 13).flatten_all().unwrap();
            let results = in_each_width(|| {
                [
                    bits(crate::gelu::gelu_tanh(&x).unwrap()),
                    bits(crate::silu::silu(&x).unwrap()),
                    bits(crate::softmax::softmax_last(&x).unwrap()),
                    bits(crate::softmax::causal_softmax(&x, 2, 0.125).unwrap()),
                    bits(
                        crate::layer_norm::layer_norm(&x, &weight, &bias, 1e-5)
                            .unwrap()
                            .unwrap(),
                    ),
                    bits(
                        crate::layer_norm::mean_and_scale(&x, 1e-5)
                            .unwrap()
                            .unwrap()
                            .1,
                    ),
                ]
            });
            let (widest, expected) = &results[0];
            for (width, got) in &results[1..] {
                for (kernel, (a, b)) in [
                    "gelu",
                    "silu",
                    "softmax",
                    "causal softmax",
                    "layer norm",
                    "statistics",
                ]
                .iter()
                .zip(expected.iter().zip(got))
                {
                    assert!(
                        a == b,
                        "{rows}×{columns}: {kernel} in {width:?} differs from {widest:?}"
                    );
                }
            }
        }
    }
}
