//! The corpus: the seeds, and every input whose behaviour was new when it ran (the
//! proxy for coverage this fuzzer has; see [`crate::Behaviour`]), at most
//! [`PER_COARSE`] of each coarse behaviour, so a message that echoes the input cannot
//! fill it.

use std::collections::{HashMap, HashSet};

use crate::Behaviour;
use crate::rng::Rng;

/// The most inputs kept.
const MAX_ENTRIES: usize = 4096;
/// The most bytes kept, all inputs together.
const MAX_BYTES: usize = 256 << 20;
/// The most behaviours remembered.
const MAX_KINDS: usize = 1 << 16;
/// The most inputs kept of one coarse behaviour.
const PER_COARSE: u32 = 16;

/// Inputs to mutate, and the behaviours seen.
#[derive(Debug)]
pub(crate) struct Corpus {
    entries: Vec<Vec<u8>>,
    bytes: usize,
    seen: HashSet<Behaviour>,
    per_coarse: HashMap<String, u32>,
}

impl Corpus {
    /// A corpus of the seeds.
    pub(crate) fn new(seeds: Vec<Vec<u8>>) -> Self {
        let bytes = seeds.iter().map(Vec::len).sum();
        Self {
            entries: seeds,
            bytes,
            seen: HashSet::new(),
            per_coarse: HashMap::new(),
        }
    }

    /// Every input kept.
    pub(crate) fn entries(&self) -> &[Vec<u8>] {
        &self.entries
    }

    /// A random input to mutate.
    pub(crate) fn pick(&self, rng: &mut Rng) -> &[u8] {
        self.entries
            .get(rng.below(self.entries.len()))
            .map_or(&[], Vec::as_slice)
    }

    /// Notes a seed's behaviour.
    pub(crate) fn record(&mut self, behaviour: Behaviour) {
        if self.seen.len() < MAX_KINDS {
            self.seen.insert(behaviour);
        }
    }

    /// Keeps `input` if `behaviour` is new (while there is room); says whether it was new.
    pub(crate) fn consider(&mut self, input: &[u8], behaviour: Behaviour) -> bool {
        if self.seen.len() >= MAX_KINDS || self.seen.contains(&behaviour) {
            return false;
        }
        let kept = self
            .per_coarse
            .entry(behaviour.coarse().to_owned())
            .or_default();
        *kept += 1;
        self.seen.insert(behaviour);
        if *kept <= PER_COARSE
            && self.entries.len() < MAX_ENTRIES
            && self.bytes + input.len() <= MAX_BYTES
        {
            self.bytes += input.len();
            self.entries.push(input.to_vec());
        }
        true
    }

    /// How many behaviours were seen.
    pub(crate) fn behaviours(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::Corpus;
    use crate::Behaviour;

    fn behaviour(stage: &str) -> Behaviour {
        let mut b = Behaviour::default();
        b.stage(stage, Ok::<_, String>(()));
        b
    }

    #[test]
    fn only_new_behaviour_is_kept() {
        let mut corpus = Corpus::new(vec![b"seed".to_vec()]);
        corpus.record(behaviour("a"));
        assert!(!corpus.consider(b"x", behaviour("a")));
        assert!(corpus.consider(b"y", behaviour("b")));
        assert!(!corpus.consider(b"z", behaviour("b")));
        assert_eq!(corpus.entries(), [b"seed".to_vec(), b"y".to_vec()]);
        assert_eq!(corpus.behaviours(), 2);
    }

    #[test]
    fn one_coarse_behaviour_keeps_few_inputs() {
        let mut corpus = Corpus::new(Vec::new());
        for i in 0..40_u8 {
            let mut b = Behaviour::default();
            let echo = [b'a' + i / 26, b'a' + i % 26].map(char::from);
            let message = format!("this pack is {}{} version", echo[0], echo[1]);
            b.stage::<(), _>("parse", Err(message));
            assert!(corpus.consider(b"input", b));
        }
        assert_eq!(corpus.behaviours(), 40);
        assert_eq!(corpus.entries().len(), super::PER_COARSE as usize);
    }
}
