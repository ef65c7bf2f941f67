//! What the kernels are told: each family's uniform block (`struct Params` in its `.wgsl`
//! file) as a `#[repr(C)]` `Pod` struct of 4-byte fields, and the named constants a
//! kernel and its dispatcher share. The WGSL is the other half of each: the tests of
//! `kernels` reflect every file with naga and check field names, offsets, sizes and
//! constant values against these.

use bytemuck::{Pod, Zeroable};

/// The kernel families, one per `.wgsl` file, each with its own uniform block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    /// `matmul.wgsl`.
    Matmul,
    /// `embed.wgsl`.
    Embed,
    /// `layer_norm.wgsl`.
    LayerNorm,
    /// `attention.wgsl`.
    Attention,
    /// `elementwise.wgsl`.
    Elementwise,
    /// `topk.wgsl`.
    TopK,
    /// `steer.wgsl`.
    Steer,
    /// `attribution.wgsl`.
    Attribution,
    /// `rope.wgsl`.
    Rope,
    /// `matmul_quant.wgsl`.
    MatmulQuant,
}

/// A family's uniform block.
pub(crate) trait Params: Pod {
    /// The family whose kernels read it.
    const FAMILY: Family;
    /// Its fields, in order, as the WGSL names them.
    #[cfg(all(test, not(target_arch = "wasm32")))]
    const FIELDS: &'static [&'static str];
}

