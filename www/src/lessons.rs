//! The lessons the page ships (`www/lessons/*.json`, for the default pack), where a step
//! lives in a link (`lesson=NAME&step=N` beside the view's own fields, which views
//! ignore), and a lesson's plain text as paragraphs of styled runs: the page builds
//! elements from them, so no HTML from a lesson ever reaches it.

use glassbox_lab::Lesson;

/// The built-in lessons: their names in links, and their files.
pub const BUILT_IN: [(&str, &str); 5] = [
    ("predictions", include_str!("../lessons/predictions.json")),
    ("attention", include_str!("../lessons/attention.json")),
    ("evidence", include_str!("../lessons/evidence.json")),
    ("steering", include_str!("../lessons/steering.json")),
    ("circuit", include_str!("../lessons/circuit.json")),
];

/// What a link's `lesson=` starts with for a lesson the loaded pack carries
/// (`lesson=pack:NAME`).
pub const PACK_PREFIX: &str = "pack:";

/// The built-in lessons written for the pack `pack`.
#[must_use]
pub fn built_in_for(pack: &str) -> Vec<Lesson> {
    BUILT_IN
        .iter()
        .filter_map(|(name, _)| built_in(name)?.ok())
        .filter(|lesson| lesson.pack == pack)
        .collect()
}

/// The features whose views `lessons` show, `(block, feature)`, each once: what the page
/// fetches so those lessons work offline.
#[must_use]
pub fn features_shown<'a>(lessons: impl IntoIterator<Item = &'a Lesson>) -> Vec<(usize, usize)> {
    let mut features: Vec<(usize, usize)> = lessons
        .into_iter()
        .flat_map(|lesson| &lesson.steps)
        .filter_map(|step| crate::views::feature_of_view(&step.view))
        .collect();
    features.sort_unstable();
    features.dedup();
    features
}

/// The built-in lesson called `name`, read and checked.
#[must_use]
pub fn built_in(name: &str) -> Option<Result<Lesson, String>> {
    BUILT_IN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, json)| Lesson::parse(json.as_bytes()).map_err(|e| e.to_string()))
}

/// Whether a link's `lesson=` names a lesson file by its address (`https://…/x.json`, or
/// a path beside the page such as `lessons/mine.json`) rather than a built-in lesson.
#[must_use]
pub fn is_lesson_address(name: &str) -> bool {
    name.contains('/') || name.to_ascii_lowercase().ends_with(".json")
}

/// The lesson and step a link's query names (`lesson=NAME&step=N`, the step counted from
/// 1), if it names both.
#[must_use]
pub fn lesson_in_query(query: &str) -> Option<(String, usize)> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.trim_start_matches('?')).ok()?;
    let field = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let lesson = field("lesson")?.clone();
    let step = field("step")?.parse::<usize>().ok().filter(|&s| s >= 1)?;
    Some((lesson, step))
}

/// The page link (after `#`) of step `step` (from 1) of lesson `name`: the step's view
/// with the lesson's fields added.
#[must_use]
pub fn step_link(name: &str, lesson: &Lesson, step: usize) -> Option<String> {
    let view = &lesson.steps.get(step.checked_sub(1)?)?.view;
    let separator = if view.contains('?') { '&' } else { '?' };
    let fields =
        serde_urlencoded::to_string([("lesson", name), ("step", &step.to_string())]).ok()?;
    Some(format!("{view}{separator}{fields}"))
}

/// The view a page link shows, as a lesson step's `view`: `path` and its `query` without
/// the lesson's own fields (`lesson`, `step`), which a step link adds back.
#[must_use]
pub fn view_of(path: &str, query: &str) -> String {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.trim_start_matches('?')).unwrap_or_default();
    let kept: Vec<(String, String)> = pairs
        .into_iter()
        .filter(|(k, _)| k != "lesson" && k != "step")
        .collect();
    match serde_urlencoded::to_string(&kept) {
        Ok(fields) if !fields.is_empty() => format!("{path}?{fields}"),
        _ => path.to_owned(),
    }
}

/// A run of a paragraph's text and how it is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Run {
    /// Plain.
    Plain(String),
    /// `**bold**`.
    Bold(String),
    /// `*emphasis*`.
    Emphasis(String),
    /// `` `code` ``.
    Code(String),
}

/// `text` as paragraphs (split at blank lines) of runs. Markers without a partner are
/// kept as plain text; nothing is ever read as HTML.
#[must_use]
pub fn paragraphs(text: &str) -> Vec<Vec<Run>> {
    text.split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(runs)
        .collect()
}

