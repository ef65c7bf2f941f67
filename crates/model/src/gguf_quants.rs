//! The GGUF tensor encodings Glassbox reads, and their dequantization to f32: plain floats
//! (F32, F16, BF16), llama.cpp's blocks of 32 (`Q4_0`, `Q4_1`, `Q5_0`, `Q5_1`, `Q8_0`) and its
//! super-blocks of 256 (`Q2_K` to `Q6_K`, as in "`Q4_K_M`" files). Each decoder follows the
//! block layout ggml defines; `tests/gguf_quants.rs` checks them against llama.cpp's own
//! Python package on random blocks.

/// A matrix as a GGUF file stores it, kept for an engine that computes on the blocks
/// (the GPU engine): `rows` rows (a linear layer's outputs, in Hugging Face's order) of
/// `cols` values (its inputs), each row `cols / block_size` blocks of `kind`.
#[derive(Debug, Clone)]
pub struct QuantizedMatrix {
    /// The block encoding.
    pub kind: TensorType,
    /// Rows: outputs.
    pub rows: usize,
    /// Values per row: inputs.
    pub cols: usize,
    /// The blocks, row after row (shared: cloning a model does not copy them).
    pub bytes: std::sync::Arc<[u8]>,
}

impl QuantizedMatrix {
    /// Bytes of one row.
    #[must_use]
    pub fn row_bytes(&self) -> usize {
        self.cols / self.kind.block_size() * self.kind.block_bytes()
    }
}

/// A tensor encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorType {
    /// 32-bit floats.
    F32,
    /// 16-bit IEEE floats.
    F16,
    /// bfloat16.
    Bf16,
    /// 32 values: an f16 scale and 4-bit values offset by 8.
    Q4_0,
    /// 32 values: an f16 scale and minimum and unsigned 4-bit values.
    Q4_1,
    /// 32 values: an f16 scale and 5-bit values offset by 16.
    Q5_0,
    /// 32 values: an f16 scale and minimum and unsigned 5-bit values.
    Q5_1,
    /// 32 values: an f16 scale and signed bytes.
    Q8_0,
    /// 256 values in 16 groups: 2-bit values, 4-bit group scales and minimums.
    Q2K,
    /// 256 values in 16 groups: 3-bit values, 6-bit signed group scales.
    Q3K,
    /// 256 values in 8 groups: 4-bit values, 6-bit group scales and minimums.
    Q4K,
    /// 256 values in 8 groups: 5-bit values, 6-bit group scales and minimums.
    Q5K,
    /// 256 values in 16 groups: 6-bit values offset by 32, signed byte group scales.
    Q6K,
}

impl TensorType {
    /// The encoding with ggml's type id `id`, if Glassbox reads it.
    #[must_use]
    pub fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            6 => Self::Q5_0,
            7 => Self::Q5_1,
            8 => Self::Q8_0,
            10 => Self::Q2K,
            11 => Self::Q3K,
            12 => Self::Q4K,
            13 => Self::Q5K,
            14 => Self::Q6K,
            30 => Self::Bf16,
            _ => return None,
        })
    }

    /// ggml's type id.
    #[must_use]
    pub fn id(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q4_0 => 2,
            Self::Q4_1 => 3,
            Self::Q5_0 => 6,
            Self::Q5_1 => 7,
            Self::Q8_0 => 8,
            Self::Q2K => 10,
            Self::Q3K => 11,
            Self::Q4K => 12,
            Self::Q5K => 13,
            Self::Q6K => 14,
            Self::Bf16 => 30,
        }
    }

    /// Values per block.
    #[must_use]
    pub fn block_size(self) -> usize {
        match self {
            Self::F32 | Self::F16 | Self::Bf16 => 1,
            Self::Q4_0 | Self::Q4_1 | Self::Q5_0 | Self::Q5_1 | Self::Q8_0 => 32,
            Self::Q2K | Self::Q3K | Self::Q4K | Self::Q5K | Self::Q6K => 256,
        }
    }

    /// Bytes per block.
    #[must_use]
    pub fn block_bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 | Self::Bf16 => 2,
            Self::Q4_0 => 18,
            Self::Q4_1 => 20,
            Self::Q5_0 => 22,
            Self::Q5_1 => 24,
            Self::Q8_0 => 34,
            Self::Q2K => 84,
            Self::Q3K => 110,
            Self::Q4K => 144,
            Self::Q5K => 176,
            Self::Q6K => 210,
        }
    }
}

