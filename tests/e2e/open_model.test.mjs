// A model from the visitor's own disk: SmolLM2-135M's GGUF (fetched by `cargo xtask
// models`) picked in "Open a model…" runs in the page in place of the pack, with nothing
// uploaded: the indirect-object prompt predicts " Mary", its 30 blocks' attention and the
// logit lens show. A Hugging Face folder's files open too. SAELens dictionaries picked with
// the model, or alone to add to the model loaded, show their features measured live and
// steer. A file that is not a model, a folder without its tokenizer, a dictionary that does
// not fit, are refused with the reason, and what was loaded stays.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openPage, screenshot, LOAD_TIMEOUT, useBrowser, distDir } from './harness.mjs';

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

test("a GGUF model split over files (llama.cpp's gguf-split) opens from all its files, and one alone is refused", async () => {
  // The default pack's own model, split in two: opened from disk, it predicts as the pack does.
  const folder = join(distDir, 'packs/brown/model');
  const [first, second] = ['model-00001-of-00002.gguf', 'model-00002-of-00002.gguf'].map((f) => join(folder, f));
  const text = 'The%20jury%20said%20that%20the';
  const { page, problems } = await openPage(env.browser, `${env.url}?engine=cpu#/prompt?text=${text}`);
  await page.locator('#predictions tbody tr').nth(9).waitFor({ timeout: LOAD_TIMEOUT });
  const fromPack = await page.locator('#predictions tbody').textContent();
  // The second file alone is not a model: refused by name, the pack stays.
  await page.locator('#open-model').setInputFiles(second);
  await page.locator('#open-model-error').waitFor({ timeout: 60_000 });
  assert.match(await page.locator('#open-model-error').textContent(), /model-00002-of-00002\.gguf: file 2 of 2 given without file 1/);
  assert.match(await page.locator('#engine-status').textContent(), /pack “brown”/);
  await page.locator('#open-model').setInputFiles([second, first]);
  await page.waitForFunction(
    () => /model “model-00001-of-00002\.gguf” \(from this computer\)/.test(document.querySelector('#engine-status')?.textContent ?? ''),
    null,
    { timeout: LOAD_TIMEOUT },
  );
  await page.goto(`${env.url}?engine=cpu#/`);
  await page.locator('#pack-info').waitFor({ timeout: LOAD_TIMEOUT });
  assert.match(await page.locator('#pack-info').textContent(), /model from this computer \(4 blocks/);
  await page.goto(`${env.url}?engine=cpu#/prompt?text=${text}`);
  await page.locator('#predictions tbody tr').nth(9).waitFor({ timeout: LOAD_TIMEOUT });
  assert.equal(await page.locator('#predictions tbody').textContent(), fromPack);
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

/** A fresh visit to the home view offers no kept model to reopen. */
async function assertNothingKeptOnNextVisit(page) {
  await page.goto(`${env.url}?engine=cpu#/`);
  await page.reload();
  await page.locator('#pack-info').waitFor({ timeout: LOAD_TIMEOUT });
  await new Promise((done) => setTimeout(done, 1000));
  assert.equal(await page.locator('#reopen-model').count(), 0);
}

/** Writes a SAELens dictionary (cfg.json, sae_weights.safetensors) with fixed
 * pseudo-random weights into a new folder `name` under `parent`; returns the two paths. */
function writeDictionary(parent, name, { dIn, dSae = 64, hook, k = 8 }) {
  const folder = join(parent, name);
  mkdirSync(folder, { recursive: true });
  const cfg = { architecture: 'topk', d_in: dIn, d_sae: dSae, k, apply_b_dec_to_input: false,
    metadata: { hook_name: hook, model_name: 'test' } };
  writeFileSync(join(folder, 'cfg.json'), JSON.stringify(cfg));
  let state = 12345;
  const random = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648 - 0.5;
  };
  const scale = 2 / Math.sqrt(dIn);
  const tensors = [
    ['W_enc', [dIn, dSae], () => random() * scale],
    ['b_enc', [dSae], () => 0],
    ['W_dec', [dSae, dIn], () => random() * scale],
    ['b_dec', [dIn], () => 0],
  ];
  const header = {};
  const chunks = [];
  let offset = 0;
  for (const [tensorName, shape, value] of tensors) {
    const count = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(count).map(value);
    header[tensorName] = { dtype: 'F32', shape, data_offsets: [offset, offset + data.byteLength] };
    chunks.push(Buffer.from(data.buffer));
    offset += data.byteLength;
  }
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(join(folder, 'sae_weights.safetensors'), Buffer.concat([length, json, ...chunks]));
  return [join(folder, 'cfg.json'), join(folder, 'sae_weights.safetensors')];
}

test('a SAELens dictionary opened with the GGUF: its features measured live, shown and steered', async () => {
  const dictionary = writeDictionary(mkdtempSync(join(tmpdir(), 'glassbox-sae-')), 'resid-5', { dIn: 576, hook: 'blocks.5.hook_resid_post' });
  const { page, problems } = await openPage(env.browser, `${env.url}?engine=cpu#/`);
  await page.locator('#pack-info').waitFor({ timeout: LOAD_TIMEOUT });
  const started = Date.now();
  await page.locator('#open-model').setInputFiles([gguf, ...dictionary]);
  await page.waitForFunction(
    () => /model “SmolLM2-135M-Instruct\.Q4_1\.gguf” \(from this computer\)/.test(document.querySelector('#engine-status')?.textContent ?? ''),
    null,
    { timeout: LOAD_TIMEOUT },
  );
  console.log(`# SmolLM2 with a SAELens dictionary opened and its features measured (CPU engine) in ${Date.now() - started} ms`);
  assert.match(await page.locator('#pack-info').textContent(), /1 SAELens dictionary from this computer/);
  await page.goto(`${env.url}?engine=cpu#/prompt?text=${encodeURIComponent(IOI)}`);
  await page.locator('#predictions tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
  assert.match(await page.locator('#predictions tbody tr').first().textContent(), /" Mary"\s*9\d\.\d%/);
  assert.equal(await page.locator('#no-features').count(), 0);
  assert.equal(await page.locator('#features h3').first().textContent(), 'blocks.5.hook_resid_post');
  const first = page.locator('#features a').first();
  const href = await first.getAttribute('href');
  const feature = Number(/feature\/0\/(\d+)/.exec(href)[1]);
  await first.click();
  await page.locator('#feature-frequency').waitFor({ timeout: LOAD_TIMEOUT });
  assert.match(await page.locator('#feature-site').textContent(), /blocks\.5\.hook_resid_post/);
  assert.match(await page.locator('#feature-frequency').textContent(), /fires on \d+\.\d\d% of \d+ sample tokens \(32 texts/);
  assert.ok(await page.locator('#top-examples .example').count() >= 1);
  assert.equal(await page.locator('#logits li').count(), 20);
  await page.locator('#on-prompt .tok').first().waitFor({ timeout: LOAD_TIMEOUT });
  await screenshot(page, 'open-model-live-feature');
  // Clamping the feature hard changes what SmolLM2 writes.
  await page.goto(`${env.url}?engine=cpu#/steer?text=${encodeURIComponent('The capital of France is')}&f=0/${feature}:c400&n=8`);
  await page.locator('#steered').waitFor({ timeout: LOAD_TIMEOUT });
  assert.notEqual(await page.locator('#steered').textContent(), await page.locator('#baseline').textContent());
  assert.deepEqual(problems, []);
});

test('dictionaries alone are added to the pack loaded; one that does not fit is refused by name', async () => {
  const parent = mkdtempSync(join(tmpdir(), 'glassbox-sae-'));
  const fits = writeDictionary(parent, 'brown-resid-1', { dIn: 256, hook: 'blocks.1.hook_resid_post' });
  const wide = writeDictionary(parent, 'too-wide', { dIn: 300, hook: 'blocks.1.hook_resid_post' });
  const { page, problems } = await openPage(env.browser, `${env.url}#/`);
  await page.locator('#pack-info').waitFor({ timeout: LOAD_TIMEOUT });
  await page.locator('#open-model').setInputFiles(wide);
  await page.locator('#open-model-error').waitFor({ timeout: LOAD_TIMEOUT });
  assert.match(await page.locator('#open-model-error').textContent(), /cfg\.json: it reads 300 values per token at blocks\.1\.hook_resid_post, which is 256 wide/);
  const before = await page.locator('#pack-info').textContent();
  const features = Number(/(\d+) features in all/.exec(before)[1]);
  await page.locator('#open-model').setInputFiles(fits);
  await page.waitForFunction(
    (expected) => (document.querySelector('#pack-info')?.textContent ?? '').includes(`${expected} features in all`),
    features + 64,
    { timeout: LOAD_TIMEOUT },
  );
  assert.match(await page.locator('#engine-status').textContent(), /pack “brown”/);
  await page.goto(`${env.url}#/prompt?text=The%20jury%20said`);
  await page.locator('#features h3').nth(4).waitFor({ timeout: LOAD_TIMEOUT });
  assert.deepEqual(await page.locator('#features h3').allTextContents(), ['block 0', 'block 1', 'block 2', 'block 3', 'blocks.1.hook_resid_post']);
  // The pack's own features keep their precomputed data; the added one is measured live.
  await page.goto(`${env.url}#/feature/4/3`);
  await page.locator('#feature-frequency').waitFor({ timeout: LOAD_TIMEOUT });
  assert.match(await page.locator('#feature-frequency').textContent(), /sample tokens \(32 texts/);
  await page.goto(`${env.url}#/feature/1/3`);
  await page.locator('#feature-label').waitFor({ timeout: LOAD_TIMEOUT });
  assert.deepEqual(problems, []);
});

test('the model opened is kept in this browser: the next visit reopens it without the files, or forgets it', async () => {
  const { page, problems } = await openPage(env.browser, `${env.url}?engine=cpu#/`);
  await page.locator('#pack-info').waitFor({ timeout: LOAD_TIMEOUT });
  assert.equal(await page.locator('#reopen-model').count(), 0);
  await page.locator('#open-model').setInputFiles(gguf);
  await page.waitForFunction(() => /Kept in this browser for your next visit/.test(document.querySelector('#pack-info')?.textContent ?? ''), null, { timeout: LOAD_TIMEOUT });
  // Showing it: nothing to reopen.
  assert.equal(await page.locator('#reopen-model').count(), 0);
  // The next visit starts on the pack, and offers the kept model.
  await page.reload();
  await page.locator('#pack-info').waitFor({ timeout: LOAD_TIMEOUT });
  await page.locator('#reopen-model').waitFor({ timeout: LOAD_TIMEOUT });
  assert.match(await page.locator('#engine-status').textContent(), /pack “brown”/);
  assert.equal(await page.locator('#reopen-model').textContent(), 'Reopen “SmolLM2-135M-Instruct.Q4_1.gguf”');
  const started = Date.now();
  await page.locator('#reopen-model').click();
  await page.waitForFunction(() => /Opened from the copy kept in this browser/.test(document.querySelector('#pack-info')?.textContent ?? ''), null, { timeout: LOAD_TIMEOUT });
  console.log(`# SmolLM2 reopened from the copy kept in this browser in ${Date.now() - started} ms`);
  await page.goto(`${env.url}?engine=cpu#/prompt?text=${encodeURIComponent(IOI)}`);
  await page.locator('#predictions tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
  assert.match(await page.locator('#predictions tbody tr').first().textContent(), /" Mary"\s*9\d\.\d%/);
  // Forgotten, it is gone for the next visit too.
  await page.reload();
  await page.locator('#forget-model').click();
  await page.locator('#reopen-model').waitFor({ state: 'detached', timeout: 30_000 });
  assert.equal(await page.evaluate(async () => (await caches.keys()).includes('glassbox-opened-v1')), false);
  await assertNothingKeptOnNextVisit(page);
  assert.deepEqual(problems, []);
});

test("with the browser's storage full, the pack still loads and a model opened says it was not kept", async () => {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Storage.overrideQuotaForOrigin', { origin: new URL(env.url).origin, quotaSize: 4096 });
  const problems = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  await page.goto(`${env.url}?engine=cpu#/prompt?text=The%20jury`);
  await page.locator('#predictions tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
  await page.goto(`${env.url}?engine=cpu#/`);
  await page.locator('#pack-info').waitFor({ timeout: LOAD_TIMEOUT });
  await page.locator('#open-model').setInputFiles(gguf);
  await page.waitForFunction(() => /Not kept for your next visit: the browser would not keep it/.test(document.querySelector('#pack-info')?.textContent ?? ''), null, { timeout: LOAD_TIMEOUT });
  await page.goto(`${env.url}?engine=cpu#/prompt?text=${encodeURIComponent(IOI)}`);
  await page.locator('#predictions tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
  assert.match(await page.locator('#predictions tbody tr').first().textContent(), /" Mary"/);
  // Nothing half-kept is offered on the next visit.
  await assertNothingKeptOnNextVisit(page);
  assert.deepEqual(problems, []);
  await context.close();
});
