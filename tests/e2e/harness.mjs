// What every end-to-end test shares: a static server over the release build of the page,
// and headless Chromium with WebGPU (SwiftShader) switched on.
import { createServer } from 'node:http';
import { readFile, mkdir } from 'node:fs/promises';
import { extname, join, normalize, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, after } from 'node:test';
import { chromium } from 'playwright-core';

/** The repository's root. */
export const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The release build that `cargo xtask test` made with trunk. */
export const distDir = process.env.GLASSBOX_DIST ?? join(root, 'target/dist');

/** Where screenshots go: one per test, for a person to look at. */
export const screenshotDir = process.env.GLASSBOX_SCREENSHOTS ?? join(root, 'target/e2e-screenshots');

const types = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
  '.css': 'text/css',
  '.json': 'application/json',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

/** The headers that make a page cross-origin isolated (its engine worker may then share
 * memory with a column helper), as `cargo xtask serve` sends them. */
export const ISOLATED = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };

/** Serves `distDir` on a free loopback port; resolves to `{ url, seen, close }` (`seen`:
 * every path asked for). `aliases` serve one folder's files under another path
 * (`{'/packs/copy/': '/packs/brown/'}`); `folders` serve a folder outside the build
 * (`{'/packs/x/': '/abs/path/'}`); `overrides` answer paths with given bodies; `headers`
 * go with every answer: by default `ISOLATED`'s, as `cargo xtask serve` sends them;
 * `before(path)` is awaited before each answer (it may hold one back), and a status it
 * returns is the answer instead. */
export async function serveDist({ aliases = {}, folders = {}, overrides = {}, headers = ISOLATED, before = async () => undefined } = {}) {
  const seen = [];
  const server = createServer(async (request, response) => {
    let path = decodeURIComponent(new URL(request.url, 'http://localhost').pathname);
    seen.push(path);
    const status = await before(path);
    if (status !== undefined) {
      response.writeHead(status, headers).end();
      return;
    }
    if (path in overrides) {
      response.writeHead(200, { ...headers, 'content-type': types[extname(path)] ?? 'application/octet-stream' });
      response.end(overrides[path]);
      return;
    }
    for (const [from, to] of Object.entries(aliases)) {
      if (path.startsWith(from)) path = to + path.slice(from.length);
    }
    let base = distDir;
    for (const [from, folder] of Object.entries(folders)) {
      if (path.startsWith(from)) {
        base = folder;
        path = `/${path.slice(from.length)}`;
      }
    }
    const file = normalize(join(base, path.endsWith('/') ? `${path}index.html` : path));
    if (!file.startsWith(base)) {
      response.writeHead(403).end();
      return;
    }
    try {
      const body = await readFile(file);
      response.writeHead(200, { ...headers, 'content-type': types[extname(file)] ?? 'application/octet-stream' });
      response.end(body);
    } catch {
      response.writeHead(404).end('not found');
    }
  });
  await new Promise((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address();
  return { url: `http://127.0.0.1:${port}/`, seen, close: () => new Promise((done) => server.close(done)) };
}

/** The flags that give headless Chromium WebGPU on a machine without a GPU or a network. */
export const chromiumArgs = [
  '--enable-unsafe-webgpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
];

/** Headless Chromium (Debian's, at CHROMIUM or /usr/bin/chromium); `webgpu: false`
 * leaves WebGPU off, as in a browser without it (pages and workers alike). */
export async function launchChromium(extraArgs = [], { webgpu = true } = {}) {
  const args = chromiumArgs.filter((arg) => webgpu || arg !== '--enable-unsafe-webgpu');
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [...args, ...extraArgs, ...(webgpu ? [] : ['--disable-features=WebGPU'])],
  });
}

/** Opens a page that fails the test on any uncaught error or console error. */
export async function openPage(browser, url) {
  const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  page.on('response', (response) => {
    if (response.status() >= 400) problems.push(`HTTP ${response.status()} for ${response.url()}`);
  });
  await page.goto(url);
  return { page, problems };
}

/** Saves a full-page screenshot named after the test. */
export async function screenshot(page, name) {
  await mkdir(screenshotDir, { recursive: true });
  const path = join(screenshotDir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** How long a page may take to load the pack and answer (SwiftShader is slow). */
export const LOAD_TIMEOUT = 180_000;

/** What a test file shares: one server over the build and one browser, started before
 * its tests and closed after them. `env.url` is the page's address, `env.browser` the
 * browser, `env.seen` every path the server was asked for. */
export function useBrowser() {
  const env = { server: undefined, browser: undefined };
  before(async () => {
    env.server = await serveDist();
    env.browser = await launchChromium();
  });
  after(async () => {
    await env.browser?.close();
    await env.server?.close();
  });
  return {
    get url() {
      return env.server.url;
    },
    get browser() {
      return env.browser;
    },
    get seen() {
      return env.server.seen;
    },
  };
}