/// ggml's name for a tensor type id it does not share with Glassbox, for errors.
#[must_use]
pub(crate) fn ggml_type_name(id: u32) -> &'static str {
    match id {
        9 => "Q8_1",
        15 => "Q8_K",
        16..=23 | 29 => "an IQ type",
        34 | 35 => "a ternary type",
        39 => "MXFP4",
        _ => "unknown",
    }
}

fn f16(bytes: &[u8], at: usize) -> f32 {
    half::f16::from_le_bytes([bytes[at], bytes[at + 1]]).to_f32()
}

/// `values` (a whole number of 32-value blocks) in `kind`'s blocks, each value rounded to
/// the nearest step (scales from each block's extremes); `None` for a kind not written
/// here (only `Q8_0`, `Q4_0` and `Q4_1` are). For random quantized models in tests and
/// benchmarks; llama.cpp's own quantizers pick scales with more care.
#[must_use]
pub fn quantize(kind: TensorType, values: &[f32]) -> Option<Vec<u8>> {
    if !values.len().is_multiple_of(32) {
        return None;
    }
    let half = |v: f32| half::f16::from_f32(v).to_le_bytes();
    let nibbles = |block: &[f32], q: &dyn Fn(f32) -> u8| -> Vec<u8> {
        (0..16)
            .map(|j| q(block[j]) | (q(block[j + 16]) << 4))
            .collect()
    };
    let mut bytes = Vec::with_capacity(values.len() / 32 * kind.block_bytes());
    for block in values.chunks(32) {
        let (lo, hi) = block
            .iter()
            .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let amax = lo.abs().max(hi.abs());
        let inverse = |d: f32| if d > 0.0 { 1.0 / d } else { 0.0 };
        match kind {
            TensorType::Q8_0 => {
                let d = half::f16::from_f32(amax / 127.0).to_f32();
                bytes.extend(half(d));
                let id = inverse(d);
                bytes.extend(
                    block
                        .iter()
                        .map(|&v| ((v * id).round().clamp(-127.0, 127.0) as i8).to_le_bytes()[0]),
                );
            }
            TensorType::Q4_0 => {
                let d = half::f16::from_f32(amax / 7.0).to_f32();
                bytes.extend(half(d));
                let id = inverse(d);
                bytes.extend(nibbles(block, &|v| {
                    ((v * id).round() + 8.0).clamp(0.0, 15.0) as u8
                }));
            }
            TensorType::Q4_1 => {
                let d = half::f16::from_f32((hi - lo) / 15.0).to_f32();
                let min = half::f16::from_f32(lo).to_f32();
                bytes.extend(half(d));
                bytes.extend(half(min));
                let id = inverse(d);
                bytes.extend(nibbles(block, &|v| {
                    ((v - min) * id).round().clamp(0.0, 15.0) as u8
                }));
            }
            _ => return None,
        }
    }
    Some(bytes)
}

