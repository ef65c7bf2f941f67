//! `cargo xtask serve`: build the page in release mode and serve it on loopback.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};

use std::sync::Arc;

use anyhow::{Context, Result, bail};

use crate::packs::{self, ServedPack};
use crate::page;
use crate::tools::ensure_build_tools;

/// Where the page is served.
const ADDRESS: &str = "127.0.0.1:8080";

/// Installs the build tools if missing, builds the page and serves `target/dist` until
/// interrupted; `--pack NAME` (repeatable) also serves a preset's pack at `packs/NAME/`,
/// building it first when it is missing, and lists it in `packs/index.json`.
pub(crate) fn serve(args: &[String]) -> Result<()> {
    let mut extra = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--pack", Some(name)) => extra.push(name.clone()),
            _ => bail!("serve takes `--pack NAME` (e.g. --pack smollm2-135m), not `{arg}`"),
        }
    }
    ensure_build_tools()?;
    page::build()?;
    let root = page::dist_dir();
    let mut packs = packs::packs_in(&root.join("packs"))?;
    let mut extra_packs = Vec::new();
    for name in &extra {
        let pack = packs::ensure_preset(name)?;
        packs.retain(|p| p.folder != pack.folder);
        packs.push(pack.clone());
        extra_packs.push(pack);
    }
    let site = Arc::new(Site {
        root,
        index: packs::index_json(&packs)?.into_bytes(),
        extra: extra_packs,
    });
    let listener = TcpListener::bind(ADDRESS).with_context(|| format!("listening on {ADDRESS}"))?;
    println!("\nGlassbox is at http://{ADDRESS}/ (stop with Ctrl-C)");
    for pack in &site.extra {
        println!(
            "  the {} pack: http://{ADDRESS}/?pack=packs/{}/",
            pack.folder, pack.folder
        );
    }
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let site = Arc::clone(&site);
        std::thread::spawn(move || {
            // A client that goes away mid-answer is no reason to stop serving.
            let _ = answer(stream, &site);
        });
    }
    Ok(())
}

/// What is served: the page's build, the packs index, the packs served from elsewhere.
struct Site {
    root: PathBuf,
    index: Vec<u8>,
    extra: Vec<ServedPack>,
}

impl Site {
    /// The file a request's path names: a served pack's file under its own folder,
    /// else one under the build.
    fn file_for(&self, target: &str) -> Option<PathBuf> {
        for pack in &self.extra {
            let prefix = format!("/packs/{}/", pack.folder);
            if let Some(rest) = target.strip_prefix(&prefix) {
                return file_for(&pack.root, &format!("/{rest}"));
            }
        }
        file_for(&self.root, target)
    }
}

/// Answers one request on `stream` from `site`.
fn answer(mut stream: TcpStream, site: &Site) -> std::io::Result<()> {
    let mut request_line = String::new();
    let mut reader = BufReader::new(stream.try_clone()?);
    reader.read_line(&mut request_line)?;
    // The headers are not needed; read them off.
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
    if method != "GET" && method != "HEAD" {
        return respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            b"GET only\n",
            true,
        );
    }
    if target.split(['?', '#']).next() == Some("/packs/index.json") {
        return respond(
            &mut stream,
            "200 OK",
            "application/json",
            &site.index,
            method == "GET",
        );
    }
    let Some(file) = site.file_for(target) else {
        return respond(
            &mut stream,
            "404 Not Found",
            "text/plain",
            b"not found\n",
            true,
        );
    };
    match std::fs::read(&file) {
        Ok(body) => respond(
            &mut stream,
            "200 OK",
            content_type(&file),
            &body,
            method == "GET",
        ),
        Err(_) => respond(
            &mut stream,
            "404 Not Found",
            "text/plain",
            b"not found\n",
            true,
        ),
    }
}

/// The file under `root` that `target` (a request's path) names: `index.html` for a
/// folder; nothing outside `root`.
fn file_for(root: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next().unwrap_or("/");
    let path = percent_decode(path)?;
    let relative = Path::new(path.trim_start_matches('/'));
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return None;
    }
    let file = root.join(relative);
    Some(if path.ends_with('/') {
        file.join("index.html")
    } else {
        file
    })
}

/// `%XX` escapes decoded; `None` if they do not make UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

/// The headers that make the page cross-origin isolated, so that its engine worker can
/// share memory with a column helper (a page's second core): every file is this origin's,
/// and packs from elsewhere are fetched with CORS.
const ISOLATED: &str =
    "cross-origin-opener-policy: same-origin\r\ncross-origin-embedder-policy: require-corp\r\n";

fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
    with_body: bool,
) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\ncache-control: no-cache\r\n{ISOLATED}connection: close\r\n\r\n",
        body.len()
    )?;
    if with_body {
        stream.write_all(body)?;
    }
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every answer makes the page cross-origin isolated, so that its engine worker may
    /// share memory with a column helper.
    #[test]
    fn answers_carry_the_cross_origin_isolation_headers() {
        use std::io::Read as _;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        respond(&mut server, "200 OK", "text/html", b"<p>hi</p>", true).unwrap();
        drop(server);
        let mut answer = String::new();
        client.read_to_string(&mut answer).unwrap();
        assert!(
            answer.contains("cross-origin-opener-policy: same-origin\r\n"),
            "{answer}"
        );
        assert!(
            answer.contains("cross-origin-embedder-policy: require-corp\r\n"),
            "{answer}"
        );
        assert!(answer.ends_with("\r\n\r\n<p>hi</p>"), "{answer}");
    }

    #[test]
    fn requests_map_to_files_inside_the_build_only() {
        let root = Path::new("/srv/dist");
        assert_eq!(file_for(root, "/"), Some(root.join("index.html")));
        assert_eq!(
            file_for(root, "/packs/brown/manifest.json?x=1"),
            Some(root.join("packs/brown/manifest.json"))
        );
        assert_eq!(file_for(root, "/a%20b.js"), Some(root.join("a b.js")));
        for escape in ["/../etc/passwd", "/packs/%2e%2e/%2e%2e/x", "/%zz"] {
            assert_eq!(file_for(root, escape), None, "{escape}");
        }
        let site = Site {
            root: root.to_owned(),
            index: Vec::new(),
            extra: vec![ServedPack {
                folder: "smollm2-135m".to_owned(),
                root: PathBuf::from("/work/target/packs/smollm2-135m"),
            }],
        };
        assert_eq!(
            site.file_for("/packs/smollm2-135m/manifest.json"),
            Some(PathBuf::from(
                "/work/target/packs/smollm2-135m/manifest.json"
            ))
        );
        assert_eq!(
            site.file_for("/packs/brown/manifest.json"),
            Some(root.join("packs/brown/manifest.json"))
        );
        assert_eq!(site.file_for("/packs/smollm2-135m/../../secret"), None);
    }
}
