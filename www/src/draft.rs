//! The lesson a teacher is writing in the page, kept in this browser's storage between
//! visits: the builder page edits it, the bar above every view adds that view to it.

use glassbox_lab::Lesson;

/// Where the draft is kept.
const DRAFT_KEY: &str = "glassbox-lesson-draft";

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// The lesson being written, if one is.
pub(crate) fn load() -> Option<Lesson> {
    let json = storage()?.get_item(DRAFT_KEY).ok()??;
    serde_json::from_str(&json).ok()
}

/// Keeps `lesson` as the draft.
pub(crate) fn save(lesson: &Lesson) {
    if let (Some(storage), Ok(json)) = (storage(), serde_json::to_string(lesson)) {
        let _ = storage.set_item(DRAFT_KEY, &json);
    }
}

/// Forgets the draft.
pub(crate) fn clear() {
    if let Some(storage) = storage() {
        let _ = storage.remove_item(DRAFT_KEY);
    }
}

/// An empty lesson for the pack `pack`.
pub(crate) fn empty(pack: &str) -> Lesson {
    Lesson {
        title: String::new(),
        summary: String::new(),
        pack: pack.to_owned(),
        steps: Vec::new(),
    }
}