fn runs(paragraph: &str) -> Vec<Run> {
    let mut runs = Vec::new();
    let mut plain = String::new();
    let mut rest = paragraph;
    while !rest.is_empty() {
        let marked = [
            ("**", Run::Bold as fn(String) -> Run),
            ("`", Run::Code),
            ("*", Run::Emphasis),
        ]
        .into_iter()
        .find_map(|(marker, make)| {
            let inner = rest.strip_prefix(marker)?;
            let end = inner.find(marker).filter(|&e| e > 0)?;
            Some((make(inner[..end].to_owned()), marker.len() * 2 + end))
        });
        if let Some((run, length)) = marked {
            if !plain.is_empty() {
                runs.push(Run::Plain(std::mem::take(&mut plain)));
            }
            runs.push(run);
            rest = &rest[length..];
        } else {
            let mut chars = rest.chars();
            if let Some(c) = chars.next() {
                plain.push(if c == '\n' { ' ' } else { c });
            }
            rest = chars.as_str();
        }
    }
    if !plain.is_empty() {
        runs.push(Run::Plain(plain));
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_lesson_reads_and_links_to_each_step() {
        for (name, _) in BUILT_IN {
            let lesson = built_in(name).unwrap().unwrap();
            for step in 1..=lesson.steps.len() {
                let link = step_link(name, &lesson, step).unwrap();
                let query = link.split_once('?').unwrap().1;
                assert_eq!(lesson_in_query(query), Some((name.to_owned(), step)));
            }
            assert!(step_link(name, &lesson, 0).is_none());
            assert!(step_link(name, &lesson, lesson.steps.len() + 1).is_none());
        }
        assert!(built_in("nonexistent").is_none());
        // Every lesson file is built in.
        let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/lessons");
        let mut files: Vec<String> = std::fs::read_dir(folder)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|f| f.strip_suffix(".json").map(str::to_owned))
            .collect();
        files.sort();
        let mut names: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        assert_eq!(files, names);
    }

    #[test]
    fn a_link_names_a_step_only_with_both_fields_and_a_step_from_one() {
        assert_eq!(
            lesson_in_query("?text=a&lesson=predictions&step=2"),
            Some(("predictions".to_owned(), 2))
        );
        assert_eq!(lesson_in_query("text=a&lesson=predictions"), None);
        assert_eq!(lesson_in_query("lesson=predictions&step=0"), None);
        assert_eq!(lesson_in_query("lesson=predictions&step=x"), None);
        assert_eq!(lesson_in_query("%%%"), None);
        assert!(is_lesson_address("https://example.org/a.json"));
        assert!(is_lesson_address("mine.json"));
        assert!(!is_lesson_address("predictions"));
    }

    #[test]
    fn text_becomes_runs_and_never_html() {
        let text = "A **bold** and *em* and `code`.\n\n<script>alert(1)</script> *unclosed";
        let parsed = paragraphs(text);
        assert_eq!(
            parsed[0],
            [
                Run::Plain("A ".to_owned()),
                Run::Bold("bold".to_owned()),
                Run::Plain(" and ".to_owned()),
                Run::Emphasis("em".to_owned()),
                Run::Plain(" and ".to_owned()),
                Run::Code("code".to_owned()),
                Run::Plain(".".to_owned()),
            ]
        );
        // Markup is text like any other; a lone marker stays as it is.
        assert_eq!(
            parsed[1],
            [Run::Plain("<script>alert(1)</script> *unclosed".to_owned())]
        );
        assert!(paragraphs("\n\n  \n\n").is_empty());
    }

    #[test]
    fn a_view_keeps_its_fields_and_drops_the_lessons() {
        assert_eq!(
            view_of("/lens", "?text=The%20jury&lesson=predictions&step=3"),
            "/lens?text=The+jury"
        );
        assert_eq!(view_of("/prompt", "lesson=z%3Aabc&step=1"), "/prompt");
        assert_eq!(view_of("/search", ""), "/search");
    }

    #[test]
    fn the_features_the_default_packs_lessons_show_are_listed_once() {
        let features = features_shown(&built_in_for("brown"));
        assert!(features.contains(&(0, 460)), "{features:?}");
        assert!(features.contains(&(2, 1286)), "{features:?}");
        assert!(features.windows(2).all(|w| w[0] < w[1]));
        assert!(built_in_for("no-such-pack").is_empty());
    }
}
