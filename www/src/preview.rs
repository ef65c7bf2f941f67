//! Lesson previews: what the first step of a built-in lesson shows, answered in advance
//! from the default pack and shipped with the page (`www/lessons/previews/NAME.bin`), so
//! a student who opens a lesson sees its first view at once, while the model loads; the
//! live answers replace it as they come. A preview holds the pack's layout (what its
//! views are drawn in) and the answers to the requests the step's view sends first
//! ([`crate::views::first_requests`]), each under its request. The files are written by
//! this module's test (`GLASSBOX_BLESS=1 cargo test -p glassbox-web --lib preview`),
//! which fails while a committed file is no longer what the pack answers.

use std::rc::Rc;

use serde::{Deserialize, Serialize};

use crate::engine::protocol::{PackInfo, Request, Response};

/// The built-in lessons' previews: the lesson's name (as in [`crate::lessons::BUILT_IN`])
/// and its file, in the worker's message codec (bincode), which the page reads already:
/// as JSON, its reader would add 200 kB to the page's code.
pub const BUILT_IN: [(&str, &[u8]); 5] = [
    (
        "predictions",
        include_bytes!("../lessons/previews/predictions.bin"),
    ),
    (
        "attention",
        include_bytes!("../lessons/previews/attention.bin"),
    ),
    (
        "evidence",
        include_bytes!("../lessons/previews/evidence.bin"),
    ),
    (
        "steering",
        include_bytes!("../lessons/previews/steering.bin"),
    ),
    ("circuit", include_bytes!("../lessons/previews/circuit.bin")),
];

/// A preview as its file holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PreviewFile {
    /// The pack the answers came from (its manifest's name).
    pack: String,
    /// The step's view (its link without `#`).
    view: String,
    /// The pack as the engine describes it once loaded.
    info: PackInfo,
    /// Each request the view sends first, with the engine's answer.
    answers: Vec<(Request, Response)>,
}

/// A lesson's first view answered in advance.
#[derive(Debug, PartialEq)]
pub struct Preview {
    /// The pack the answers came from (its manifest's name).
    pub pack: String,
    /// The step's view (its link without `#`).
    pub view: String,
    /// The pack as the engine describes it once loaded: what the views are drawn in
    /// while it loads.
    pub info: Rc<PackInfo>,
    answers: Vec<(Request, Response)>,
}

impl Preview {
    /// Reads a preview file.
    ///
    /// # Errors
    /// When it is not one (in this page's version of the protocol), with the reason.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let file: PreviewFile =
            bincode::deserialize(bytes).map_err(|e| format!("not a lesson preview: {e}"))?;
        Ok(Self {
            pack: file.pack,
            view: file.view,
            info: Rc::new(file.info),
            answers: file.answers,
        })
    }

    /// The answer to `request`, if the preview holds one.
    #[must_use]
    pub fn answer(&self, request: &Request) -> Option<&Response> {
        self.answers
            .iter()
            .find(|(asked, _)| asked == request)
            .map(|(_, answer)| answer)
    }
}