/// Declares a uniform block: the struct, its size checked at compile time, and its
/// field names for the reflection test.
macro_rules! params {
    ($(#[$doc:meta])* $name:ident for $family:ident ($bytes:literal bytes) {
        $($(#[$field_doc:meta])* $field:ident: $ty:ty,)*
    }) => {
        $(#[$doc])*
        #[repr(C)]
        #[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
        pub(crate) struct $name {
            $($(#[$field_doc])* pub(crate) $field: $ty,)*
        }

        const _: () = assert!(std::mem::size_of::<$name>() == $bytes);

        impl Params for $name {
            const FAMILY: Family = Family::$family;
            #[cfg(all(test, not(target_arch = "wasm32")))]
            const FIELDS: &'static [&'static str] = &[$(stringify!($field)),*];
        }
    };
}

params! {
    /// `c = act(a · b + bias)` (`matmul.wgsl`).
    MatmulParams for Matmul (32 bytes) {
        /// Rows of `a` and `c`.
        m: u32,
        /// Columns of `a`, rows of `b`.
        k: u32,
        /// Columns of `b` (of this product; `c` may be wider).
        n: u32,
        /// Values between two rows of `c`.
        ldc: u32,
        /// `c`'s first column written.
        col_offset: u32,
        /// Values of `a` skipped.
        a_offset: u32,
        /// 1 to add the bias, 0 not to.
        has_bias: u32,
        /// An [`Act`] code.
        activation: u32,
    }
}

params! {
    /// `c = act(a · Wᵀ + bias)` with `W` quantized (`matmul_quant.wgsl`).
    MatmulQuantParams for MatmulQuant (48 bytes) {
        /// Rows of `a` and `c`.
        m: u32,
        /// Columns of `a`: values in one row of `W`.
        k: u32,
        /// Rows of `W`: columns of `c` written.
        n: u32,
        /// Values between two rows of `c`.
        ldc: u32,
        /// `c`'s first column written.
        col_offset: u32,
        /// Values of `a` skipped.
        a_offset: u32,
        /// 1 to add the bias, 0 not to.
        has_bias: u32,
        /// An [`Act`] code.
        activation: u32,
        /// A [`QuantFormat`] code.
        format: u32,
        /// Bytes of one row of `W`.
        row_bytes: u32,
        _padding0: u32,
        _padding1: u32,
    }
}

params! {
    /// Token and position embeddings (`embed.wgsl`).
    EmbedParams for Embed (32 bytes) {
        /// Positions in this pass.
        len: u32,
        /// Width of the residual stream.
        d: u32,
        /// Positions already in the KV cache.
        offset: u32,
        /// An [`EmbedMode`] code.
        mode: u32,
        /// The first token of the table chunk bound.
        start: u32,
        /// Tokens in the chunk.
        cols: u32,
        /// Where the token ids start in the uploads.
        ids_base: u32,
        _padding: u32,
    }
}

params! {
    /// LayerNorm or `RMSNorm`, before the gain and bias (`layer_norm.wgsl`).
    LayerNormParams for LayerNorm (16 bytes) {
        /// Rows normalized.
        rows: u32,
        /// Width of a row.
        d: u32,
        /// Added to the variance (the mean square for `RMSNorm`).
        eps: f32,
        /// 1 for `RMSNorm` (`x / scale`), 0 for LayerNorm (`(x − mean) / scale`).
        rms: u32,
    }
}

params! {
    /// Attention's steps (`attention.wgsl`).
    AttentionParams for Attention (48 bytes) {
        /// Query positions in this pass.
        len: u32,
        /// Width of the residual stream (GPT-2's `split_qkv`).
        d: u32,
        /// Positions already in the KV cache.
        offset: u32,
        /// Heads.
        heads: u32,
        /// Width of a head.
        d_head: u32,
        /// Key positions: `offset + len`.
        keys: u32,
        /// `1 / sqrt(d_head)`.
        scale: f32,
        /// 1 to turn the scores into the pattern in the same step.
        fuse_softmax: u32,
        /// Key/value heads (as many as `heads`, or a divisor of it).
        kv_heads: u32,
        _padding0: u32,
        _padding1: u32,
        _padding2: u32,
    }
}

params! {
    /// Element-wise steps (`elementwise.wgsl`).
    ElementwiseParams for Elementwise (48 bytes) {
        /// Elements.
        count: u32,
        /// The first element of `x`.
        base: u32,
        /// A row's width (thresholds, gathered columns).
        width: u32,
        /// Positions (for an edit's mask).
        len: u32,
        /// Elements per position step (for an edit's mask).
        inner: u32,
        /// An [`Act`] code (`activate`), an [`EditOp`] code (`edit`), or a column.
        op: u32,
        /// The factor of a scale edit.
        factor: f32,
        /// Where an edit's value starts in `other`.
        other_base: u32,
        /// Where an edit's mask starts in `mask`.
        mask_base: u32,
        _padding0: u32,
        _padding1: u32,
        _padding2: u32,
    }
}

params! {
    /// Top-k selection (`topk.wgsl`).
    TopKParams for TopK (16 bytes) {
        /// Rows.
        rows: u32,
        /// Entries per row.
        width: u32,
        /// Entries kept per row.
        k: u32,
        /// Segments per row of the barrier-free top-k.
        segments: u32,
    }
}

params! {
    /// Steering through a dictionary's decoder (`steer.wgsl`).
    SteerParams for Steer (32 bytes) {
        /// Positions.
        rows: u32,
        /// Width of the output.
        d: u32,
        /// The dictionary's features.
        d_sae: u32,
        /// Edits.
        edits: u32,
        /// The first edit, in [`FeatureEdit`]s of the uploads.
        edits_base: u32,
        /// The first value of the position mask in the uploads.
        mask_base: u32,
        _padding0: u32,
        _padding1: u32,
    }
}

params! {
    /// Attribution's transposed passes (`attribution.wgsl`).
    AttributionParams for Attribution (64 bytes) {
        /// Targets in the batch.
        count: u32,
        /// Positions carried.
        span: u32,
        /// Width of the residual stream.
        d: u32,
        /// Heads.
        heads: u32,
        /// Positions of the prompt (a frozen pattern's row length).
        stride: u32,
        /// Read-off entries.
        entries: u32,
        /// Columns of a target's row.
        out_cols: u32,
        /// Offset into `a`.
        a_base: u32,
        /// Offset into `b`.
        b_base: u32,
        /// Offset into `c`.
        c_base: u32,
        /// Where `b`'s inverse scales start.
        b_scales: u32,
        /// Key/value heads (each shared by `heads / kv_heads` query heads).
        kv_heads: u32,
        /// Width of a head.
        d_head: u32,
        /// 1 where the norm subtracts the mean (LayerNorm), 0 where not (`RMSNorm`).
        centred: u32,
        _padding0: u32,
        _padding1: u32,
    }
}

params! {
    /// Rotary embeddings in place (`rope.wgsl`).
    RopeParams for Rope (32 bytes) {
        /// Positions rotated.
        rows: u32,
        /// Heads per row.
        heads: u32,
        /// Width of a head.
        d_head: u32,
        /// Dimensions of each head that rotate.
        rotary_dim: u32,
        /// The first element of `x` rotated.
        base: u32,
        /// Where the cosines start in the table (the sines follow).
        table_base: u32,
        _padding0: u32,
        _padding1: u32,
    }
}

/// One steering edit as `steer.wgsl` reads it (`struct FeatureEdit`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
pub(crate) struct FeatureEdit {
    /// The feature.
    pub(crate) feature: u32,
    /// A [`SteerMode`] code.
    pub(crate) mode: u32,
    /// The value clamped to, or the factor.
    pub(crate) value: f32,
    pub(crate) _padding: u32,
}

const _: () = assert!(std::mem::size_of::<FeatureEdit>() == 16);

impl FeatureEdit {
    /// Its fields, as the WGSL names them.
    #[cfg(all(test, not(target_arch = "wasm32")))]
    pub(crate) const FIELDS: &'static [&'static str] = &["feature", "mode", "value", "_padding"];
}

/// The activations kernels apply (`ACT_*` in `common.wgsl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Act {
    /// None.
    None = 0,
    /// GELU, tanh approximation.
    GeluTanh = 1,
    /// GELU, exact.
    GeluErf = 2,
    /// ReLU.
    Relu = 3,
    /// `SiLU`, `x · sigmoid(x)`.
    Silu = 4,
}

/// What `embed.wgsl` writes (`EMBED_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum EmbedMode {
    /// Token and position embedding summed.
    TokenAndPosition = 0,
    /// The token embedding alone (`hook_embed`).
    Token = 1,
    /// The position embedding alone (`hook_pos_embed`).
    Position = 2,
}

/// The block formats `matmul_quant.wgsl` reads (`QUANT_*`), llama.cpp's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum QuantFormat {
    /// 32 signed bytes and an f16 scale.
    Q8_0 = 0,
    /// 32 nibbles offset by 8 and an f16 scale.
    Q4_0 = 1,
    /// 32 nibbles, an f16 scale and an f16 minimum.
    Q4_1 = 2,
}

