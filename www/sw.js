// Glassbox's service worker: keeps the app shell (the page, its scripts, wasm, styles and
// the engine worker) so that the page opens offline once it has loaded. The pack's files
// are not kept here: the engine worker keeps them itself, keyed by their SHA-256.
//
// The page network first: an online visit always gets the build on the server (the page
// names its files), and refreshes the copy kept here; offline, the kept copy answers. A
// file whose name carries its content's hash (trunk's names: `name-<16 hex>.js`) answers
// from the copy kept here without asking the server, since that name can only ever hold
// that content: a second visit fetches the page alone. Other files go network first, like
// the page. Each build keeps its files in its own cache, and a new build's service worker
// deletes the older ones as it takes over.
//
// Every answer for the app shell carries the headers that make the page cross-origin
// isolated, as `cargo xtask serve` sends them: a static host cannot send them, and only an
// isolated page can share memory between its engine worker and the column helper that
// computes half of each large product on a second core (from the second visit on, once
// this worker answers for the page).
//
// Filled in by `cargo xtask page`: this build's cache name and engine worker files (its
// loader, and the files of the one worker build this browser runs: with relaxed SIMD where
// the browser has it, picked as the loader picks).
const SHELL = 'glassbox-shell-dev';
const WORKER_FILES = [];

/** The page, and every `./file` it names (trunk gives those hashed names). */
async function shellFiles() {
  const page = await fetch('./', { cache: 'no-cache' });
  if (!page.ok) throw new Error(`the page answered ${page.status}; nothing kept`);
  const html = await page.clone().text();
  const named = [...html.matchAll(/["']\.\/([^"'#?]+)["']/g)].map((match) => match[1]);
  return { page, files: [...new Set([...named, ...WORKER_FILES])].map((file) => `./${file}`) };
}

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(SHELL);
    const { page, files } = await shellFiles();
    await cache.put('./', page);
    await cache.addAll(files);
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) {
      if (key.startsWith('glassbox-shell-') && key !== SHELL) await caches.delete(key);
    }
    await self.clients.claim();
  })());
});

/** `response` with the headers that make the page cross-origin isolated. */
function isolated(response) {
  if (response.type === 'opaque' || response.status === 0) return response;
  const headers = new Headers(response.headers);
  headers.set('cross-origin-opener-policy', 'same-origin');
  headers.set('cross-origin-embedder-policy', 'require-corp');
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

/** Whether a path names a file by its content's hash (`style-b5e892aad05050c4.css`,
 * `glassbox-worker-32aad383fa424cd7_bg.wasm`). */
const HASHED = /-[0-9a-f]{16}(?:_[a-z]+)?\.[a-z]+$/;

self.addEventListener('fetch', (event) => {
  const { request } = event;
  const url = new URL(request.url);
  const shell = request.method === 'GET' && url.origin === self.location.origin && !url.pathname.includes('/packs/');
  if (!shell) return;
  // Every page address (?engine=…, any #view) is the one page.
  const key = request.mode === 'navigate' ? './' : request;
  event.respondWith((async () => {
    const cache = await caches.open(SHELL);
    if (request.mode !== 'navigate' && HASHED.test(url.pathname)) {
      const kept = await cache.match(request);
      if (kept) return isolated(kept);
    }
    let response;
    try {
      response = await fetch(request);
    } catch (offline) {
      const kept = await cache.match(key, { ignoreSearch: request.mode === 'navigate' });
      if (kept) return isolated(kept);
      throw offline;
    }
    // The network answered: that answer is the one returned, whether or not keeping a copy
    // works (a full quota, a partial response).
    if (response.ok && response.status === 200 && response.type === 'basic') {
      try {
        await cache.put(key, response.clone());
      } catch (notKept) {
        console.warn('Glassbox: could not keep an offline copy of', request.url, notKept);
      }
    }
    return isolated(response);
  })());
});
