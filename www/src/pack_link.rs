//! `?pack=URL` in the page's address (before the `#`): open the pack whose
//! `manifest.json` is at that URL, on any static host, instead of the default pack. The
//! address carries it, so a shared link opens the same pack.

/// The longest pack URL a link may carry.
const MAX_PACK_URL: usize = 2048;

/// The pack folder's URL (ending in `/`) that the page's query string `search` asks for,
/// resolved against `page_base` (the page's URL up to its last `/`); `Ok(None)` when it
/// asks for none. An error says what is wrong with the link and what `pack=` accepts.
pub fn pack_from_query(search: &str, page_base: &str) -> Result<Option<String>, String> {
    let search = search.strip_prefix('?').unwrap_or(search);
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(search)
        .map_err(|_| "the address's query cannot be read".to_owned())?;
    let mut packs = pairs.into_iter().filter(|(key, _)| key == "pack");
    let Some((_, value)) = packs.next() else {
        return Ok(None);
    };
    if packs.next().is_some() {
        return Err("the link gives pack= more than once".to_owned());
    }
    resolve(value.trim(), page_base)
        .map(Some)
        .map_err(|problem| {
            format!(
                "The link's pack={value:?} cannot be opened: {problem}. pack= takes the address of \
             a pack folder (the one holding manifest.json), http(s) or relative to this page, \
             e.g. ?pack=https://example.org/packs/mine/"
            )
        })
}

fn resolve(value: &str, page_base: &str) -> Result<String, &'static str> {
    if value.is_empty() {
        return Err("it is empty");
    }
    if value.len() > MAX_PACK_URL {
        return Err("it is longer than 2048 characters");
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("it contains spaces or control characters");
    }
    if value.contains(['?', '#']) {
        return Err("a pack folder's address has no query or fragment");
    }
    let lower = value.to_ascii_lowercase();
    let absolute = if lower.starts_with("https://") || lower.starts_with("http://") {
        let host = value.split_once("://").map_or("", |(_, rest)| rest);
        if host.is_empty() || host.starts_with('/') {
            return Err("it names no host");
        }
        value.to_owned()
    } else if value.starts_with("//") {
        let scheme = page_base
            .split_once("//")
            .map_or("https:", |(scheme, _)| scheme);
        format!("{scheme}{value}")
    } else if value
        .split('/')
        .next()
        .is_some_and(|first| first.contains(':'))
    {
        return Err("only http and https addresses are fetched");
    } else if let Some(path) = value.strip_prefix('/') {
        // From the root of the page's site.
        let origin_end = page_base
            .split_once("://")
            .and_then(|(scheme, rest)| rest.find('/').map(|i| scheme.len() + 3 + i))
            .unwrap_or(page_base.len());
        format!("{}/{path}", &page_base[..origin_end])
    } else {
        format!("{page_base}{value}")
    };
    Ok(if absolute.ends_with('/') {
        absolute
    } else {
        absolute + "/"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "https://glassbox.example/app/";

    #[test]
    fn packs_are_found_by_address_relative_or_absolute() {
        let open = |search: &str| pack_from_query(search, PAGE).unwrap();
        assert_eq!(open(""), None);
        assert_eq!(open("?engine=cpu"), None);
        assert_eq!(
            open("?pack=https%3A%2F%2Fhost.example%2Fpacks%2Fsmol&engine=gpu").unwrap(),
            "https://host.example/packs/smol/"
        );
        assert_eq!(
            open("?pack=packs/copy").unwrap(),
            "https://glassbox.example/app/packs/copy/"
        );
        assert_eq!(
            open("?pack=/shared/p/").unwrap(),
            "https://glassbox.example/shared/p/"
        );
        assert_eq!(
            open("?pack=//cdn.example/p/").unwrap(),
            "https://cdn.example/p/"
        );
    }

    #[test]
    fn bad_pack_links_say_what_pack_takes() {
        for (search, problem) in [
            ("?pack=javascript:alert(1)", "only http and https"),
            ("?pack=data:text/html,hi", "only http and https"),
            ("?pack=", "it is empty"),
            ("?pack=https://", "names no host"),
            ("?pack=a%20b", "spaces"),
            ("?pack=p/%3Fx=1", "no query or fragment"),
            ("?pack=a&pack=b", "more than once"),
        ] {
            let error = pack_from_query(search, PAGE).unwrap_err();
            assert!(error.contains(problem), "{search}: {error}");
        }
        let long = format!("?pack={}", "a".repeat(3000));
        assert!(pack_from_query(&long, PAGE).unwrap_err().contains("2048"));
    }
}