/// What an intervention does (`EDIT_*` in `elementwise.wgsl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum EditOp {
    /// Replace with the uploaded value.
    Replace = 0,
    /// Add the uploaded value.
    Add = 1,
    /// Multiply by the factor.
    Scale = 2,
    /// Set to zero.
    Zero = 3,
}

/// How steering sets a feature (`STEER_*` in `steer.wgsl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum SteerMode {
    /// To a value.
    Clamp = 0,
    /// To its activation times a factor.
    Scale = 1,
}

/// Threads of a workgroup laid out by `linear_groups` (`LINEAR_THREADS`).
pub(crate) const LINEAR_THREADS: u32 = 256;
/// The most workgroups along x (`MAX_GROUPS_X`); WebGPU's default limit.
pub(crate) const MAX_GROUPS_X: u32 = 65535;
/// Rows up to which a product runs as the matrix-vector kernel (`GEMV_ROWS`).
pub(crate) const GEMV_ROWS: u32 = 8;
/// Rows and columns of `c` a tiled-matmul workgroup computes (`TILE_M`, `TILE_N`).
pub(crate) const TILE: u32 = 64;
/// The largest k the barrier-free top-k keeps in private memory (`MAX_K`).
pub(crate) const MAX_PRIVATE_K: u32 = 64;
/// The index meaning "no entry" in a top-k's output (`NONE`).
pub(crate) const NONE: u32 = u32::MAX;

/// Every constant shared with the WGSL: its file, its WGSL name and its value here.
#[cfg(all(test, not(target_arch = "wasm32")))]
pub(crate) const SHARED_CONSTANTS: &[(&str, &str, u32)] = &[
    ("common.wgsl", "ACT_NONE", Act::None as u32),
    ("common.wgsl", "ACT_GELU_TANH", Act::GeluTanh as u32),
    ("common.wgsl", "ACT_GELU_ERF", Act::GeluErf as u32),
    ("common.wgsl", "ACT_RELU", Act::Relu as u32),
    ("common.wgsl", "ACT_SILU", Act::Silu as u32),
    ("common.wgsl", "LINEAR_THREADS", LINEAR_THREADS),
    ("common.wgsl", "MAX_GROUPS_X", MAX_GROUPS_X),
    (
        "embed.wgsl",
        "EMBED_TOKEN_AND_POSITION",
        EmbedMode::TokenAndPosition as u32,
    ),
    ("embed.wgsl", "EMBED_TOKEN", EmbedMode::Token as u32),
    ("embed.wgsl", "EMBED_POSITION", EmbedMode::Position as u32),
    ("elementwise.wgsl", "EDIT_REPLACE", EditOp::Replace as u32),
    ("elementwise.wgsl", "EDIT_ADD", EditOp::Add as u32),
    ("elementwise.wgsl", "EDIT_SCALE", EditOp::Scale as u32),
    ("elementwise.wgsl", "EDIT_ZERO", EditOp::Zero as u32),
    ("steer.wgsl", "STEER_CLAMP", SteerMode::Clamp as u32),
    ("steer.wgsl", "STEER_SCALE", SteerMode::Scale as u32),
    ("matmul.wgsl", "GEMV_ROWS", GEMV_ROWS),
    ("matmul_quant.wgsl", "GEMV_ROWS", GEMV_ROWS),
    ("matmul_quant.wgsl", "TILE_M", TILE),
    ("matmul_quant.wgsl", "TILE_N", TILE),
    ("matmul_quant.wgsl", "QUANT_Q8_0", QuantFormat::Q8_0 as u32),
    ("matmul_quant.wgsl", "QUANT_Q4_0", QuantFormat::Q4_0 as u32),
    ("matmul_quant.wgsl", "QUANT_Q4_1", QuantFormat::Q4_1 as u32),
    ("matmul.wgsl", "TILE_M", TILE),
    ("matmul.wgsl", "TILE_N", TILE),
    ("topk.wgsl", "MAX_K", MAX_PRIVATE_K),
    ("topk.wgsl", "NONE", NONE),
];
