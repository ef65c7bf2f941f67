//! What one execution did, in kind: the fuzzer's proxy for new behaviour (there is no
//! coverage on stable Rust). Each stage a target runs adds whether it loaded, or the start
//! of its error message with numbers and quoted names left out, so that "truncated at byte
//! 12" and "truncated at byte 40" are one kind and "not UTF-8" another. Messages that echo
//! the input unquoted still make many kinds of one; so each outcome also has a coarse
//! key, each stage's first words only, that the corpus limits its inputs by.

use std::fmt::Display;

/// How much of an error message tells its kind.
const KIND_CHARS: usize = 64;
/// The longest word kept in a kind (longer ones are echoed input).
const MAX_WORD: usize = 24;
/// Words of each stage's kind in the coarse key.
const COARSE_WORDS: usize = 3;

/// One execution's outcome, stage by stage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Behaviour {
    key: String,
    coarse: String,
}

impl Behaviour {
    /// Records `stage`'s outcome and gives its value when it succeeded.
    pub fn stage<T, E: Display>(&mut self, stage: &str, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(value) => {
                self.note(&format!("{stage}:ok"));
                Some(value)
            }
            Err(error) => {
                let kind = kind(&error.to_string());
                let coarse = kind
                    .split(' ')
                    .take(COARSE_WORDS)
                    .collect::<Vec<_>>()
                    .join(" ");
                for (key, kind) in [(&mut self.key, &kind), (&mut self.coarse, &coarse)] {
                    key.push_str(stage);
                    key.push_str(":err ");
                    key.push_str(kind);
                    key.push(';');
                }
                None
            }
        }
    }

    /// Records a fact that is not a stage's outcome (e.g. which file an input replaces).
    pub fn note(&mut self, fact: &str) {
        for key in [&mut self.key, &mut self.coarse] {
            key.push_str(fact);
            key.push(';');
        }
    }

    /// The outcome as one key.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The outcome with each error's kind cut to its first words.
    #[must_use]
    pub fn coarse(&self) -> &str {
        &self.coarse
    }
}

/// The kind of an error message: its first words, with what stands between backticks or
/// double quotes (up to the last such quote) left out and every word that is not plain
/// letters (numbers, paths, echoed input, anything longer than [`MAX_WORD`]) as `#`.
fn kind(message: &str) -> String {
    let text = unquoted(message);
    let mut words: Vec<&str> = Vec::new();
    for word in text.split_whitespace() {
        let bare = word.trim_end_matches([',', ':', ';', '.', ')']);
        let plain = (1..=MAX_WORD).contains(&bare.len())
            && bare.chars().all(|c| c.is_ascii_alphabetic() || c == '-');
        let word = if plain { word } else { "#" };
        if !(word == "#" && words.last() == Some(&"#")) {
            words.push(word);
        }
        if words.iter().map(|w| w.len() + 1).sum::<usize>() > KIND_CHARS {
            break;
        }
    }
    words.join(" ")
}

/// `message` with each quoted part (from a backtick or double quote to the last of the
/// same in the message, so quotes inside echoed input do not matter) left out.
fn unquoted(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(open) = rest.find(['`', '"']) {
        let quote = &rest[open..=open];
        out.push_str(&rest[..open]);
        match rest[open + 1..].rfind(quote) {
            Some(close) => rest = &rest[open + 1 + close + 1..],
            None => {
                rest = &rest[open + 1..];
            }
        }
        out.push(' ');
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::{Behaviour, kind};

    #[test]
    fn numbers_and_names_do_not_make_a_new_kind() {
        assert_eq!(
            kind("truncated: 12 bytes needed at byte 400"),
            kind("truncated: 8 bytes needed at byte 3")
        );
        assert_eq!(kind("tensor `a.b` is missing"), "tensor is missing");
        assert_eq!(kind(r#"pack="a\"b" is bad"#), "# is bad");
        assert_eq!(
            kind("`1/2`x`` is not a steered feature: write layer/index:c<value>"),
            kind("`é` is not a steered feature: write layer/index:c<value>"),
        );
        assert_eq!(
            kind("cfg.json: reads blocks.-1.ln2 with 8 features"),
            "# reads # with # features"
        );
        assert_ne!(kind("not UTF-8"), kind("truncated"));
        let echoed = format!("reads blocks.{} with", "a".repeat(1 << 20));
        assert_eq!(kind(&echoed), "reads # with");
        assert_eq!(kind(&format!("{} is bad", "a".repeat(1 << 20))), "# is bad");
    }

    #[test]
    fn stages_are_recorded_in_order() {
        let mut b = Behaviour::default();
        assert_eq!(b.stage("parse", Ok::<_, String>(3)), Some(3));
        assert_eq!(b.stage::<(), _>("load", Err("bad 7")), None);
        assert_eq!(b.stage::<(), _>("check", Err("too many things here")), None);
        assert_eq!(
            b.key(),
            "parse:ok;load:err bad #;check:err too many things here;"
        );
        assert_eq!(
            b.coarse(),
            "parse:ok;load:err bad #;check:err too many things;"
        );
    }
}
