//! The last model a person opened from their disk (with its dictionaries), kept in the
//! browser's Cache Storage so the next visit can open it again without picking the files:
//! each file under `opened/<i>/<path>`, and `opened/index.json` naming them. Nothing leaves
//! the machine; opening another model replaces what was kept, and the page can forget it.

use js_sys::Promise;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, Response};

use super::protocol::PickedFile;

/// The cache that holds the kept model, apart from the packs'.
pub const KEPT_CACHE: &str = "glassbox-opened-v1";

/// The key of the list of kept files.
pub const KEPT_INDEX: &str = "opened/index.json";

/// What a [`PickedFile`]'s URL starts with when the file is read from the kept copy.
pub const KEPT_URL: &str = "kept:";

/// What was kept: the model's name and its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptModel {
    /// The name the page showed for it.
    pub name: String,
    /// The files, as picked.
    pub files: Vec<KeptFile>,
    /// Their bytes in all.
    pub bytes: u64,
}

/// One kept file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptFile {
    /// Its name.
    pub name: String,
    /// Its path within the folder picked.
    pub path: String,
    /// Its key in [`KEPT_CACHE`].
    pub key: String,
}

impl KeptModel {
    /// The files to ask the worker to open: each read from its kept copy.
    #[must_use]
    pub fn picked(&self) -> Vec<PickedFile> {
        self.files
            .iter()
            .map(|f| PickedFile {
                name: f.name.clone(),
                path: f.path.clone(),
                url: format!("{KEPT_URL}{}", f.key),
            })
            .collect()
    }
}

/// The kept-model cache of this window or worker (`caches` is on both).
pub async fn open_kept_cache() -> Option<Cache> {
    let global = js_sys::global();
    let caches = js_sys::Reflect::get(&global, &"caches".into()).ok()?;
    let caches: web_sys::CacheStorage = caches.dyn_into().ok()?;
    JsFuture::from(caches.open(KEPT_CACHE))
        .await
        .ok()?
        .dyn_into()
        .ok()
}

/// What is kept, if anything.
pub async fn kept() -> Option<KeptModel> {
    let cache = open_kept_cache().await?;
    let found = JsFuture::from(cache.match_with_str(KEPT_INDEX))
        .await
        .ok()?;
    let response: Response = found.dyn_into().ok()?;
    let text = JsFuture::from(response.text().ok()?)
        .await
        .ok()?
        .as_string()?;
    serde_json::from_str(&text).ok()
}

/// Forgets what is kept.
pub async fn forget() {
    let global = js_sys::global();
    if let Ok(caches) = js_sys::Reflect::get(&global, &"caches".into())
        && let Ok(caches) = caches.dyn_into::<web_sys::CacheStorage>()
    {
        let _ = JsFuture::from(caches.delete(KEPT_CACHE)).await;
    }
}

/// Keeps `files` (read from their `blob:` URLs, streamed into the cache without passing
/// through wasm memory) under `name`, replacing what was kept; the reason when the
/// browser refuses (no Cache Storage, its quota).
pub(super) async fn keep(name: &str, files: &[PickedFile]) -> Result<(), String> {
    forget().await;
    let cache = open_kept_cache()
        .await
        .ok_or("this browser offers no Cache Storage here")?;
    let scope: web_sys::WorkerGlobalScope = js_sys::global()
        .dyn_into()
        .map_err(|_| "not in a worker".to_owned())?;
    let mut kept = KeptModel {
        name: name.to_owned(),
        files: Vec::with_capacity(files.len()),
        bytes: 0,
    };
    for (i, file) in files.iter().enumerate() {
        let key = format!("opened/{i}/{}", file.path);
        let response: Response = JsFuture::from(scope.fetch_with_str(&file.url))
            .await
            .map_err(|_| format!("{}: could not be read again", file.name))?
            .dyn_into()
            .map_err(|_| format!("{}: not a response", file.name))?;
        let size = response
            .headers()
            .get("content-length")
            .ok()
            .flatten()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        put(&cache, &key, &response).await?;
        kept.bytes += size;
        kept.files.push(KeptFile {
            name: file.name.clone(),
            path: file.path.clone(),
            key,
        });
    }
    let index = serde_json::to_string(&kept).map_err(|e| e.to_string())?;
    let response = Response::new_with_opt_str(Some(&index)).map_err(|_| "no response")?;
    // The index goes last: a visit that finds it finds every file it names.
    put(&cache, KEPT_INDEX, &response).await
}

async fn put(cache: &Cache, key: &str, response: &Response) -> Result<(), String> {
    let stored: Promise = cache.put_with_str(key, response);
    JsFuture::from(stored).await.map(|_| ()).map_err(|e| {
        forget_later();
        format!(
            "the browser would not keep it ({})",
            e.dyn_ref::<js_sys::Error>().map_or_else(
                || "its storage is full".to_owned(),
                |e| String::from(e.message())
            )
        )
    })
}

/// Drops a half-kept copy in the background.
fn forget_later() {
    wasm_bindgen_futures::spawn_local(forget());
}

/// A kept file's response, for reading.
pub(super) async fn kept_response(key: &str) -> Result<Response, String> {
    let cache = open_kept_cache()
        .await
        .ok_or("this browser offers no Cache Storage here")?;
    JsFuture::from(cache.match_with_str(key))
        .await
        .ok()
        .and_then(|found| found.dyn_into::<Response>().ok())
        .ok_or_else(|| "the copy kept in this browser is gone; open the files again".to_owned())
}
