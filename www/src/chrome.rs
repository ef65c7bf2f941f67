//! What of the page's own controls a link shows: a teacher's link may hide controls by
//! name (`?hide=engine,prompt` before the `#`, like `?engine=`), so a class sees only what
//! the lesson needs, and `?embed=1` keeps the chrome to a minimum for an iframe in a
//! course page; `?present=1` is the presenter layout for a projector (large type, the
//! lesson step first, the arrow keys moving between steps). The page hides controls with a
//! class per name on its root (`hide-engine`, …).

/// The controls a link may hide, each with what it hides.
pub const HIDEABLE: [(&str, &str); 6] = [
    ("engine", "the engine switch"),
    ("picker", "the pack picker"),
    ("open", "“Open a model…” and “Open a folder…”"),
    ("prompt", "the free prompt and text boxes of the views"),
    ("thresholds", "the circuit view's pruning sliders"),
    ("nav", "the header's links to the other views"),
];

/// The chrome a link asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chrome {
    /// The controls hidden, by name.
    pub hidden: Vec<&'static str>,
    /// Whether the page is embedded (`embed=1`).
    pub embed: bool,
    /// Whether the page is shown to a class (`present=1`).
    pub present: bool,
    /// Names given to `hide` that name no control.
    pub unknown: Vec<String>,
}

impl Chrome {
    /// The chrome `search` (the address's query, before the `#`) asks for.
    #[must_use]
    pub fn from_search(search: &str) -> Self {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(search.trim_start_matches('?')).unwrap_or_default();
        let mut chrome = Self::default();
        for (field, value) in pairs.iter().take(crate::query::MAX_LINK_FIELDS) {
            match field.as_str() {
                "embed" => chrome.embed = value == "1",
                "present" => chrome.present = value == "1",
                "hide" => {
                    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                        match HIDEABLE.iter().find(|(known, _)| *known == name) {
                            Some((known, _)) => {
                                if !chrome.hidden.contains(known) {
                                    chrome.hidden.push(known);
                                }
                            }
                            None => {
                                if chrome.unknown.len() < 8 {
                                    chrome.unknown.push(name.chars().take(40).collect());
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        chrome
    }

    /// The classes of the page's root: `embed`, and `hide-NAME` for each control hidden.
    #[must_use]
    pub fn classes(&self) -> String {
        let mut classes: Vec<String> = self.hidden.iter().map(|n| format!("hide-{n}")).collect();
        if self.embed {
            classes.push("embed".to_owned());
        }
        if self.present {
            classes.push("present".to_owned());
        }
        classes.join(" ")
    }

    /// Why some `hide` names were ignored, in a sentence; `None` when all were known.
    #[must_use]
    pub fn unknown_note(&self) -> Option<String> {
        (!self.unknown.is_empty()).then(|| {
            format!(
                "The link's hide={} names no control; it hides {}.",
                self.unknown.join(","),
                HIDEABLE
                    .iter()
                    .map(|(name, what)| format!("{name} ({what})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    }
}

/// `href` with `embed` set to `embed` in its query (before the `#`), every other field and
/// the fragment kept: the address of the same view embedded, or in full.
#[must_use]
pub fn with_embed(href: &str, embed: bool) -> String {
    let (before_hash, hash) = href
        .split_once('#')
        .map_or((href, None), |(b, h)| (b, Some(h)));
    let (base, search) = before_hash
        .split_once('?')
        .map_or((before_hash, ""), |(b, s)| (b, s));
    let mut fields: Vec<&str> = search
        .split('&')
        .filter(|f| !f.is_empty() && !f.starts_with("embed="))
        .collect();
    if embed {
        fields.push("embed=1");
    }
    let mut out = base.to_owned();
    if !fields.is_empty() {
        out.push('?');
        out.push_str(&fields.join("&"));
    }
    if let Some(hash) = hash {
        out.push('#');
        out.push_str(hash);
    }
    out
}

/// The HTML a course page pastes to embed the view at `href`.
#[must_use]
pub fn embed_snippet(href: &str) -> String {
    let src = with_embed(href, true)
        .replace('&', "&amp;")
        .replace('"', "&quot;");
    format!(
        "<iframe src=\"{src}\" width=\"100%\" height=\"640\" style=\"border:0\" \
         title=\"Glassbox\" loading=\"lazy\"></iframe>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_hides_controls_by_name_and_names_the_unknown() {
        let chrome =
            Chrome::from_search("?engine=cpu&hide=engine,prompt,%3Cscript%3E,engine&embed=1");
        assert_eq!(chrome.hidden, ["engine", "prompt"]);
        assert!(chrome.embed);
        assert_eq!(chrome.classes(), "hide-engine hide-prompt embed");
        let note = chrome.unknown_note().unwrap();
        assert!(
            note.contains("hide=<script>") && note.contains("thresholds"),
            "{note}"
        );
        assert_eq!(Chrome::from_search(""), Chrome::default());
        assert_eq!(Chrome::from_search("?embed=yes").classes(), "");
        assert!(Chrome::from_search("%%%").hidden.is_empty());
        assert_eq!(
            Chrome::from_search("?present=1&hide=nav").classes(),
            "hide-nav present"
        );
    }

    #[test]
    fn embedding_sets_one_field_and_keeps_the_rest() {
        let href = "https://a.example/g/?pack=p%2F&embed=1#/lens?text=a&b=1";
        assert_eq!(
            with_embed(href, false),
            "https://a.example/g/?pack=p%2F#/lens?text=a&b=1"
        );
        assert_eq!(
            with_embed("https://a.example/#/prompt?text=x", true),
            "https://a.example/?embed=1#/prompt?text=x"
        );
        assert_eq!(
            with_embed("https://a.example/", true),
            "https://a.example/?embed=1"
        );
        let snippet = embed_snippet("https://a.example/?x=\"#/lens?text=a&b=1");
        assert!(
            snippet.starts_with(
                "<iframe src=\"https://a.example/?x=&quot;&amp;embed=1#/lens?text=a&amp;b=1\""
            ),
            "{snippet}"
        );
    }
}
