//! Mutations: each execution's input is a corpus entry changed by a few stacked
//! mutations, byte-level for every target and token-level as well for text targets.

mod bytes;
mod tokens;

use crate::rng::Rng;

/// The longest input a target is given: parsers must refuse what is wrong in a few MB
/// without allocating much more than that.
pub const MAX_INPUT: usize = 4 << 20;

/// Changes `input` by one to eight mutations; `others` (the corpus) is what splicing
/// takes from, `text` allows token-level mutations.
pub fn mutate(rng: &mut Rng, input: &mut Vec<u8>, others: &[Vec<u8>], text: bool) {
    let count = 1 + rng.small(7);
    for _ in 0..count {
        if text && rng.one_in(2) {
            tokens::mutate(rng, input, others);
        } else {
            bytes::mutate(rng, input, others);
        }
    }
    input.truncate(MAX_INPUT);
}

#[cfg(test)]
mod tests {
    use super::{MAX_INPUT, mutate};
    use crate::rng::Rng;

    #[test]
    fn mutations_change_inputs_and_respect_the_size_limit() {
        let mut rng = Rng::new(1);
        let seed = br#"{"n_layer": 2, "name": "tiny", "dims": [4, 8]}"#.to_vec();
        let others = vec![seed.clone(), b"GGUF\x03\0\0\0".to_vec()];
        let mut changed = 0;
        for i in 0..5000 {
            let mut input = seed.clone();
            mutate(&mut rng, &mut input, &others, i % 2 == 0);
            assert!(input.len() <= MAX_INPUT);
            changed += usize::from(input != seed);
        }
        assert!(changed > 4500, "only {changed} of 5000 inputs changed");
    }

    #[test]
    fn empty_inputs_grow() {
        let mut rng = Rng::new(2);
        let grown = (0..200)
            .filter(|i| {
                let mut input = Vec::new();
                mutate(&mut rng, &mut input, &[], i % 2 == 0);
                !input.is_empty()
            })
            .count();
        assert!(grown > 50, "{grown}");
    }
}
