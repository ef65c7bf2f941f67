//! A roofline model of a GPU pass: the bytes it moves and the FLOPs it computes (from the
//! model's shape, the weights on the device and the dispatches the pass recorded), and the
//! time that predicts on named GPUs — the slower of memory and arithmetic, plus a fixed
//! cost per dispatch and per submit. To be checked against a real GPU when one is lent:
//! the measured time over the predicted one says how far the kernels are from the bound.

use glassbox_model::{Model, ModelDims};

/// A GPU as the model sees it.
pub(crate) struct Gpu {
    pub(crate) name: &'static str,
    /// Memory bandwidth, GB/s.
    pub(crate) bandwidth_gbps: f64,
    /// f32 arithmetic without tensor cores (what WGSL kernels use), TFLOP/s.
    pub(crate) f32_tflops: f64,
}

/// The GPUs predicted for: a data-centre GPU (what the device machine lends), a laptop's
/// integrated GPU and Apple's base M2, from their makers' specifications.
pub(crate) const GPUS: [Gpu; 3] = [
    Gpu {
        name: "NVIDIA H200",
        bandwidth_gbps: 4800.0,
        f32_tflops: 67.0,
    },
    Gpu {
        name: "Apple M2 (10-core GPU)",
        bandwidth_gbps: 100.0,
        f32_tflops: 3.6,
    },
    Gpu {
        name: "Intel Iris Xe (96 EU)",
        bandwidth_gbps: 68.0,
        f32_tflops: 2.2,
    },
];

/// Assumed fixed cost of one compute dispatch (recording, launch, barrier), µs: the
/// order WebGPU implementations show; the first real GPU lent replaces the guess.
const DISPATCH_US: f64 = 5.0;
/// Assumed cost of one submit with its read back, µs.
const SUBMIT_US: f64 = 50.0;

/// What one pass moves and computes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PassCost {
    /// Bytes read and written: every weight once, and each dispatch's activations.
    pub(crate) bytes: f64,
    /// Floating-point operations.
    pub(crate) flops: f64,
    /// Dispatches and submits the pass recorded.
    pub(crate) dispatches: f64,
    pub(crate) submits: f64,
}

/// Weights that multiply every position (the blocks' matrices) and the unembedding's,
/// counted from the model.
fn matrix_elements(model: &Model) -> (f64, f64) {
    let dims = model.dims();
    let unembedding = (dims.vocab_size * dims.d_model) as f64;
    let blocks = match model {
        Model::Gpt2(m) => {
            let c = m.config();
            (c.n_layer * (4 * c.n_embd * c.n_embd + 2 * c.n_embd * c.d_mlp())) as f64
        }
        Model::Llama(m) => {
            let c = m.config();
            let (q, kv) = (c.n_head * c.d_head, c.n_kv_head * c.d_head);
            (c.n_layer * (c.d_model * (2 * q + 2 * kv) + 3 * c.d_model * c.d_mlp)) as f64
        }
    };
    (blocks, unembedding)
}

impl PassCost {
    /// A pass over `tokens` positions (`cached` earlier ones in a KV cache) reading the
    /// logits of `read` positions, with `weight_bytes` on the device and the `dispatches`
    /// and `submits` it recorded.
    pub(crate) fn of(
        model: &Model,
        (tokens, cached, read): (usize, usize, usize),
        weight_bytes: u64,
        (dispatches, submits): (f64, f64),
    ) -> Self {
        let ModelDims {
            n_layer, d_model, ..
        } = model.dims();
        let (blocks, unembedding) = matrix_elements(model);
        let (t, context) = (tokens as f64, (cached + tokens) as f64);
        // Scores and the weighted sum: two products of t × context × d per block (causal:
        // about half the pairs when nothing is cached).
        let pairs = if cached == 0 {
            t * (t + 1.0) / 2.0
        } else {
            t * context
        };
        let attention = 4.0 * pairs * d_model as f64 * n_layer as f64;
        let flops = 2.0 * t * blocks + 2.0 * read as f64 * unembedding + attention;
        // Each dispatch reads and writes about one [t, d] activation in f32.
        let activations = dispatches * 2.0 * t * d_model as f64 * 4.0;
        Self {
            bytes: weight_bytes as f64 + activations,
            flops,
            dispatches,
            submits,
        }
    }

    /// Predicted milliseconds on `gpu`, and which bound decides it.
    pub(crate) fn predict(&self, gpu: &Gpu) -> (f64, &'static str) {
        let memory = self.bytes / (gpu.bandwidth_gbps * 1e9) * 1e3;
        let arithmetic = self.flops / (gpu.f32_tflops * 1e12) * 1e3;
        let fixed = (self.dispatches * DISPATCH_US + self.submits * SUBMIT_US) / 1e3;
        let (bound, name) = if memory >= arithmetic {
            (memory, "memory")
        } else {
            (arithmetic, "arithmetic")
        };
        if fixed >= bound {
            (bound + fixed, "dispatch")
        } else {
            (bound + fixed, name)
        }
    }

    /// One line: the pass's bytes and FLOPs (in all and per dispatch) and its predicted
    /// time on each of [`GPUS`].
    pub(crate) fn line(&self, label: &str) -> String {
        let per = self.dispatches.max(1.0);
        let predictions: Vec<String> = GPUS
            .iter()
            .map(|gpu| {
                let (ms, bound) = self.predict(gpu);
                format!("{} {ms:.3} ms ({bound})", gpu.name)
            })
            .collect();
        format!(
            "  roofline {label}: {:.1} MB, {:.2} GFLOP ({:.0} kB, {:.1} MFLOP per dispatch); predicted: {}",
            self.bytes / 1e6,
            self.flops / 1e9,
            self.bytes / per / 1e3,
            self.flops / per / 1e6,
            predictions.join(", ")
        )
    }
}
