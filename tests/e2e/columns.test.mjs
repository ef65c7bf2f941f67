// The page's second core: served cross-origin isolated (as `cargo xtask serve` and the
// service worker serve it), the engine worker starts a column helper that computes half of
// each large product of the CPU engine, and the page says so; its predictions are those of
// a page that is not isolated, where the engine worker computes alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LOAD_TIMEOUT, launchChromium, serveDist } from './harness.mjs';

/** Enough tokens that the products are large enough to share. */
const PROMPT = 'The jury said that the city of Atlanta had a';
const TWO_WORKERS = /CPU in two web workers/;

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
    const before = await page.locator('#predictions tbody').textContent();
    await page.locator('#prompt').fill(PROMPT);
    await page.waitForFunction((old) => {
      const now = document.querySelector('#predictions tbody')?.textContent;
      return now && now !== old;
    }, before, { timeout: LOAD_TIMEOUT });
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
