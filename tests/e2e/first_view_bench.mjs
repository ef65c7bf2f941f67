// What a new visitor fetches before the prompt view shows its first feature (block 0's:
// the later blocks' transcoders, and the model's file of blocks 1-3, follow), and how long
// it takes: each file asked for until
// then with its size as served (raw) and as a static host would compress it (gzip at its
// default level 6, as hosts do on the fly; brotli at quality 11, as a build could
// precompress); the time from navigation to the first feature unthrottled and through the
// browser's network emulation at 20 Mbit/s with 40 ms round trips (a class on one school
// Wi-Fi), and until every block's features are in; what a second visit fetches (the
// service worker's cache should make it nothing); and when a new student's first lesson
// step shows, from its preview, and turns live, throttled the same way. Run by
// `cargo xtask bench` after the release build; numbers, no assertions.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync, brotliCompressSync, constants } from 'node:zlib';
import { serveDist, launchChromium, distDir } from './harness.mjs';

const PROMPT = '#/prompt?text=The%20jury%20said%20that%20the%20city';
const THROTTLE = { offline: false, latency: 40, downloadThroughput: 20e6 / 8, uploadThroughput: 20e6 / 8 };

/** Transcoders of blocks after the first, and the model's files after its first (blocks
 * 1-3): the first view does not wait for them. */
const LATER_BLOCKS = /\/transcoders\/layer_[1-9]\d*\/|\/model\/[^/]*-(?!0*1-of-)\d+-of-\d+\.gguf$/;

/** A new visitor's first view: ms to the first feature, and the paths asked for until
 * then. With `holdLater`, the later blocks' files are held at the network until the
 * first feature shows (so that what is counted is what the view waited for, not what the
 * worker went on to fetch meanwhile), then let through; `predicted` is ms until the first
 * prediction shows (it needs the whole model), `all` until every block's features are in. */
async function firstView(browser, server, throttle, holdLater = false) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  let release = () => {};
  if (holdLater) {
    const released = new Promise((resolve) => { release = resolve; });
    await context.route(LATER_BLOCKS, async (route) => { await released; await route.continue(); });
  }
  const page = await context.newPage();
  if (throttle) {
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', throttle);
  }
  const from = server.seen.length;
  const started = Date.now();
  await page.goto(`${server.url}${PROMPT}`);
  const predictedAt = page.locator('#predictions tbody tr').first().waitFor({ timeout: 600_000 })
    .then(() => Date.now() - started);
  await page.locator('#features li').first().waitFor({ timeout: 600_000 });
  const ms = Date.now() - started;
  const paths = server.seen.slice(from);
  release();
  const predicted = await predictedAt;
  await page.locator('#engine-status[data-features=ready]').waitFor({ timeout: 600_000 });
  const all = Date.now() - started;
  return { ms, predicted, all, paths, context, page };
}

/** A new student's first lesson step (the built-in "predictions" lesson) through
 * `throttle`: ms until its view shows from the lesson's preview, and until it is live. */
async function firstLessonStep(browser, server, throttle) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', throttle);
  const started = Date.now();
  await page.goto(`${server.url}#/prompt?text=The%20President%20of%20the%20United&lesson=predictions&step=1`);
  await page.locator('#preview-note').waitFor({ timeout: 600_000 });
  await page.locator('#predictions tbody tr').first().waitFor({ timeout: 600_000 });
  const shown = Date.now() - started;
  await page.locator('#preview-note').waitFor({ state: 'detached', timeout: 600_000 });
  const live = Date.now() - started;
  await context.close();
  return { shown, live };
}

/** A file's sizes: raw, gzip (level 6), brotli (quality 11); nothing for a path the
 * build does not have (the server answered 404). */
async function sizes(path) {
  const body = await readFile(join(distDir, path.endsWith('/') ? `${path}index.html` : path)).catch(() => Buffer.alloc(0));
  return {
    raw: body.length,
    gzip: gzipSync(body, { level: 6 }).length,
    brotli: brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
  };
}

const mb = (bytes) => (bytes / 1e6).toFixed(2).padStart(8);

const server = await serveDist();
const browser = await launchChromium();
try {
  const plain = await firstView(browser, server, null, true);
  console.log('first view in headless Chromium: a new visitor opens the prompt view; until its first feature shows');
  console.log('file                                                   raw MB  gzip MB  brotli MB');
  const total = { raw: 0, gzip: 0, brotli: 0 };
  for (const path of [...new Set(plain.paths)]) {
    const s = await sizes(path);
    for (const k of Object.keys(total)) total[k] += s[k];
    console.log(`${path.slice(0, 52).padEnd(52)}  ${mb(s.raw)} ${mb(s.gzip)}  ${mb(s.brotli)}`);
  }
  console.log(`${'total'.padEnd(52)}  ${mb(total.raw)} ${mb(total.gzip)}  ${mb(total.brotli)}  (goal: 8 MB compressed)`);
  console.log(`time to the first feature: ${plain.ms} ms unthrottled`);
  // A second visit in the same browser profile: what still reaches the server.
  const before = server.seen.length;
  const again = await plain.context.newPage();
  await again.goto(`${server.url}${PROMPT}`);
  await again.locator('#features li').first().waitFor({ timeout: 600_000 });
  const second = server.seen.slice(before);
  let secondBytes = 0;
  for (const path of second) secondBytes += (await sizes(path)).raw;
  console.log(`second visit: ${second.length} requests reached the server, ${mb(secondBytes).trim()} MB raw (${[...new Set(second)].join(' ')})`);
  await plain.context.close();
  const throttled = await firstView(browser, server, THROTTLE);
  console.log(`time to the first feature at 20 Mbit/s, 40 ms round trips (uncompressed, as this server sends): ${throttled.ms} ms; the first prediction (the whole model): ${throttled.predicted} ms; every block's features: ${throttled.all} ms`);
  await throttled.context.close();
  const lesson = await firstLessonStep(browser, server, THROTTLE);
  console.log(`a lesson's first step at 20 Mbit/s, 40 ms round trips: shown from its preview after ${lesson.shown} ms, live after ${lesson.live} ms`);
} finally {
  await browser.close();
  await server.close();
}
