// The page's second core: served cross-origin isolated (as `cargo xtask serve` and the
// service worker serve it), the engine worker starts a column helper that computes half of
// each large product of the CPU engine, and the page says so; its predictions are those of
// a page that is not isolated, where the engine worker computes alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { LOAD_TIMEOUT, distDir, launchChromium, serveDist } from './harness.mjs';

/** Enough tokens that the products are large enough to share. */
const PROMPT = 'The jury said that the city of Atlanta had a';
const TWO_WORKERS = /CPU in two web workers/;

/** Types PROMPT into `page`'s prompt and waits for its predictions to change. */
async function askPrompt(page) {
  const before = await page.locator('#predictions tbody').textContent();
  await page.locator('#prompt').fill(PROMPT);
  await page.waitForFunction((old) => {
    const now = document.querySelector('#predictions tbody')?.textContent;
    return now && now !== old;
  }, before, { timeout: LOAD_TIMEOUT });
}

/** A page on the CPU engine with PROMPT, from `server`; its predictions as text once the
 * engine says `engine` (checked again after the predictions). */
async function predictions(browser, server, engine) {
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error' || /Glassbox/.test(message.text())) problems.push(message.text());
  });
  try {
    await page.goto(`${server.url}?engine=cpu#/prompt?text=${encodeURIComponent('The jury')}`);
    await page.locator('#predictions tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
    await page.waitForFunction(
      (source) => new RegExp(source).test(document.querySelector('#engine-name')?.textContent ?? ''),
      engine.source,
      { timeout: 60_000 },
    );
    // The prompt run once the engine is as it says.
    await askPrompt(page);
    const text = (await page.locator('#predictions tbody').textContent()).trim();
    assert.match(await page.locator('#engine-name').textContent(), engine);
    assert.deepEqual(problems, []);
    return { text, isolated: await page.evaluate(() => crossOriginIsolated) };
  } finally {
    await page.close();
  }
}

test('an isolated page computes on two workers, to the predictions of one', async () => {
  const browser = await launchChromium();
  const isolated = await serveDist();
  const plain = await serveDist({ headers: {} });
  try {
    const two = await predictions(browser, isolated, TWO_WORKERS);
    assert.equal(two.isolated, true);
    const one = await predictions(browser, plain, /CPU in a web worker/);
    assert.equal(one.isolated, false);
    assert.ok(two.text.length > 0);
    assert.equal(two.text, one.text);
  } finally {
    await browser.close();
    await isolated.close();
    await plain.close();
  }
});

/** Whether `path` is the engine worker's script (either build), not its loader. */
const workerScript = (path) => /^\/glassbox-worker-[^/]*[0-9a-f]{16}\.js$/.test(path);

/** A page of `server` on the CPU engine, its service worker kept out (so that every worker
 * script comes from `server`); `problems` collects its errors, `warnings` its warnings. */
async function openIsolated(browser, server, text) {
  const context = await browser.newContext({ serviceWorkers: 'block' });
  const page = await context.newPage();
  const problems = [];
  const warnings = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
    if (message.type() === 'warning') warnings.push(message.text());
  });
  await page.goto(`${server.url}?engine=cpu#/prompt?text=${encodeURIComponent(text)}`);
  return { context, page, problems, warnings };
}

test('a column helper whose script does not load is let go: the page computes on one worker, without an error', async () => {
  // The engine worker's script comes; the helper's, the second asked for, does not.
  let scripts = 0;
  const server = await serveDist({ before: async (path) => (workerScript(path) && ++scripts === 2 ? 503 : undefined) });
  const browser = await launchChromium();
  try {
    const { page, problems, warnings } = await openIsolated(browser, server, 'The jury');
    await page.locator('#predictions tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
    const deadline = Date.now() + 60_000;
    while (!warnings.some((w) => /no column helper: it failed/.test(w)) && Date.now() < deadline) {
      await page.waitForTimeout(100);
    }
    assert.ok(warnings.some((w) => /no column helper: it failed/.test(w)), `warnings: ${warnings}`);
    await askPrompt(page);
    assert.match(await page.locator('#engine-name').textContent(), /CPU in a web worker/);
    assert.equal(scripts, 2);
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
    await server.close();
  }
});

test('a column helper let go while its script loads (a model opened from disk) raises no error', async () => {
  // The helper's script is held back until the helper has been let go.
  let scripts = 0;
  let held;
  const asked = new Promise((resolve) => { held = resolve; });
  let release;
  const released = new Promise((resolve) => { release = resolve; });
  const server = await serveDist({
    before: async (path) => {
      if (workerScript(path) && ++scripts === 2) {
        held();
        await released;
      }
      return undefined;
    },
  });
  const browser = await launchChromium();
  try {
    const { page, problems } = await openIsolated(browser, server, 'The jury');
    await page.locator('#predictions tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
    await asked;
    // The pack's model gives way to the same model from disk: the pack's helper is let go.
    const folder = join(distDir, 'packs/brown/model');
    const files = ['model-00001-of-00002.gguf', 'model-00002-of-00002.gguf'].map((f) => join(folder, f));
    await page.locator('#open-model').setInputFiles(files);
    await page.waitForFunction(
      () => /\(from this computer\)/.test(document.querySelector('#engine-status')?.textContent ?? ''),
      null,
      { timeout: LOAD_TIMEOUT },
    );
    release();
    await askPrompt(page);
    assert.deepEqual(problems, []);
  } finally {
    release();
    await browser.close();
    await server.close();
  }
});