/// The values of `raw`, a whole number of `kind` blocks.
#[must_use]
pub fn dequantize(kind: TensorType, raw: &[u8]) -> Vec<f32> {
    let count = raw.len() / kind.block_bytes() * kind.block_size();
    let mut out = Vec::with_capacity(count);
    for block in raw.chunks_exact(kind.block_bytes()) {
        match kind {
            TensorType::F32 => {
                out.push(f32::from_le_bytes([block[0], block[1], block[2], block[3]]));
            }
            TensorType::F16 => out.push(f16(block, 0)),
            TensorType::Bf16 => out.push(half::bf16::from_le_bytes([block[0], block[1]]).to_f32()),
            TensorType::Q4_0 => q4(block, &mut out, false),
            TensorType::Q4_1 => q4(block, &mut out, true),
            TensorType::Q5_0 => q5(block, &mut out, false),
            TensorType::Q5_1 => q5(block, &mut out, true),
            TensorType::Q8_0 => {
                let scale = f16(block, 0);
                out.extend(
                    block[2..34]
                        .iter()
                        .map(|&q| f32::from(q.cast_signed()) * scale),
                );
            }
            TensorType::Q2K => q2_k(block, &mut out),
            TensorType::Q3K => q3_k(block, &mut out),
            TensorType::Q4K => q45_k(block, &mut out, false),
            TensorType::Q5K => q45_k(block, &mut out, true),
            TensorType::Q6K => q6_k(block, &mut out),
        }
    }
    out
}

/// `Q4_0` (value − 8, times the scale) or `Q4_1` (value times the scale, plus the
/// minimum): the 16 low nibbles are values 0..16, the high ones 16..32.
fn q4(block: &[u8], out: &mut Vec<f32>, with_min: bool) {
    let scale = f16(block, 0);
    if with_min {
        let (min, qs) = (f16(block, 2), &block[4..20]);
        out.extend(qs.iter().map(|b| f32::from(b & 0x0f) * scale + min));
        out.extend(qs.iter().map(|b| f32::from(b >> 4) * scale + min));
    } else {
        let qs = &block[2..18];
        let value = |v: u8| f32::from(i16::from(v) - 8) * scale;
        out.extend(qs.iter().map(|b| value(b & 0x0f)));
        out.extend(qs.iter().map(|b| value(b >> 4)));
    }
}

/// `Q5_0` / `Q5_1`: `Q4`'s nibbles with a fifth bit from a 32-bit mask (bit `j` for value
/// `j`), offset by 16 without a minimum.
fn q5(block: &[u8], out: &mut Vec<f32>, with_min: bool) {
    let scale = f16(block, 0);
    let (min, high_at) = if with_min {
        (Some(f16(block, 2)), 4)
    } else {
        (None, 2)
    };
    let high = u32::from_le_bytes([
        block[high_at],
        block[high_at + 1],
        block[high_at + 2],
        block[high_at + 3],
    ]);
    let qs = &block[high_at + 4..high_at + 20];
    let value = |low: u8, bit: usize| {
        let v = i16::from(low | ((((high >> bit) & 1) as u8) << 4));
        match min {
            Some(min) => f32::from(v) * scale + min,
            None => f32::from(v - 16) * scale,
        }
    };
    out.extend(qs.iter().enumerate().map(|(j, b)| value(b & 0x0f, j)));
    out.extend(qs.iter().enumerate().map(|(j, b)| value(b >> 4, j + 16)));
}

/// `Q2_K`: 16 groups of 16; each group's byte holds a 4-bit scale (low) and minimum (high),
/// times the super-block's `d` and `dmin`; values are 2-bit fields of `qs`.
fn q2_k(block: &[u8], out: &mut Vec<f32>) {
    let (scales, qs) = (&block[0..16], &block[16..80]);
    let (d, dmin) = (f16(block, 80), f16(block, 82));
    let mut group = 0;
    for half in 0..2 {
        let q = &qs[half * 32..half * 32 + 32];
        for shift in (0..8).step_by(2) {
            for part in 0..2 {
                let sc = scales[group];
                group += 1;
                let (dl, ml) = (d * f32::from(sc & 0x0f), dmin * f32::from(sc >> 4));
                for &byte in &q[part * 16..part * 16 + 16] {
                    out.push(dl * f32::from((byte >> shift) & 3) - ml);
                }
            }
        }
    }
}

