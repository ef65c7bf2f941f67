//! Kernel checks against the CPU reference (candle-core): what the tests assert and what
//! the page runs to show a visitor that their GPU computes correctly.

use candle_core::{Device, Tensor};
use glassbox_model::rng::SplitMix64;

use crate::matmul::{MatmulKernel, MatmulShape};
use crate::{GpuContext, GpuError};

/// Shapes the page checks: square, tall, wide, a single element, and sizes that are not
/// multiples of the 64×64×16 tile.
pub const MATMUL_CHECK_SHAPES: [MatmulShape; 6] = [
    MatmulShape::new(1, 1, 1),
    MatmulShape::new(64, 64, 64),
    MatmulShape::new(65, 17, 129),
    MatmulShape::new(3, 300, 7),
    MatmulShape::new(200, 33, 1),
    MatmulShape::new(128, 256, 96),
];

/// The result of comparing one GPU product with candle-core's.
#[derive(Debug, Clone, PartialEq)]
pub struct MatmulCheck {
    /// The shape that was multiplied.
    pub shape: MatmulShape,
    /// The largest absolute difference between GPU and CPU entries.
    pub max_abs_error: f32,
    /// The largest difference allowed for this shape.
    pub tolerance: f32,
}

impl MatmulCheck {
    /// Whether the GPU agreed with the CPU within the tolerance.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.max_abs_error <= self.tolerance
    }
}

/// The error allowed in an f32 product with inner dimension `k` of values in [-1, 1]:
/// rounding grows with the number of terms summed, in whatever order each side sums them.
/// An indexing bug gives errors of order 1, far above it.
#[must_use]
pub fn matmul_tolerance(k: usize) -> f32 {
    1e-6 * (k as f32 + 1.0)
}

/// Multiplies seeded random matrices of each shape on the GPU and on the CPU (candle-core)
/// and reports the largest difference for each.
pub async fn check_matmul(
    ctx: &GpuContext,
    kernel: &MatmulKernel,
    shapes: &[MatmulShape],
    seed: u64,
) -> Result<Vec<MatmulCheck>, GpuError> {
    let mut checks = Vec::with_capacity(shapes.len());
    for (i, &shape) in shapes.iter().enumerate() {
        let a = seeded_values(seed.wrapping_add(2 * i as u64), shape.m * shape.k);
        let b = seeded_values(seed.wrapping_add(2 * i as u64 + 1), shape.k * shape.n);
        let gpu = kernel.run(ctx, &a, &b, shape).await?;
        let cpu = reference_matmul(&a, &b, shape)?;
        checks.push(MatmulCheck {
            shape,
            max_abs_error: max_abs_difference(&gpu, &cpu)?,
            tolerance: matmul_tolerance(shape.k),
        });
    }
    Ok(checks)
}

/// `a · b` on the CPU with candle-core: the reference every GPU product is held to.
pub fn reference_matmul(a: &[f32], b: &[f32], shape: MatmulShape) -> Result<Vec<f32>, GpuError> {
    let reference = || -> candle_core::Result<Vec<f32>> {
        let a = Tensor::from_slice(a, (shape.m, shape.k), &Device::Cpu)?;
        let b = Tensor::from_slice(b, (shape.k, shape.n), &Device::Cpu)?;
        a.matmul(&b)?.flatten_all()?.to_vec1::<f32>()
    };
    reference().map_err(|e| GpuError::Reference(e.to_string()))
}

/// The largest `|x - y|` over two equally long slices; an error if their lengths differ.
pub fn max_abs_difference(xs: &[f32], ys: &[f32]) -> Result<f32, GpuError> {
    if xs.len() != ys.len() {
        return Err(GpuError::Shape(format!(
            "compared {} values with {}",
            xs.len(),
            ys.len()
        )));
    }
    Ok(xs
        .iter()
        .zip(ys)
        .map(|(x, y)| (x - y).abs())
        .fold(
            0.0,
            |worst, d| if d.is_nan() || d > worst { d } else { worst },
        ))
}

/// `len` values uniform in [-1, 1), the same for the same seed on every platform
/// (`SplitMix64`), so a failing check can be replayed anywhere.
#[must_use]
pub fn seeded_values(seed: u64, len: usize) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    // The top 24 bits give an exactly representable f32 in [0, 1).
    (0..len)
        .map(|_| 2.0 * ((rng.next_u64() >> 40) as f32 / (1_u64 << 24) as f32) - 1.0)
        .collect()
}
