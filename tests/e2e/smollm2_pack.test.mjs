// A pack whose model is a GGUF model split in two files after block 0 (pack format 3), as
// `glassbox pack build --preset smollm2-135m` writes it — here the small one its native test builds from SmolLM2 with
// tiny transcoders (`cargo test -p glassbox-build --test smollm2_pack`, which `cargo
// xtask test` runs before these) — opens in the page: SmolLM2 predicts " Mary" on the
// indirect-object prompt, every one of its 30 blocks lists features, and the circuit view
// draws the prompt's attribution graph (computed on the CPU engine; the graph of the real
// pack, with trained transcoders, is checked by its own build).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { serveDist, launchChromium, openPage, screenshot, root, LOAD_TIMEOUT } from './harness.mjs';

const packDir = join(root, 'target/e2e-packs/smollm2-135m-test');
const PROMPT = encodeURIComponent('When Mary and John went to the store, John gave a drink to');

let server;
let browser;
before(async () => {
  if (!existsSync(join(packDir, 'manifest.json'))) {
    throw new Error(
      `${packDir} is missing: \`cargo test -p glassbox-build --test smollm2_pack\` builds it (cargo xtask test does)`,
    );
  }
  server = await serveDist({ folders: { '/packs/smollm2/': packDir } });
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await server?.close();
});

test('a GGUF pack opens: SmolLM2 predicts " Mary" and every block lists features', async () => {
  const { page, problems } = await openPage(browser, `${server.url}?pack=packs/smollm2/&engine=cpu#/prompt?text=${PROMPT}`);
  await page.locator('#predictions tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
  assert.match(await page.locator('#predictions tbody tr').first().textContent(), /Mary/);
  await page.getByText('block 29', { exact: true }).waitFor({ timeout: 60_000 });
  assert.ok(server.seen.some((p) => p.endsWith('.gguf')), server.seen.join(', '));
  await screenshot(page, 'smollm2-pack-prompt');
  assert.deepEqual(problems, []);
  await page.close();
});

test("block 0's features come with the model's first file; the predictions with the rest", async () => {
  const manifest = JSON.parse(readFileSync(join(packDir, 'manifest.json'), 'utf8'));
  const first = manifest.model.weights;
  const later = new Set(manifest.model.splits);
  assert.equal(later.size, 1, 'the model is split after block 0');
  const bytesOf = new Map(manifest.files.map((f) => [f.path, f.bytes]));
  // The model's later file is held back until block 0's features have shown.
  const context = await browser.newContext();
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  const beforeFeatures = [];
  let shown = false;
  await context.route('**/packs/smollm2/**', async (route) => {
    const path = new URL(route.request().url()).pathname.replace(/^\/packs\/smollm2\//, '');
    if (!shown) beforeFeatures.push(path);
    if (later.has(path)) await held;
    await route.continue();
  });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${server.url}?pack=packs/smollm2/&engine=cpu#/prompt?text=${PROMPT}`);
  await page.locator('#features .layer li').first().waitFor({ timeout: LOAD_TIMEOUT });
  shown = true;
  assert.equal(await page.locator('#predictions tbody tr').count(), 0);
  assert.match(await page.locator('#predictions-waiting').textContent(), /later blocks are still arriving/);
  assert.equal(await page.locator('#engine-status').getAttribute('data-features'), 'partial');
  // The later file may have been asked for by now, but it is held: it was not needed.
  const fetched = [...new Set(beforeFeatures)].filter((p) => bytesOf.has(p) && !later.has(p));
  assert.ok(fetched.includes(first), fetched.join(', '));
  const bytes = fetched.reduce((sum, p) => sum + bytesOf.get(p), 0);
  const model = bytesOf.get(first) + [...later].reduce((sum, p) => sum + bytesOf.get(p), 0);
  console.log(`# block 0's features after ${(bytes / 1e6).toFixed(1)} MB of pack files (${fetched.join(', ')}); the whole model is ${(model / 1e6).toFixed(1)} MB`);
  assert.ok(bytes * 2 < model, `${bytes} bytes before the first features`);
  // Released, the rest of the model predicts, and every block's features arrive.
  release();
  await page.locator('#predictions tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
  assert.match(await page.locator('#predictions tbody tr').first().textContent(), /Mary/);
  await page.locator('#engine-status[data-features=ready]').waitFor({ timeout: LOAD_TIMEOUT });
  await page.getByText('block 29', { exact: true }).waitFor({ timeout: 60_000 });
  assert.deepEqual(errors, []);
  await context.close();
});

test("a GGUF pack's feature opens with its measured data", async () => {
  const { page, problems } = await openPage(browser, `${server.url}?pack=packs/smollm2/&engine=cpu#/prompt?text=${PROMPT}`);
  await page.locator('#predictions tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
  await page.getByText('block 29', { exact: true }).waitFor({ timeout: 60_000 });
  // The first feature listed at the last token: its page shows the pack's record of it.
  await page.locator('a[href*="/feature/"]').first().click();
  await page.locator('#feature-title').waitFor({ timeout: 60_000 });
  await page.getByText(/of corpus tokens/).waitFor({ timeout: 60_000 });
  await page.getByText('Top examples', { exact: true }).waitFor({ timeout: 60_000 });
  // Its top examples recomputed in the page from the pack's corpus, shaded by activation.
  await page.locator('.example .shaded').first().waitFor({ timeout: 120_000 });
  await screenshot(page, 'smollm2-pack-feature');
  assert.deepEqual(problems, []);
  await page.close();
});

test("a GGUF pack's circuit view draws the prompt's graph", async () => {
  const { page, problems } = await openPage(browser, `${server.url}?pack=packs/smollm2/&engine=cpu#/circuit?text=${PROMPT}`);
  await page.locator('#circuit-graph circle').first().waitFor({ timeout: LOAD_TIMEOUT });
  await screenshot(page, 'smollm2-pack-circuit');
  const classes = await page.locator('#circuit-graph circle').evaluateAll((cs) => cs.map((c) => c.getAttribute('class')));
  // The test pack's transcoders are tiny and barely trained: errors carry most of the
  // effect, so the pruned graph is logits, errors and embeddings.
  assert.ok(classes.some((c) => /logit/.test(c)), classes.join(' '));
  assert.ok(classes.some((c) => /error/.test(c)), classes.join(' '));
  assert.match(await page.locator('#circuit-summary').textContent(), /\d/);
  assert.deepEqual(problems, []);
  await page.close();
});
