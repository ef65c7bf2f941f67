//! Byte-level mutations: bit flips, interesting bytes, little-endian integers set to
//! boundary values (the lengths, counts and offsets binary formats trust), ranges
//! inserted, deleted, duplicated and spliced from other inputs.

use crate::rng::Rng;

/// Bytes that sit on a boundary.
const INTERESTING_BYTES: [u8; 4] = [0, 0xFF, 0x7F, 0x80];

/// Integers that sit on a boundary: zero and one, each width's extremes, and lengths
/// too large for any file.
const BOUNDARIES: [u64; 22] = [
    0,
    1,
    2,
    0x7F,
    0x80,
    0xFF,
    0x7FFF,
    0x8000,
    0xFFFF,
    0x7FFF_FFFF,
    0x8000_0000,
    0xFFFF_FFFF,
    1 << 32,
    1 << 40,
    1 << 48,
    1 << 60,
    i64::MAX as u64,
    i64::MIN as u64,
    u64::MAX,
    u64::MAX - 7,
    u64::MAX / 2 + 1,
    usize::MAX as u64 / 4 + 1,
];

/// Integer widths, in bytes.
const WIDTHS: [usize; 4] = [1, 2, 4, 8];

/// The longest range one mutation inserts.
const MAX_RANGE: usize = 4096;

/// A position in `len` bytes: uniform, or (half the time) near the start, where binary
/// formats keep the headers, counts and offsets that the rest is read by.
fn position(rng: &mut Rng, len: usize) -> usize {
    if rng.one_in(2) {
        rng.small(len.saturating_sub(1))
    } else {
        rng.below(len)
    }
}

/// One byte-level mutation of `input`.
pub(super) fn mutate(rng: &mut Rng, input: &mut Vec<u8>, others: &[Vec<u8>]) {
    if input.is_empty() {
        insert_range(rng, input);
        return;
    }
    match rng.below(10) {
        0 => {
            let at = position(rng, input.len());
            input[at] ^= 1 << rng.below(8);
        }
        1 => {
            let at = position(rng, input.len());
            input[at] = *rng.pick(&INTERESTING_BYTES);
        }
        2 => {
            let at = position(rng, input.len());
            input[at] = rng.u64() as u8;
        }
        3 => overwrite_integer(rng, input),
        4 => nudge_integer(rng, input),
        5 => insert_range(rng, input),
        6 => {
            let at = position(rng, input.len());
            let len = 1 + rng.small(input.len() - at - 1);
            input.drain(at..at + len);
        }
        7 => duplicate_range(rng, input),
        8 => splice(rng, input, others),
        _ => input.truncate(rng.below(input.len())),
    }
}

/// Writes a boundary value (or one next to it) as a little-endian integer somewhere.
fn overwrite_integer(rng: &mut Rng, input: &mut Vec<u8>) {
    let width = *rng.pick(&WIDTHS);
    let value = match rng.below(4) {
        0 => rng.pick(&BOUNDARIES).wrapping_add(1),
        1 => rng.pick(&BOUNDARIES).wrapping_sub(1),
        _ => *rng.pick(&BOUNDARIES),
    };
    let at = position(rng, input.len().saturating_sub(width) + 1);
    if input.len() < at + width {
        input.resize(at + width, 0);
    }
    input[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
}

/// Adds a small amount to a little-endian integer (a length one off, an offset moved).
fn nudge_integer(rng: &mut Rng, input: &mut [u8]) {
    let width = *rng.pick(&WIDTHS);
    if input.len() < width {
        return;
    }
    let at = position(rng, input.len() - width + 1);
    let mut bytes = [0; 8];
    bytes[..width].copy_from_slice(&input[at..at + width]);
    let delta = rng.below(33) as u64;
    let value = u64::from_le_bytes(bytes)
        .wrapping_add(delta)
        .wrapping_sub(16);
    input[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
}

/// Inserts random bytes, or a copy of part of the input.
fn insert_range(rng: &mut Rng, input: &mut Vec<u8>) {
    let at = position(rng, input.len() + 1);
    let len = 1 + rng.small(MAX_RANGE - 1);
    let bytes: Vec<u8> = if !input.is_empty() && rng.one_in(2) {
        let from = position(rng, input.len());
        input[from..input.len().min(from + len)].to_vec()
    } else if rng.one_in(2) {
        vec![*rng.pick(&INTERESTING_BYTES); len]
    } else {
        (0..len).map(|_| rng.u64() as u8).collect()
    };
    input.splice(at..at, bytes);
}

/// Repeats a range in place, a few times or many.
fn duplicate_range(rng: &mut Rng, input: &mut Vec<u8>) {
    let from = position(rng, input.len());
    let len = 1 + rng.small((input.len() - from - 1).min(MAX_RANGE - 1));
    let times = 1 + rng.small(255);
    let range = input[from..from + len].to_vec();
    let copies: Vec<u8> = range.iter().copied().cycle().take(len * times).collect();
    input.splice(from + len..from + len, copies);
}

/// Takes a range of another input: inserted, written over, or as the tail.
fn splice(rng: &mut Rng, input: &mut Vec<u8>, others: &[Vec<u8>]) {
    let Some(other) = others
        .get(rng.below(others.len()))
        .filter(|o| !o.is_empty())
    else {
        return;
    };
    let from = rng.below(other.len());
    let at = position(rng, input.len() + 1);
    match rng.below(3) {
        0 => {
            let len = 1 + rng.small((other.len() - from - 1).min(MAX_RANGE - 1));
            input.splice(at..at, other[from..from + len].iter().copied());
        }
        1 => {
            let len = (other.len() - from).min(input.len() - at).min(MAX_RANGE);
            input[at..at + len].copy_from_slice(&other[from..from + len]);
        }
        _ => {
            input.truncate(at);
            input.extend_from_slice(&other[from..]);
        }
    }
}
