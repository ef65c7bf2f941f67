//! A lesson carried in its own link: the lesson's JSON, deflated and written in URL-safe
//! base64 after `z:` (`lesson=z:…&step=1`), so a teacher shares a lesson written in the
//! page without hosting a file. Reading one is capped like a lesson file: the link's
//! length, and the bytes it unpacks to, so a crafted link cannot make the page inflate
//! gigabytes.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use glassbox_lab::{Lesson, MAX_LESSON_BYTES};

/// What starts a lesson carried in the link.
pub const INLINE_PREFIX: &str = "z:";

/// The most characters of an inline lesson a link may carry; a longer lesson is shared as
/// a file.
pub const MAX_INLINE_CHARS: usize = 32 * 1024;

/// Whether a link's `lesson=` carries the lesson itself.
#[must_use]
pub fn is_inline(name: &str) -> bool {
    name.starts_with(INLINE_PREFIX)
}

/// `lesson` as a link's `lesson=` value, or why it is too long for a link.
pub fn encode(lesson: &Lesson) -> Result<String, String> {
    let json = serde_json::to_vec(lesson).map_err(|e| e.to_string())?;
    let packed = miniz_oxide::deflate::compress_to_vec(&json, 9);
    let value = format!("{INLINE_PREFIX}{}", URL_SAFE_NO_PAD.encode(packed));
    if value.len() > MAX_INLINE_CHARS {
        return Err(format!(
            "the lesson takes {} characters in a link, more than the {MAX_INLINE_CHARS} a link carries here: share it as a file",
            value.len()
        ));
    }
    Ok(value)
}

/// The lesson an inline `lesson=` value carries, or why it cannot be read.
pub fn decode(value: &str) -> Result<Lesson, String> {
    let Some(encoded) = value.strip_prefix(INLINE_PREFIX) else {
        return Err("the link does not carry a lesson".to_owned());
    };
    if encoded.len() > MAX_INLINE_CHARS {
        return Err(format!(
            "the lesson in the link is {} characters long; at most {MAX_INLINE_CHARS} are read",
            encoded.len()
        ));
    }
    let packed = URL_SAFE_NO_PAD
        .decode(encoded.trim_end_matches('='))
        .map_err(|e| format!("the lesson in the link is damaged (cut short when copied?): {e}"))?;
    let json = miniz_oxide::inflate::decompress_to_vec_with_limit(&packed, MAX_LESSON_BYTES)
        .map_err(|e| match e.status {
            miniz_oxide::inflate::TINFLStatus::HasMoreOutput => {
                format!("the lesson in the link unpacks to more than {MAX_LESSON_BYTES} bytes")
            }
            _ => "the lesson in the link is damaged (cut short when copied?)".to_owned(),
        })?;
    Lesson::parse(&json).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lessons::built_in;

    #[test]
    fn every_built_in_lesson_round_trips_through_a_link() {
        for name in ["predictions", "circuit"] {
            let lesson = built_in(name).unwrap().unwrap();
            let value = encode(&lesson).unwrap();
            assert!(is_inline(&value));
            assert!(value.len() < serde_json::to_string(&lesson).unwrap().len());
            assert!(
                value[INLINE_PREFIX.len()..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            assert_eq!(decode(&value).unwrap(), lesson);
        }
    }

    #[test]
    fn damaged_oversized_and_foreign_links_are_refused_with_the_reason() {
        let lesson = built_in("predictions").unwrap().unwrap();
        let value = encode(&lesson).unwrap();
        let cut = &value[..value.len() / 2];
        assert!(decode(cut).unwrap_err().contains("damaged"));
        assert!(decode("z:!!!").unwrap_err().contains("damaged"));
        assert!(decode("predictions").is_err());
        // Deflated JSON that is not a lesson.
        let other = miniz_oxide::deflate::compress_to_vec(br#"{"a":1}"#, 9);
        let value = format!("z:{}", URL_SAFE_NO_PAD.encode(other));
        assert!(decode(&value).unwrap_err().contains("not a lesson"));
        // A small link that unpacks to megabytes (a zip bomb) stops at the cap.
        let bomb = miniz_oxide::deflate::compress_to_vec(&vec![b' '; 4 << 20], 9);
        let value = format!("z:{}", URL_SAFE_NO_PAD.encode(bomb));
        assert!(value.len() < MAX_INLINE_CHARS);
        assert!(decode(&value).unwrap_err().contains("unpacks to more than"));
        let long = format!("z:{}", "A".repeat(MAX_INLINE_CHARS + 1));
        assert!(decode(&long).unwrap_err().contains("at most"));
    }
}
