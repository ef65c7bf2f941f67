//! Fetching pack files from a worker, through the browser's Cache API when it has them:
//! cached files are keyed by their SHA-256, so a cached copy is never stale, and each is
//! checked against the manifest before use.

use glassbox_pack::{Pack, Verified};
use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Cache, ReadableStreamDefaultReader, Response, WorkerGlobalScope};

/// The cache the pack files live in.
const CACHE_NAME: &str = "glassbox-packs-v1";

/// The most bytes a pack's `manifest.json` may have (the default pack's: about 20 kB).
const MAX_MANIFEST_BYTES: u64 = 16 << 20;

fn scope() -> Result<WorkerGlobalScope, String> {
    js_sys::global()
        .dyn_into::<WorkerGlobalScope>()
        .map_err(|_| "the engine must run in a web worker".to_owned())
}

fn describe(error: &JsValue) -> String {
    error
        .as_string()
        .or_else(|| {
            error
                .dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
        })
        .unwrap_or_else(|| format!("{error:?}"))
}

/// Opens the pack cache; `None` where the browser offers none (e.g. a private window).
pub(super) async fn open_cache() -> Option<Cache> {
    let caches = scope().ok()?.caches().ok()?;
    let cache = JsFuture::from(caches.open(CACHE_NAME)).await.ok()?;
    cache.dyn_into::<Cache>().ok()
}

async fn response_bytes(response: Response) -> Result<Vec<u8>, String> {
    let buffer = JsFuture::from(response.array_buffer().map_err(|e| describe(&e))?)
        .await
        .map_err(|e| describe(&e))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// Reads a response's body chunk by chunk, telling `on_bytes` the bytes read so far.
pub(super) async fn streamed_bytes(
    response: Response,
    on_bytes: &dyn Fn(u64),
) -> Result<Vec<u8>, String> {
    capped_bytes(response, u64::MAX, on_bytes).await
}

/// Like [`streamed_bytes`], refusing (and no longer reading) a body longer than `limit`:
/// what a page reads from an address someone else chose (a pack file, a lesson) stops at
/// the limit, whatever the server says of its length.
pub async fn capped_bytes(
    response: Response,
    limit: u64,
    on_bytes: &dyn Fn(u64),
) -> Result<Vec<u8>, String> {
    let Some(body) = response.body() else {
        return response_bytes(response).await;
    };
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut bytes = Vec::new();
    loop {
        let chunk = JsFuture::from(reader.read())
            .await
            .map_err(|e| format!("reading the download failed ({})", describe(&e)))?;
        let done = Reflect::get(&chunk, &"done".into()).map_err(|e| describe(&e))?;
        if done.is_truthy() {
            return Ok(bytes);
        }
        let value: Uint8Array = Reflect::get(&chunk, &"value".into())
            .map_err(|e| describe(&e))?
            .dyn_into()
            .map_err(|_| "the download gave something other than bytes".to_owned())?;
        let start = bytes.len();
        if (start as u64).saturating_add(u64::from(value.length())) > limit {
            let _ = reader.cancel();
            return Err(format!(
                "the download is longer than the {limit} bytes expected"
            ));
        }
        bytes.resize(start + value.length() as usize, 0);
        value.copy_to(&mut bytes[start..]);
        on_bytes(bytes.len() as u64);
    }
}

/// Fetches `url` from the network, telling `on_bytes` the bytes received so far.
pub(super) async fn fetch_streamed(url: &str, on_bytes: &dyn Fn(u64)) -> Result<Vec<u8>, String> {
    fetch_capped(url, u64::MAX, on_bytes).await
}

/// Fetches `url` from the network, at most `limit` bytes of it, telling `on_bytes` the
/// bytes received so far.
pub(super) async fn fetch_capped(
    url: &str,
    limit: u64,
    on_bytes: &dyn Fn(u64),
) -> Result<Vec<u8>, String> {
    let response = JsFuture::from(scope()?.fetch_with_str(url))
        .await
        .map_err(|e| {
            format!(
                "{url}: the network request failed ({}); offline, or the address is wrong, \
                 or (for a pack on another site) that site does not allow this page to read \
                 it (CORS: it must send Access-Control-Allow-Origin)",
                describe(&e)
            )
        })?;
    let response: Response = response
        .dyn_into()
        .map_err(|_| format!("{url}: not a response"))?;
    if !response.ok() {
        return Err(format!("{url}: the server answered {}", response.status()));
    }
    capped_bytes(response, limit, on_bytes)
        .await
        .map_err(|e| format!("{url}: {e}"))
}

/// The cached copy under `key`, if any.
pub(super) async fn cached(cache: &Cache, key: &str) -> Option<Vec<u8>> {
    let found = JsFuture::from(cache.match_with_str(key)).await.ok()?;
    let response = found.dyn_into::<Response>().ok()?;
    response_bytes(response).await.ok()
}

/// Stores `bytes` under `key` (failures only cost a refetch next time).
pub(super) async fn store(cache: &Cache, key: &str, bytes: &[u8]) {
    let mut copy = bytes.to_vec();
    if let Ok(response) = Response::new_with_opt_u8_array(Some(&mut copy)) {
        let _ = JsFuture::from(cache.put_with_str(key, &response)).await;
    }
}

/// Removes the entry under `key`.
pub(super) async fn forget(cache: &Cache, key: &str) {
    let _ = JsFuture::from(cache.delete_with_str(key)).await;
}

/// The manifest at `base`: from the network when it answers with a manifest, else (offline,
/// or an answer that is not a manifest, such as a captive portal's page) the last good one
/// cached; a bad answer never replaces a good copy.
pub(super) async fn manifest(cache: Option<&Cache>, base: &str) -> Result<Vec<u8>, String> {
    let url = format!("{base}manifest.json");
    let fetched = fetch_capped(&url, MAX_MANIFEST_BYTES, &|_| {})
        .await
        .and_then(|bytes| match Pack::parse_manifest(&bytes) {
            Ok(_) => Ok(bytes),
            Err(error) => Err(format!("{url}: not a pack manifest ({error})")),
        });
    match fetched {
        Ok(bytes) => {
            if let Some(cache) = cache {
                store(cache, &url, &bytes).await;
            }
            Ok(bytes)
        }
        Err(error) => match cache {
            Some(cache) => cached(cache, &url).await.ok_or(error),
            None => Err(error),
        },
    }
}

/// A pack file, verified against the manifest (once): from the cache when a good copy is
/// there (second result `true`), else from the network (and then cached), telling
/// `on_bytes` how many bytes have arrived as they do.
pub(super) async fn pack_file(
    cache: Option<&Cache>,
    base: &str,
    pack: &Pack,
    path: &str,
    on_bytes: &dyn Fn(u64),
) -> Result<(Verified, bool), String> {
    let entry = pack.entry(path).map_err(|e| e.to_string())?;
    let url = format!("{base}{path}");
    let key = format!("{url}?sha256={}", entry.sha256);
    if let Some(cache) = cache
        && let Some(bytes) = cached(cache, &key).await
    {
        match pack.verify(path, bytes) {
            Ok(file) => return Ok((file, true)),
            Err(_) => forget(cache, &key).await,
        }
    }
    let bytes = fetch_capped(&url, entry.bytes, on_bytes).await?;
    let file = pack.verify(path, bytes).map_err(|e| e.to_string())?;
    if let Some(cache) = cache {
        store(cache, &key, file.bytes()).await;
    }
    Ok((file, false))
}