/// The built-in previews read so far, by lesson name (`None`: it did not read).
type Read = Vec<(&'static str, Option<Rc<Preview>>)>;

thread_local! {
    static READ: std::cell::RefCell<Read> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The preview of the built-in lesson `name`, read once; `None` when it has none (or its
/// file does not read, which this module's test rules out).
#[must_use]
pub fn built_in(name: &str) -> Option<Rc<Preview>> {
    let (key, bytes) = BUILT_IN.iter().find(|(n, _)| *n == name)?;
    READ.with_borrow_mut(|read| {
        if let Some((_, preview)) = read.iter().find(|(n, _)| n == key) {
            return preview.clone();
        }
        let preview = Preview::parse(bytes).ok().map(Rc::new);
        read.push((key, preview.clone()));
        preview
    })
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    #![allow(clippy::unwrap_used, reason = "in a test, a panic is a failure report")]

    use std::path::{Path, PathBuf};

    use glassbox_lab::{Lab, Lesson};
    use glassbox_pack::dir;
    use pollster::block_on;
    use serde_json::Value;

    use super::*;
    use crate::engine::worker::{compute, feature_view, ready_info};
    use crate::views::{examples_shown, first_requests};

    fn pack_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packs/brown")
    }

    fn preview_path(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("lessons/previews/{name}.bin"))
    }

    /// The engine's answer to `request`, natively, as the worker gives it.
    fn answer(lab: &Lab, request: &Request) -> Response {
        match request {
            Request::Feature(feature) => {
                let root = pack_root();
                let pack = dir::open(&root).unwrap();
                let shard = dir::load_shard(&root, &pack, feature.layer, feature.feature).unwrap();
                let record = shard
                    .features
                    .into_iter()
                    .find(|r| r.index == feature.feature)
                    .unwrap();
                Response::Feature(Box::new(feature_view(lab, feature.layer, record)))
            }
            other => block_on(compute(lab, other.clone(), &glassbox_lab::Alone)).unwrap(),
        }
    }

    /// The preview of `lesson`'s first step, computed now.
    fn compute_preview(lab: &Lab, lesson: &Lesson) -> PreviewFile {
        let view = lesson.steps[0].view.clone();
        let mut requests = first_requests(&view)
            .unwrap_or_else(|| panic!("a preview cannot answer the view {view}"));
        let mut answers = Vec::new();
        while let Some(request) = (!requests.is_empty()).then(|| requests.remove(0)) {
            let response = answer(lab, &request);
            if let Response::Feature(view) = &response {
                requests.extend(examples_shown(view).into_iter().map(Request::LiveExample));
            }
            answers.push((request, response));
        }
        PreviewFile {
            pack: lab.name.clone(),
            view,
            info: ready_info(lab, lab.name.clone(), pack_description()),
            answers,
        }
    }

    fn pack_description() -> String {
        dir::open(&pack_root())
            .unwrap()
            .manifest()
            .description
            .clone()
    }

    /// Whether `a` and `b` are the same JSON, numbers within `1e-4` of each other
    /// (relatively, past 1): what the committed file holds against what this machine's
    /// CPU computes (its vector units may round differently).
    fn alike(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                (x - y).abs() <= 1e-4 * x.abs().max(y.abs()).max(1.0)
            }
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(x, y)| alike(x, y))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| alike(v, w)))
            }
            _ => a == b,
        }
    }

    /// Every built-in lesson's preview is what the default pack answers today: a rebuilt
    /// pack, or a view that now asks something else, fails here until the files are
    /// written again (`GLASSBOX_BLESS=1`).
    #[test]
    fn every_built_in_preview_is_what_the_default_pack_answers() {
        let lab = Lab::from_pack(dir::load(&pack_root()).unwrap()).unwrap();
        let bless = std::env::var_os("GLASSBOX_BLESS").is_some();
        for (name, lesson) in crate::lessons::BUILT_IN {
            let lesson = Lesson::parse(lesson.as_bytes()).unwrap();
            let fresh = compute_preview(&lab, &lesson);
            let path = preview_path(name);
            if bless {
                std::fs::write(&path, bincode::serialize(&fresh).unwrap()).unwrap();
                continue;
            }
            let committed: PreviewFile =
                bincode::deserialize(&std::fs::read(&path).unwrap()).unwrap();
            assert!(
                alike(
                    &serde_json::to_value(&committed).unwrap(),
                    &serde_json::to_value(&fresh).unwrap()
                ),
                "{} is not what the default pack answers to {} now; write it again with \
                 GLASSBOX_BLESS=1 cargo test -p glassbox-web --lib preview",
                path.display(),
                fresh.view
            );
        }
    }

    /// The files the page ships read as previews and answer the lesson's first view.
    #[test]
    fn every_built_in_preview_reads_and_answers_its_first_view() {
        for (name, lesson) in crate::lessons::BUILT_IN {
            let lesson = Lesson::parse(lesson.as_bytes()).unwrap();
            let preview = built_in(name).unwrap_or_else(|| panic!("{name}'s preview"));
            assert_eq!(preview.view, lesson.steps[0].view, "{name}");
            assert_eq!(preview.pack, lesson.pack, "{name}");
            for request in first_requests(&preview.view).unwrap() {
                let answer = preview.answer(&request);
                assert!(
                    answer.is_some_and(|a| !matches!(a, Response::Error(_))),
                    "{name}: no answer to {request:?}"
                );
            }
        }
    }

    #[test]
    fn a_preview_answers_only_what_it_holds() {
        let preview = built_in("predictions").unwrap();
        let asked = first_requests("/prompt?text=Something%20else").unwrap();
        assert!(preview.answer(&asked[0]).is_none());
        assert!(built_in("no such lesson").is_none());
        let broken = Preview::parse(b"{\"pack\": \"brown\"}").unwrap_err();
        assert!(broken.starts_with("not a lesson preview"), "{broken}");
    }
}
