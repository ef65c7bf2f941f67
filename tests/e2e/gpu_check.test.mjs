// The GPU page in a real browser: it finds the WebGPU adapter and the kernel check passes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, screenshot, useBrowser } from './harness.mjs';

const env = useBrowser();

test('the GPU page shows the WebGPU adapter and a passing kernel check', async () => {
  const { page, problems } = await openPage(env.browser, `${env.url}#/gpu`);
  const status = page.getByTestId('kernel-status');
  await status.waitFor({ timeout: 60_000 });
  await screenshot(page, 'start-page');
  assert.equal(await status.textContent(), 'Kernel check passed');
  const adapter = (await page.getByTestId('adapter-name').textContent()).trim();
  assert.ok(adapter.length > 0, 'the adapter has a name');
  const webgpu = await page.getByTestId('webgpu-status').textContent();
  assert.match(webgpu, /WebGPU is available/);
  const rows = await page.locator('tbody tr').count();
  assert.equal(rows, 6, 'one row per checked shape');
  const fails = await page.locator('tbody td.status-bad').count();
  assert.equal(fails, 0);
  assert.deepEqual(problems, []);
});

test('without WebGPU the page says so and why, instead of going blank', async () => {
  const { page, problems } = await openPage(env.browser, 'about:blank');
  // Hide navigator.gpu before the app starts, as in a browser without WebGPU.
  await page.addInitScript(() => {
    Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined });
  });
  await page.goto(`${env.url}#/gpu`);
  const status = page.getByTestId('webgpu-status');
  await status.waitFor({ timeout: 60_000 });
  await screenshot(page, 'no-webgpu');
  assert.equal(await status.textContent(), 'WebGPU is not available');
  assert.match(await page.locator('main').textContent(), /navigator\.gpu is missing/);
  assert.deepEqual(problems, []);
});

test('an unknown link shows a helpful page with a way back', async () => {
  const { page, problems } = await openPage(env.browser, `${env.url}#/no/such/view`);
  const heading = page.getByRole('heading', { name: 'No such view' });
  await heading.waitFor({ timeout: 30_000 });
  await screenshot(page, 'not-found');
  assert.match(await page.locator('main').textContent(), /\/no\/such\/view/);
  await page.getByRole('link', { name: 'Go to the start page' }).click();
  await page.getByRole('heading', { name: 'Look inside a language model' }).waitFor({ timeout: 60_000 });
  assert.deepEqual(problems, []);
});
