//! Token-level mutations for text (JSON, query strings, lists in links): fields repeated
//! or dropped, separators inserted, numbers replaced by very long, negative or boundary
//! ones, unicode and bits of JSON put in. Positions are kept on character boundaries so
//! the text stays UTF-8.

use crate::rng::Rng;

/// Separators of the formats fuzzed, and broken percent escapes.
const SEPARATORS: [&str; 16] = [
    ",", ";", ":", "/", "=", "&", "%", "%2", "%zz", "%C3%28", "%00", "?", "#", "_", " ", "\n",
];

/// Numbers on a boundary of some type, or not numbers at all.
const NUMBERS: [&str; 26] = [
    "0",
    "1",
    "-1",
    "-0",
    "255",
    "256",
    "65535",
    "65536",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "1e308",
    "1e309",
    "-1e309",
    "1e-400",
    "NaN",
    "inf",
    "-inf",
    "0.5",
    "0x10",
];

/// Text beyond ASCII: accents, astral characters, direction and zero-width marks, NUL,
/// JSON escapes of NUL and of a lone surrogate.
const UNICODE: [&str; 14] = [
    "é", "€", "𝄞", "😀", "\u{202e}", "\u{feff}", "\u{0}", "\u{fffd}", "e\u{301}", "\u{200d}", "İ",
    "ß", "\\u0000", "\\ud800",
];

/// Bits of JSON structure.
const JSON_BITS: [&str; 14] = [
    "null", "true", "[]", "{}", "\"\"", "[[[[", "]]]]", "\"x\":1,", "-", ".", "\"", "{", "}", ",",
];

/// What ends a field: ASCII punctuation and space of the formats fuzzed.
fn is_separator(b: u8) -> bool {
    b.is_ascii_whitespace() || b",;:/=&%?#\"'{}[]()<>|\\".contains(&b)
}

/// One token-level mutation of `input`.
pub(super) fn mutate(rng: &mut Rng, input: &mut Vec<u8>, others: &[Vec<u8>]) {
    match rng.below(9) {
        0 => repeat_field(rng, input),
        1 => {
            let text = *rng.pick(&SEPARATORS);
            insert(rng, input, text);
        }
        2 => {
            let number = long_number(rng);
            replace_number(rng, input, &number);
        }
        3 => {
            let negative = format!("-{}", rng.pick(&NUMBERS).trim_start_matches('-'));
            replace_number(rng, input, &negative);
        }
        4 => {
            let number = *rng.pick(&NUMBERS);
            replace_number(rng, input, number);
        }
        5 => {
            let text = *rng.pick(&UNICODE);
            insert(rng, input, text);
        }
        6 => {
            let text = *rng.pick(&JSON_BITS);
            insert(rng, input, text);
        }
        7 => {
            if let Some((start, end)) = span_near(rng, input, |b| !is_separator(b)) {
                input.drain(start..end);
            }
        }
        _ => {
            let Some(other) = others.get(rng.below(others.len())) else {
                return;
            };
            if let Some((start, end)) = span_near(rng, other, |b| !is_separator(b)) {
                let field = other[start..end].to_vec();
                let at = char_boundary(input, rng.below(input.len() + 1));
                input.splice(at..at, field);
            }
        }
    }
}

/// A number of up to 500 digits, perhaps a fraction.
fn long_number(rng: &mut Rng) -> String {
    let digits = 20 + rng.below(481);
    match rng.below(3) {
        0 => "9".repeat(digits),
        1 => format!("1{}", "0".repeat(digits)),
        _ => format!("0.{}1", "0".repeat(digits)),
    }
}

/// Inserts `text` at a character boundary.
fn insert(rng: &mut Rng, input: &mut Vec<u8>, text: &str) {
    let at = char_boundary(input, rng.below(input.len() + 1));
    input.splice(at..at, text.bytes());
}

/// Replaces a run of digits with `number`, or inserts it where there is none.
fn replace_number(rng: &mut Rng, input: &mut Vec<u8>, number: &str) {
    match span_near(rng, input, |b| b.is_ascii_digit()) {
        Some((start, end)) => {
            input.splice(start..end, number.bytes());
        }
        None => insert(rng, input, number),
    }
}

/// Repeats a field, joined by a separator (or nothing), a few times or a thousand (as
/// room under [`super::MAX_INPUT`] allows).
fn repeat_field(rng: &mut Rng, input: &mut Vec<u8>) {
    let Some((start, end)) = span_near(rng, input, |b| !is_separator(b)) else {
        return;
    };
    let times = if rng.one_in(8) {
        1000
    } else {
        1 + rng.small(15)
    };
    let joint = if rng.one_in(3) {
        ""
    } else {
        rng.pick(&SEPARATORS)
    };
    let field = input[start..end].to_vec();
    // Never past the input size limit, however long the field.
    let room = super::MAX_INPUT.saturating_sub(input.len());
    let times = times.min(room / (field.len() + joint.len()).max(1));
    let mut copies = Vec::with_capacity((field.len() + joint.len()) * times);
    for _ in 0..times {
        copies.extend_from_slice(joint.as_bytes());
        copies.extend_from_slice(&field);
    }
    input.splice(end..end, copies);
}

/// The run of bytes where `inside` holds at or after a random position (looking ahead a
/// little), if there is one.
fn span_near(rng: &mut Rng, input: &[u8], inside: impl Fn(u8) -> bool) -> Option<(usize, usize)> {
    if input.is_empty() {
        return None;
    }
    let from = rng.below(input.len());
    let at = (from..input.len().min(from + 256)).find(|&i| inside(input[i]))?;
    let start = (0..at)
        .rev()
        .find(|&i| !inside(input[i]))
        .map_or(0, |i| i + 1);
    let end = (at..input.len())
        .find(|&i| !inside(input[i]))
        .unwrap_or(input.len());
    Some((char_boundary(input, start), char_boundary(input, end)))
}

/// `at`, moved forward to the start of a UTF-8 character.
fn char_boundary(input: &[u8], mut at: usize) -> usize {
    while at < input.len() && input[at] & 0xC0 == 0x80 {
        at += 1;
    }
    at
}
