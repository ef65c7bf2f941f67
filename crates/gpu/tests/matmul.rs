//! The tiled matmul kernel against candle-core's matmul, natively and in the browser.
#![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

mod common;

use glassbox_engine::async_test;

use glassbox_gpu::GpuError;
use glassbox_gpu::check::{
    MATMUL_CHECK_SHAPES, check_matmul, matmul_tolerance, max_abs_difference, reference_matmul,
    seeded_values,
};
use glassbox_gpu::matmul::{MatmulKernel, MatmulShape};

#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

async_test! {
    async fn page_check_shapes_pass() {
        let ctx = common::context().await;
        let kernel = MatmulKernel::new(&ctx).await.unwrap();
        let checks = check_matmul(&ctx, &kernel, &MATMUL_CHECK_SHAPES, 7).await.unwrap();
        assert_eq!(checks.len(), MATMUL_CHECK_SHAPES.len());
        for check in checks {
            assert!(check.passed(), "{check:?}");
        }
    }
}

/// Random shapes from a seeded generator, most of them not multiples of any tile size.
fn random_shapes(seed: u64, count: usize) -> Vec<MatmulShape> {
    let dims = seeded_values(seed, 3 * count);
    dims.chunks(3)
        .map(|d| {
            let size = |x: f32| 1 + ((x + 1.0) * 90.0) as usize; // 1..=180
            MatmulShape::new(size(d[0]), size(d[1]), size(d[2]))
        })
        .collect()
}

async_test! {
    async fn random_shapes_match_candle() {
        let ctx = common::context().await;
        let kernel = MatmulKernel::new(&ctx).await.unwrap();
        let mut shapes = random_shapes(42, 24);
        shapes.extend([
            MatmulShape::new(257, 513, 129),
            MatmulShape::new(1, 768, 2304),
            MatmulShape::new(130, 15, 66),
        ]);
        let checks = check_matmul(&ctx, &kernel, &shapes, 1234).await.unwrap();
        let failed: Vec<_> = checks.iter().filter(|c| !c.passed()).collect();
        assert!(failed.is_empty(), "{} of {} shapes failed: {failed:?}", failed.len(), checks.len());
    }
}

async_test! {
    /// A hand-worked product, so the check does not only trust candle.
    async fn small_product_worked_by_hand() {
        let ctx = common::context().await;
        let kernel = MatmulKernel::new(&ctx).await.unwrap();
        // [1 2 3; 4 5 6] · [7 8; 9 10; 11 12] = [58 64; 139 154]
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [7.0, 8.0, 9.0, 10.0, 11.0, 12.0];
        let c = kernel.run(&ctx, &a, &b, MatmulShape::new(2, 3, 2)).await.unwrap();
        assert_eq!(c, vec![58.0, 64.0, 139.0, 154.0]);
        assert_eq!(reference_matmul(&a, &b, MatmulShape::new(2, 3, 2)).unwrap(), c);
    }
}

async_test! {
    async fn empty_inner_dimension_gives_zeros() {
        let ctx = common::context().await;
        let kernel = MatmulKernel::new(&ctx).await.unwrap();
        let c = kernel.run(&ctx, &[], &[], MatmulShape::new(3, 0, 5)).await.unwrap();
        assert_eq!(c, vec![0.0; 15]);
        let c = kernel.run(&ctx, &[], &[1.0; 4], MatmulShape::new(0, 4, 1)).await.unwrap();
        assert!(c.is_empty());
    }
}

async_test! {
    async fn wrong_lengths_are_errors() {
        let ctx = common::context().await;
        let kernel = MatmulKernel::new(&ctx).await.unwrap();
        let error = kernel
            .run(&ctx, &[1.0; 5], &[1.0; 6], MatmulShape::new(2, 3, 2))
            .await
            .unwrap_err();
        assert!(matches!(error, GpuError::Shape(ref m) if m.contains("a should be 2×3")), "{error}");
    }
}

async_test! {
    async fn lying_shapes_are_errors_before_any_allocation() {
        let ctx = common::context().await;
        let kernel = MatmulKernel::new(&ctx).await.unwrap();
        let limit = ctx.device().limits().max_storage_buffer_binding_size as usize / 4;
        // `a` claims more values than one binding holds; nothing that large is allocated.
        let shape = MatmulShape::new(limit + 1, 1, 1);
        let fake = vec![0.0; 1];
        let error = kernel.run(&ctx, &fake, &fake, shape).await.unwrap_err();
        assert!(matches!(error, GpuError::Shape(_)), "{error}");
        let a = vec![0.0_f32; 0];
        let error = kernel.run(&ctx, &a, &fake, MatmulShape::new(0, 1, 1)).await;
        assert_eq!(error, Ok(Vec::new()));
    }
}

#[test]
fn tolerance_catches_indexing_bugs() {
    // An error of one product term (values up to 1) must exceed the tolerance at any size
    // the engine uses.
    assert!(matmul_tolerance(4096) < 0.01);
    assert!((max_abs_difference(&[1.0, 2.0], &[1.0, 2.5]).unwrap() - 0.5).abs() < f32::EPSILON);
    assert!(max_abs_difference(&[f32::NAN], &[0.0]).unwrap().is_nan());
    assert!(max_abs_difference(&[1.0], &[1.0, 2.0]).is_err());
}
