// A model from the visitor's own disk: SmolLM2-135M's GGUF (fetched by `cargo xtask
// models`) picked in "Open a model…" runs in the page in place of the pack, with nothing
// uploaded: the indirect-object prompt predicts " Mary", its 30 blocks' attention and the
// logit lens show. A Hugging Face folder's files open too. A file that is not a model, or
// a folder without its tokenizer, is refused with the reason, and what was loaded stays.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openPage, screenshot, LOAD_TIMEOUT, useBrowser } from './harness.mjs';

const env = useBrowser();
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const models = process.env.GLASSBOX_MODELS ?? join(root, 'target/models');
const gguf = join(models, 'smollm2/SmolLM2-135M-Instruct.Q4_1.gguf');
const fixtures = join(root, 'crates/model/tests/fixtures');
const IOI = 'When Mary and John went to the store, John gave a drink to';

test('a GGUF from disk runs in the page: predictions, attention and the logit lens', async () => {
  const { page, problems } = await openPage(env.browser, `${env.url}#/`);
  await page.locator('#pack-info').waitFor({ timeout: LOAD_TIMEOUT });
  await page.locator('#open-model').setInputFiles(gguf);
  await page.waitForFunction(
    () => /model “SmolLM2-135M-Instruct\.Q4_1\.gguf” \(from this computer\)/.test(document.querySelector('#engine-status')?.textContent ?? ''),
    null,
    { timeout: LOAD_TIMEOUT },
  );
  assert.match(await page.locator('#pack-info').textContent(), /Llama model from this computer \(30 blocks/);
  // The engine worker read the file itself: nothing went over the network.
  await page.goto(`${env.url}#/prompt?text=${encodeURIComponent(IOI)}`);
  await page.locator('#predictions tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
  assert.match(await page.locator('#predictions tbody tr').first().textContent(), /" Mary"\s*9\d\.\d%/);
  assert.match(await page.locator('#no-features').textContent(), /no feature dictionaries/);
  await screenshot(page, 'open-model-prompt');
  await page.goto(`${env.url}#/attention?text=${encodeURIComponent(IOI)}&layer=29`);
  await page.locator('#block-29').waitFor({ timeout: LOAD_TIMEOUT });
  assert.equal(await page.locator('[id^="block-"]').count(), 30);
  await page.goto(`${env.url}#/lens?text=${encodeURIComponent(IOI)}`);
  await page.waitForFunction(() => /after block 29/.test(document.querySelector('#lens')?.textContent ?? ''), null, { timeout: LOAD_TIMEOUT });
  assert.match(await page.locator('#lens').textContent(), /Mary/);
  await screenshot(page, 'open-model-lens');
  assert.deepEqual(problems, []);
});

test('with ?engine=gpu the same GGUF runs on the GPU engine (WebGPU) and predicts the same', async () => {
  const base = `${env.url}?engine=gpu`;
  const { page, problems } = await openPage(env.browser, `${base}#/`);
  await page.locator('#pack-info').waitFor({ timeout: LOAD_TIMEOUT });
  await page.locator('#open-model').setInputFiles(gguf);
  await page.waitForFunction(
    () => /SmolLM2-135M-Instruct\.Q4_1\.gguf/.test(document.querySelector('#engine-status')?.textContent ?? ''),
    null,
    { timeout: LOAD_TIMEOUT },
  );
  await page.locator('#engine-status[data-engine]').waitFor({ timeout: LOAD_TIMEOUT });
  assert.equal(await page.locator('#engine-status').getAttribute('data-engine'), 'gpu', await page.locator('#engine-status').textContent());
  const started = Date.now();
  await page.goto(`${base}#/prompt?text=${encodeURIComponent(IOI)}`);
  await page.locator('#predictions tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
  console.log(`# SmolLM2 on the GPU engine (SwiftShader): IOI predictions shown after ${Date.now() - started} ms`);
  assert.match(await page.locator('#predictions tbody tr').first().textContent(), /" Mary"\s*92\.\d%/);
  assert.equal(await page.locator('#engine-status').getAttribute('data-engine'), 'gpu');
  await screenshot(page, 'open-model-gpu');
  assert.deepEqual(problems, []);
});

test('a file that is not a model is refused with the reason, and what was loaded stays', async () => {
  const { page, problems } = await openPage(env.browser, `${env.url}#/prompt?text=The%20jury`);
  await page.locator('#predictions tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
  await page.locator('#open-model').setInputFiles({ name: 'notes.gguf', mimeType: 'application/octet-stream', buffer: Buffer.from('PK\x03\x04 not a model') });
  await page.locator('#open-model-error').waitFor({ timeout: 60_000 });
  assert.match(await page.locator('#open-model-error').textContent(), /notes\.gguf: not a GGUF file/);
  assert.match(await page.locator('#engine-status').textContent(), /pack “brown”/);
  await page.goto(`${env.url}#/prompt?text=The%20jury%20said`);
  await page.waitForFunction(() => /said/.test(document.querySelector('.tokens, main')?.textContent ?? ''), null, { timeout: LOAD_TIMEOUT });
  await page.locator('#predictions tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
  assert.deepEqual(problems, []);
});

test("a Hugging Face folder's files open too, and a missing file is named", async () => {
  const folder = join(fixtures, 'with_tokenizer');
  const { page, problems } = await openPage(env.browser, `${env.url}#/`);
  await page.locator('#pack-info').waitFor({ timeout: LOAD_TIMEOUT });
  await page.locator('#open-model').setInputFiles([join(folder, 'config.json'), join(folder, 'model.safetensors')]);
  await page.locator('#open-model-error').waitFor({ timeout: 60_000 });
  assert.match(await page.locator('#open-model-error').textContent(), /tokenizer\.json is missing/);
  await page.locator('#open-model').setInputFiles(['config.json', 'model.safetensors', 'tokenizer.json'].map((f) => join(folder, f)));
  await page.waitForFunction(
    () => /model “GPT-2 \(Hugging Face files\)” \(from this computer\)/.test(document.querySelector('#engine-status')?.textContent ?? ''),
    null,
    { timeout: LOAD_TIMEOUT },
  );
  assert.equal(await page.locator('#open-model-error').count(), 0);
  await page.goto(`${env.url}#/prompt?text=The%20jury%20said`);
  await page.locator('#predictions tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
  assert.deepEqual(problems, []);
});
