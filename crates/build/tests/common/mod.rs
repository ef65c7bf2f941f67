//! What the pack-building tests share.

use glassbox_build::corpus::{Document, Split, Word};

/// A document of the given words and tags, joined by spaces.
pub(crate) fn document(id: &str, genre: char, words: &[(&str, &str)]) -> Document {
    let mut text = String::new();
    let mut spans = Vec::new();
    for (word, tag) in words {
        if !text.is_empty() {
            text.push(' ');
        }
        let start = text.len() as u32;
        text.push_str(word);
        spans.push(Word {
            start,
            end: text.len() as u32,
            tag: (*tag).to_owned(),
        });
    }
    Document {
        id: id.to_owned(),
        genre,
        split: if genre == 'a' {
            Split::Train
        } else {
            Split::Eval
        },
        text,
        words: spans,
    }
}
