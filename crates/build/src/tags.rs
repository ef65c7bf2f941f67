//! Brown Corpus part-of-speech tags: reduced to their base tag and named in words.

/// The base tag of a Brown tag: upper case, without the title (`-tl`), headline (`-hl`)
/// and citation (`-nc`) marks, foreign words as `FW`, contractions by their first part
/// (`nn+bez` → `NN`).
#[must_use]
pub fn base_tag(tag: &str) -> String {
    let tag = tag.to_ascii_lowercase();
    if tag.starts_with("fw-") {
        return "FW".to_owned();
    }
    let mut base = tag.as_str();
    while let Some(stripped) = ["-tl", "-hl", "-nc"]
        .iter()
        .find_map(|suffix| base.strip_suffix(suffix))
    {
        base = stripped;
    }
    let base = match base.split_once('+') {
        Some((first, _)) if !first.is_empty() => first,
        _ => base,
    };
    base.to_ascii_uppercase()
}

/// A base tag in words, e.g. `NNS` → "plural noun"; the tag itself when unknown.
#[must_use]
pub fn tag_name(tag: &str) -> &str {
    NAMES
        .iter()
        .find(|(t, _)| *t == tag)
        .map_or(tag, |(_, name)| name)
}

const NAMES: &[(&str, &str)] = &[
    ("AT", "article"),
    ("IN", "preposition"),
    ("NN", "singular noun"),
    ("NNS", "plural noun"),
    ("NN$", "possessive noun"),
    ("NNS$", "plural possessive noun"),
    ("NP", "proper noun"),
    ("NPS", "plural proper noun"),
    ("NP$", "possessive proper noun"),
    ("NR", "adverbial noun"),
    ("NRS", "plural adverbial noun"),
    ("JJ", "adjective"),
    ("JJR", "comparative adjective"),
    ("JJS", "superlative adjective"),
    ("JJT", "superlative adjective"),
    ("RB", "adverb"),
    ("RBR", "comparative adverb"),
    ("RBT", "superlative adverb"),
    ("RP", "adverbial particle"),
    ("VB", "verb, base form"),
    ("VBD", "verb, past tense"),
    ("VBG", "verb, present participle"),
    ("VBN", "verb, past participle"),
    ("VBZ", "verb, 3rd person singular"),
    ("CC", "coordinating conjunction"),
    ("CS", "subordinating conjunction"),
    ("CD", "cardinal number"),
    ("OD", "ordinal number"),
    ("PPS", "subject pronoun (he, she, it)"),
    ("PPSS", "subject pronoun (I, we, they, you)"),
    ("PPO", "object pronoun"),
    ("PP$", "possessive determiner"),
    ("PP$$", "possessive pronoun"),
    ("PPL", "reflexive pronoun"),
    ("PPLS", "plural reflexive pronoun"),
    ("PN", "nominal pronoun"),
    ("DT", "singular determiner"),
    ("DTI", "determiner (any, some)"),
    ("DTS", "plural determiner"),
    ("DTX", "determiner (either, neither)"),
    ("ABN", "pre-quantifier"),
    ("ABX", "pre-quantifier (both)"),
    ("AP", "post-determiner"),
    ("MD", "modal auxiliary"),
    ("TO", "infinitive to"),
    ("BE", "be"),
    ("BED", "were"),
    ("BEDZ", "was"),
    ("BEG", "being"),
    ("BEM", "am"),
    ("BEN", "been"),
    ("BER", "are"),
    ("BEZ", "is"),
    ("DO", "do"),
    ("DOD", "did"),
    ("DOZ", "does"),
    ("HV", "have"),
    ("HVD", "had"),
    ("HVG", "having"),
    ("HVN", "had (participle)"),
    ("HVZ", "has"),
    ("WDT", "wh-determiner"),
    ("WPS", "wh-pronoun, subject"),
    ("WPO", "wh-pronoun, object"),
    ("WP$", "whose"),
    ("WQL", "wh-qualifier (how)"),
    ("WRB", "wh-adverb"),
    ("EX", "existential there"),
    ("QL", "qualifier"),
    ("QLP", "post-qualifier"),
    ("UH", "interjection"),
    ("FW", "foreign word"),
    ("*", "negation (not, n't)"),
    (".", "sentence end"),
    (",", "comma"),
    (":", "colon"),
    ("(", "opening bracket"),
    (")", "closing bracket"),
    ("--", "dash"),
    ("``", "opening quote"),
    ("''", "closing quote"),
    ("'", "apostrophe"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_reduce_to_their_base() {
        for (tag, base) in [
            ("nns", "NNS"),
            ("nn-tl", "NN"),
            ("np$-tl-hl", "NP$"),
            ("fw-nn", "FW"),
            ("nn+bez", "NN"),
            ("ppss+md", "PPSS"),
            ("*", "*"),
            (".", "."),
            ("vbd-hl", "VBD"),
        ] {
            assert_eq!(base_tag(tag), base, "{tag}");
        }
        assert_eq!(tag_name("NNS"), "plural noun");
        assert_eq!(tag_name("XYZ"), "XYZ");
    }
}
