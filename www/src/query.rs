//! A view's state from its link, field by field: a field that cannot be read keeps its
//! default and is named, with what it accepts, while every other field is kept. (Reading
//! the whole query at once would throw all of it away for one bad field.)

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The query a view's link carries.
pub trait LinkQuery: Serialize + DeserializeOwned + Default {
    /// What `field` accepts, in words ("a whole number from 1 to 64").
    fn accepts(field: &str) -> &'static str;
}

/// A field of a link that was not used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's name.
    pub field: String,
    /// What the link gave it.
    pub value: String,
    /// Why it was not used.
    pub problem: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "The link's {}={:?} was ignored: {}.",
            self.field, self.value, self.problem
        )
    }
}

/// The most fields a link is read for (every view has fewer).
pub const MAX_LINK_FIELDS: usize = 32;

/// The longest query a link is read for, in bytes (a prompt is at most 64 KiB).
pub const MAX_LINK_BYTES: usize = 256 * 1024;

/// Reads `query` (with or without its leading `?`) into `Q` field by field; a query too
/// long, or with too many fields, is read up to the limit and the rest named.
#[must_use]
pub fn parse_link<Q: LinkQuery>(query: &str) -> (Q, Vec<FieldError>) {
    let query = query.strip_prefix('?').unwrap_or(query);
    let mut errors = Vec::new();
    if query.len() > MAX_LINK_BYTES {
        errors.push(FieldError {
            field: "link".to_owned(),
            value: format!("{} bytes", query.len()),
            problem: format!("a link of at most {MAX_LINK_BYTES} bytes is read"),
        });
        return (Q::default(), errors);
    }
    let mut pairs: Vec<(String, String)> = match serde_urlencoded::from_str(query) {
        Ok(pairs) => pairs,
        Err(error) => {
            errors.push(FieldError {
                field: "link".to_owned(),
                value: query.chars().take(80).collect(),
                problem: format!("its query cannot be read ({error})"),
            });
            Vec::new()
        }
    };
    if pairs.len() > MAX_LINK_FIELDS {
        errors.push(FieldError {
            field: "link".to_owned(),
            value: format!("{} fields", pairs.len()),
            problem: format!("the first {MAX_LINK_FIELDS} fields are read"),
        });
        pairs.truncate(MAX_LINK_FIELDS);
    }
    let mut kept: Vec<(String, String)> = Vec::new();
    for (field, value) in pairs {
        if kept.iter().any(|(k, _)| *k == field) {
            errors.push(FieldError {
                problem: format!("{field} is given more than once; the first is used"),
                field,
                value,
            });
            continue;
        }
        kept.push((field, value));
        if read::<Q>(&kept).is_none() {
            let Some((field, value)) = kept.pop() else {
                continue;
            };
            errors.push(FieldError {
                problem: format!("{field} takes {}", Q::accepts(&field)),
                field,
                value,
            });
        }
    }
    (read(&kept).unwrap_or_default(), errors)
}

/// `pairs` as a `Q`, if they make one.
fn read<Q: LinkQuery>(pairs: &[(String, String)]) -> Option<Q> {
    let encoded = serde_urlencoded::to_string(pairs).ok()?;
    serde_urlencoded::from_str(&encoded).ok()
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    struct Example {
        #[serde(default)]
        text: String,
        #[serde(default)]
        n: usize,
        #[serde(default)]
        t: f32,
    }

    impl LinkQuery for Example {
        fn accepts(field: &str) -> &'static str {
            match field {
                "n" => "a whole number",
                "t" => "a number",
                _ => "any text",
            }
        }
    }

    #[test]
    fn links_too_long_or_with_too_many_fields_are_read_up_to_the_limit() {
        let many = (0..1000)
            .map(|i| format!("x{i}=1"))
            .collect::<Vec<_>>()
            .join("&");
        let (query, errors) = parse_link::<Example>(&format!("?n=3&{many}"));
        assert_eq!(query.n, 3);
        assert!(
            errors
                .iter()
                .any(|e| e.to_string().contains("the first 32 fields are read"))
        );
        let long = format!("?text={}", "a".repeat(MAX_LINK_BYTES));
        let (query, errors) = parse_link::<Example>(&long);
        assert_eq!(query, Example::default());
        assert!(
            errors[0].to_string().contains("at most 262144 bytes"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn a_bad_field_is_named_and_the_others_are_kept() {
        let (query, errors) = parse_link::<Example>("?text=The%20jury&n=-1&t=0.5");
        assert_eq!(
            query,
            Example {
                text: "The jury".to_owned(),
                n: 0,
                t: 0.5
            }
        );
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "n");
        assert_eq!(errors[0].value, "-1");
        assert!(
            errors[0].to_string().contains("n takes a whole number"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn a_repeated_field_keeps_the_first_and_says_so() {
        let (query, errors) = parse_link::<Example>("n=3&n=4&t=abc");
        assert_eq!(query.n, 3);
        let problems: Vec<&str> = errors.iter().map(|e| e.problem.as_str()).collect();
        assert_eq!(
            problems,
            [
                "n is given more than once; the first is used",
                "t takes a number"
            ]
        );
    }

    #[test]
    fn a_good_link_reads_whole_and_unknown_fields_are_left_alone() {
        let (query, errors) = parse_link::<Example>("text=a%2Cb&n=7&t=1e-3&later=1");
        assert_eq!((query.text.as_str(), query.n), ("a,b", 7));
        assert!(errors.is_empty(), "{errors:?}");
        let (empty, errors) = parse_link::<Example>("");
        assert_eq!(empty, Example::default());
        assert!(errors.is_empty());
    }
}
