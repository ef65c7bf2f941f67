// The engine worker's two builds in a real browser: Chromium, which has relaxed SIMD, runs
// the build whose matrix products use its fused multiply-add; a browser without it (here
// Chromium with the loader's probe made to fail, as it fails in Safari) runs the simd128
// build; both give the same predictions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LOAD_TIMEOUT, useBrowser } from './harness.mjs';

const env = useBrowser();

const RELAXED = /glassbox-worker-relaxed-simd-[0-9a-f]{16}_bg\.wasm$/;
const SIMD128 = /glassbox-worker-[0-9a-f]{16}_bg\.wasm$/;
/** Enough tokens that the linear layers take more rows than the few-row kernels do. */
const PROMPT = 'The jury said that the city of Atlanta had a';

/** The CPU engine's predictions for PROMPT in a new page of `context`, as text, and the
 * paths the server was asked for meanwhile. */
async function predictionsOnTheCpu(context) {
  const asked = env.seen.length;
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(error.message));
  await page.goto(`${env.url}?engine=cpu#/prompt?text=${encodeURIComponent(PROMPT)}`);
  await page.locator('#predictions tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
  assert.equal(await page.locator('#engine-status').getAttribute('data-engine'), 'cpu');
  assert.deepEqual(problems, []);
  return { predictions: (await page.locator('#predictions tbody').textContent()).trim(), fetched: env.seen.slice(asked) };
}

test('Chromium runs the engine built with relaxed SIMD; a browser without it runs the simd128 build, to the same predictions', async () => {
  const chromium = await env.browser.newContext();
  const relaxed = await predictionsOnTheCpu(chromium);
  await chromium.close();
  assert.ok(relaxed.fetched.some((path) => RELAXED.test(path)), relaxed.fetched.join(', '));
  // The service worker keeps the same build the loader picked, and no other.
  assert.ok(!relaxed.fetched.some((path) => SIMD128.test(path)), relaxed.fetched.join(', '));

  const withoutRelaxedSimd = await env.browser.newContext();
  const loaders = [];
  await withoutRelaxedSimd.route(/_loader\.js$/, async (route) => {
    // The page also asks for the loader with HEAD, to notice a newer deploy.
    if (route.request().method() !== 'GET') return route.continue();
    const response = await route.fetch();
    const loader = await response.text();
    loaders.push(loader);
    await route.fulfill({ response, body: loader.replace('WebAssembly.validate(', '(() => false)(') });
  });
  const simd128 = await predictionsOnTheCpu(withoutRelaxedSimd);
  await withoutRelaxedSimd.close();
  // Each worker's loader (the engine's, and the service worker's copy), as served.
  assert.ok(loaders.length > 0);
  for (const loader of loaders) assert.match(loader, /WebAssembly\.validate\(/);
  assert.ok(simd128.fetched.some((path) => SIMD128.test(path)), simd128.fetched.join(', '));
  assert.equal(simd128.predictions, relaxed.predictions);
});