/// `Q3_K`: 16 groups of 16; 2 low bits in `qs`, the third (set: no offset, clear: −4) in
/// `hmask`; 6-bit group scales (offset by 32) packed in 12 bytes.
fn q3_k(block: &[u8], out: &mut Vec<f32>) {
    let (hmask, qs, packed) = (&block[0..32], &block[32..96], &block[96..108]);
    let d = f16(block, 108);
    let mut scales = [0_i8; 16];
    for (i, scale) in scales.iter_mut().enumerate() {
        let low = if i < 8 {
            packed[i] & 0x0f
        } else {
            packed[i - 8] >> 4
        };
        let high = (packed[8 + i % 4] >> (2 * (i / 4))) & 3;
        *scale = (low | (high << 4)).cast_signed() - 32;
    }
    let mut group = 0;
    let mut bit = 1_u8;
    for half in 0..2 {
        let q = &qs[half * 32..half * 32 + 32];
        for shift in (0..8).step_by(2) {
            for part in 0..2 {
                let dl = d * f32::from(scales[group]);
                group += 1;
                for l in part * 16..part * 16 + 16 {
                    let low = i16::from((q[l] >> shift) & 3);
                    let offset = if hmask[l] & bit == 0 { 4 } else { 0 };
                    out.push(dl * f32::from(low - offset));
                }
            }
            bit <<= 1;
        }
    }
}

/// The 6-bit scale and minimum of group `j` (0..8) of a `Q4_K`/`Q5_K` super-block.
fn scale_min_k4(j: usize, packed: &[u8]) -> (u8, u8) {
    if j < 4 {
        (packed[j] & 63, packed[j + 4] & 63)
    } else {
        (
            (packed[j + 4] & 0x0f) | ((packed[j - 4] >> 6) << 4),
            (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4),
        )
    }
}

/// `Q4_K` / `Q5_K`: 8 groups of 32, `d · scale · q − dmin · min` per group; `Q5_K` adds a
/// fifth bit from `qh`.
fn q45_k(block: &[u8], out: &mut Vec<f32>, five: bool) {
    let (d, dmin) = (f16(block, 0), f16(block, 2));
    let packed = &block[4..16];
    let (qh, qs) = if five {
        (&block[16..48], &block[48..176])
    } else {
        (&block[0..0], &block[16..144])
    };
    for chunk in 0..4 {
        let q = &qs[chunk * 32..chunk * 32 + 32];
        for (nibble, group) in [(0, 2 * chunk), (4, 2 * chunk + 1)] {
            let (sc, m) = scale_min_k4(group, packed);
            let (dl, ml) = (d * f32::from(sc), dmin * f32::from(m));
            for (l, &byte) in q.iter().enumerate() {
                let mut value = (byte >> nibble) & 0x0f;
                if five && qh[l] & (1 << group) != 0 {
                    value += 16;
                }
                out.push(dl * f32::from(value) - ml);
            }
        }
    }
}

/// `Q6_K`: 16 groups of 16; 4 low bits in `ql`, 2 high bits in `qh`, offset by 32; signed
/// byte group scales times `d`.
fn q6_k(block: &[u8], out: &mut Vec<f32>) {
    let (ql, qh, scales) = (&block[0..128], &block[128..192], &block[192..208]);
    let d = f16(block, 208);
    for half in 0..2 {
        let (ql, qh) = (
            &ql[half * 64..half * 64 + 64],
            &qh[half * 32..half * 32 + 32],
        );
        let sc = &scales[half * 8..half * 8 + 8];
        let mut values = [0_f32; 128];
        for l in 0..32 {
            let group = l / 16;
            let field = |low: u8, shift: u32| i16::from(low | (((qh[l] >> shift) & 3) << 4)) - 32;
            let q = [
                field(ql[l] & 0x0f, 0),
                field(ql[l + 32] & 0x0f, 2),
                field(ql[l] >> 4, 4),
                field(ql[l + 32] >> 4, 6),
            ];
            for (k, &value) in q.iter().enumerate() {
                values[l + 32 * k] =
                    d * f32::from(sc[group + 2 * k].cast_signed()) * f32::from(value);
            }
        }
        out.extend_from_slice(&values);
    }
}
