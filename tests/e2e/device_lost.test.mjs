// A GPU device lost in the middle of a request (GPUDevice.destroy(), as a driver reset or
// a tab in the background can do): the request is answered anyway, by the CPU engine, the
// view keeps what its link carried, and the header says why the GPU is no longer used.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LOAD_TIMEOUT, useBrowser } from './harness.mjs';

const env = useBrowser();

/** Put in front of the engine worker's loader: keeps every GPU device the worker gets. */
const KEEP_DEVICES = `
self.__gpuDevices = [];
if (self.GPUAdapter) {
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await requestDevice.apply(this, args);
    self.__gpuDevices.push(device);
    return device;
  };
}
`;

test('a GPU device lost mid-request hands over to the CPU engine, and the request is answered', async () => {
  const context = await env.browser.newContext({ viewport: { width: 1100, height: 800 } });
  await context.route(/glassbox-worker[^/]*_loader\.js$/, async (route) => {
    const original = await route.fetch();
    await route.fulfill({ response: original, body: KEEP_DEVICES + (await original.text()) });
  });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  const text = 'The jury said that the city of Atlanta';
  await page.goto(`${env.url}?engine=gpu#/prompt?text=${encodeURIComponent(text)}`);
  await page.locator('#predictions tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
  assert.equal(await page.locator('#engine-status').getAttribute('data-engine'), 'gpu');
  const before = (await page.locator('#predictions tbody tr').first().textContent()).trim();
  const [worker] = page.workers().filter((w) => /glassbox-worker/.test(w.url()));
  assert.ok(worker, 'the engine worker');
  assert.equal(await worker.evaluate(() => self.__gpuDevices.length), 1);
  // A long request (steering: two generations on the GPU), and the device lost under it.
  await page.goto(`${env.url}?engine=gpu#/steer?text=${encodeURIComponent(text)}&f=1/3:x0&n=24`);
  await page.locator('#steer-result, .answer-working, main').first().waitFor();
  await new Promise((done) => setTimeout(done, 300));
  await worker.evaluate(() => self.__gpuDevices.forEach((device) => device.destroy()));
  await page.locator('#steered').waitFor({ timeout: LOAD_TIMEOUT });
  await page.waitForFunction(() => document.querySelector('#engine-status')?.getAttribute('data-engine') === 'cpu', null, { timeout: LOAD_TIMEOUT });
  assert.match(await page.locator('#engine-note').textContent(), /GPU/);
  // The view kept its link, and the CPU engine answers what the GPU did.
  assert.equal(await page.locator('#steer-prompt').inputValue(), text);
  assert.equal(await page.locator('#steer-features').inputValue(), '1/3:x0');
  await page.goto(`${env.url}?engine=gpu#/prompt?text=${encodeURIComponent(text)}`);
  await page.locator('#predictions tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
  const after = (await page.locator('#predictions tbody tr').first().textContent()).trim();
  assert.equal(after.split(/\s+/)[0], before.split(/\s+/)[0]);
  console.log(`# after the device was lost: ${await page.locator('#engine-status').textContent()}`);
  assert.deepEqual(problems, []);
  await context.close();
});
