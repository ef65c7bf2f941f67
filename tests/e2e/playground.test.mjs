// The playground in a real browser against the release build and the committed default
// pack: load, prompt, feature, search, steer, malformed links, the GPU engine and the
// switch to the CPU engine, the CPU path without WebGPU, and a second visit served from
// the browser's cache with the network cut, and an offline visit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium, openPage, screenshot, LOAD_TIMEOUT, useBrowser } from './harness.mjs';

/** The engine the header says runs: 'gpu' or 'cpu'. */
async function engineOf(page) {
  await page.locator('#engine-status[data-engine]').waitFor({ timeout: 180_000 });
  return page.locator('#engine-status').getAttribute('data-engine');
}

/** The first prediction's row, as text. */
async function firstPrediction(page) {
  return (await page.locator('#predictions tbody tr').first().textContent()).trim();
}

const env = useBrowser();


/** Bytes of every response the page (and its worker) received. */
function countBytes(page) {
  const counted = { bytes: 0 };
  page.on('requestfinished', async (request) => {
    const sizes = await request.sizes().catch(() => null);
    if (sizes) counted.bytes += sizes.responseBodySize;
  });
  return counted;
}

test('a prompt shows its tokens, predictions and features, and follows typing', async () => {
  const started = Date.now();
  // ?engine=gpu: the GPU engine even on this software adapter (SwiftShader).
  const { page, problems } = await openPage(env.browser, `${env.url}?engine=gpu#/prompt?text=The%20jury%20said%20that%20the`);
  const counted = countBytes(page);
  await page.locator('#features li').first().waitFor({ timeout: LOAD_TIMEOUT });
  const firstFeaturesMs = Date.now() - started;
  console.log(`# navigation to first features shown: ${firstFeaturesMs} ms; ${counted.bytes} bytes fetched`);
  // Block 0's features may show before the rest of the model: the predictions follow.
  await page.locator('#predictions tbody tr').nth(9).waitFor({ timeout: LOAD_TIMEOUT });
  await screenshot(page, 'prompt');
  assert.equal(await page.locator('#predictions tbody tr').count(), 10);
  assert.equal(await page.locator('#tokens .token').count(), 5);
  assert.equal(await engineOf(page), 'gpu');
  assert.match(await page.locator('#engine-name').textContent(), /GPU \(WebGPU\)/);
  // Typing more text re-analyses it.
  await page.locator('#prompt').fill('The jury said that the city of Atlanta');
  await page.waitForFunction(() => document.querySelectorAll('#tokens .token').length === 8, null, { timeout: 60_000 });
  assert.match(page.url(), /Atlanta/);
  // Pinning a token shows its features.
  await page.locator('#tokens .token').nth(1).click();
  await page.waitForFunction(() => /token 1\)/.test(document.querySelector('#features')?.parentElement?.textContent ?? ''), null, { timeout: 30_000 });
  assert.match(page.url(), /pin=1/);
  assert.deepEqual(problems, []);
});

test("block 0's features show while the other blocks' transcoders are still coming", async () => {
  // The network holds back blocks 1 to 3's transcoders until the test lets them through.
  const context = await env.browser.newContext();
  let release;
  const released = new Promise((resolve) => { release = resolve; });
  await context.route(/\/packs\/brown\/transcoders\/layer_[1-9]\d*\/sae_weights\.safetensors$/, async (route) => {
    await released;
    await route.continue();
  });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(error.message));
  await page.goto(`${env.url}#/prompt?text=The%20jury%20said%20that%20the`);
  await page.locator('#engine-status[data-features=partial]').waitFor({ timeout: LOAD_TIMEOUT });
  await page.locator('#features .layer li').first().waitFor({ timeout: 60_000 });
  const layers = page.locator('#features .layer');
  assert.equal(await layers.count(), 4);
  assert.ok(await layers.nth(0).locator('li').count() > 0);
  assert.equal(await page.locator('#features .layer.pending').count(), 3);
  assert.match(await layers.nth(1).textContent(), /Loading/);
  assert.match(await page.locator('#engine-status').textContent(), /block 0's features are in/);
  // From here on, every change to the page is watched: the features shown never blink out
  // while the fuller analysis (every block's) is computed.
  await page.evaluate(() => {
    window.featuresBlinked = 0;
    new MutationObserver(() => {
      if (document.querySelectorAll('#features .layer li').length === 0) window.featuresBlinked += 1;
    }).observe(document.body, { childList: true, subtree: true });
  });
  // A view that needs every block waits; it answers once they arrive.
  release();
  await page.locator('#engine-status[data-features=ready]').waitFor({ timeout: LOAD_TIMEOUT });
  await page.waitForFunction(() => document.querySelectorAll('#features .layer.pending').length === 0
    && [...document.querySelectorAll('#features .layer')].filter((l) => l.querySelector('li')).length === 4,
    null, { timeout: 60_000 });
  assert.equal(await page.evaluate(() => window.featuresBlinked), 0);
  assert.deepEqual(problems, []);
  await context.close();
});

test("the model's first file shows block 0's features before the rest of the model arrives", async () => {
  // The pack's model is split in two files (block 0 with the embeddings and tokenizer,
  // then blocks 1-3): the network holds the second back until the test lets it through.
  const context = await env.browser.newContext();
  let release;
  const released = new Promise((resolve) => { release = resolve; });
  const second = /\/packs\/brown\/model\/model-00002-of-00002\.gguf$/;
  await context.route(second, async (route) => { await released; await route.continue(); });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(error.message));
  const text = 'The%20jury%20said%20that%20the';
  await page.goto(`${env.url}?engine=cpu#/prompt?text=${text}`);
  await page.locator('#features .layer li').first().waitFor({ timeout: LOAD_TIMEOUT });
  const early = await page.locator('#features .layer').nth(0).textContent();
  // No predictions yet, and the page says why; the other blocks wait.
  await page.locator('#predictions-waiting').waitFor({ timeout: 10_000 });
  assert.match(await page.locator('#predictions-waiting').textContent(), /later blocks are still arriving/);
  assert.equal(await page.locator('#predictions tbody tr').count(), 0);
  assert.equal(await page.locator('#features .layer.pending').count(), 3);
  assert.match(await page.locator('#engine-status').textContent(), /block 0's features are in; loading the rest of the model/);
  // A view that needs the whole model (the logit lens) waits for it.
  await page.evaluate((t) => { location.hash = `#/lens?text=${t}`; }, text);
  await page.waitForTimeout(1500);
  assert.equal(await page.locator('#lens').count(), 0);
  release();
  await page.locator('#lens').waitFor({ timeout: LOAD_TIMEOUT });
  // Back on the prompt: the predictions of the whole model, and block 0's features as
  // its first blocks showed them.
  await page.evaluate((t) => { location.hash = `#/prompt?text=${t}`; }, text);
  await page.locator('#predictions tbody tr').nth(9).waitFor({ timeout: LOAD_TIMEOUT });
  assert.equal(await page.locator('#predictions-waiting').count(), 0);
  assert.equal(await page.locator('#features .layer').nth(0).textContent(), early);
  await page.locator('#engine-status[data-features=ready]').waitFor({ timeout: LOAD_TIMEOUT });
  assert.ok(env.seen.some((p) => second.test(p)));
  assert.deepEqual(problems, []);
  await context.close();
});

test('a feature link opens the feature with its evidence and live examples', async () => {
  const { page, problems } = await openPage(env.browser, `${env.url}#/feature/1/5`);
  await page.locator('#feature-label').waitFor({ timeout: LOAD_TIMEOUT });
  assert.equal(await page.locator('#feature-title').textContent(), 'Feature 1/5');
  assert.ok((await page.locator('#feature-label').textContent()).length > 3);
  assert.equal(await page.locator('svg.histogram rect').count(), 16);
  // Examples are recomputed in the browser: shaded tokens appear.
  await page.locator('#top-examples .shaded').first().waitFor({ timeout: 60_000 });
  await page.locator('#on-prompt .shaded').waitFor({ timeout: 60_000 });
  await screenshot(page, 'feature');
  assert.ok(await page.locator('#logits li').count() >= 2);
  assert.deepEqual(problems, []);
});

test('the first view fetches no corpus: a feature view fetches it when it first shows examples', async () => {
  const asked = env.seen.length;
  const packFiles = () => env.seen.slice(asked).filter((path) => path.includes('/packs/'));
  const { page, problems } = await openPage(env.browser, `${env.url}#/prompt?text=The%20jury%20said`);
  await page.locator('#features li').first().waitFor({ timeout: LOAD_TIMEOUT });
  await page.locator('#engine-status[data-features=ready]').waitFor({ timeout: LOAD_TIMEOUT });
  assert.ok(packFiles().some((path) => path.includes('/transcoders/')), packFiles().join(', '));
  assert.ok(!packFiles().some((path) => path.includes('/corpus/')), packFiles().join(', '));
  // The same page moves to a feature: its examples need the corpus, fetched now.
  await page.evaluate(() => { window.location.hash = '#/feature/1/5'; });
  await page.locator('#top-examples .shaded').first().waitFor({ timeout: 60_000 });
  assert.ok(packFiles().some((path) => path.endsWith('/corpus/tokens.bin')), packFiles().join(', '));
  assert.ok((await page.locator('#top-examples').textContent()).length > 20);
  assert.deepEqual(problems, []);
});

test('search finds features by tag, by label and by text', async () => {
  const { page, problems } = await openPage(env.browser, `${env.url}#/search?q=NNS`);
  await page.locator('#hits li').first().waitFor({ timeout: LOAD_TIMEOUT });
  await screenshot(page, 'search-tag');
  const labels = await page.locator('#hits .label').allTextContents();
  assert.ok(labels.length > 0);
  await page.locator('#search').fill('text: the jury said');
  await page.locator('#search').press('Enter');
  await page.waitForFunction(() => /fire on/.test(document.querySelector('main')?.textContent ?? ''), null, { timeout: 60_000 });
  await page.locator('#hits li').first().waitFor({ timeout: 60_000 });
  assert.match(await page.locator('#hits').textContent(), /activation/);
  await page.locator('#hits a').first().click();
  await page.locator('#feature-label').waitFor({ timeout: 60_000 });
  assert.deepEqual(problems, []);
});

test('steering changes the continuation and the link reproduces it', async () => {
  const link = `${env.url}#/steer?text=The%20jury%20said&f=${encodeURIComponent(process.env.GLASSBOX_STEER_FEATURE ?? '1/5:c60')}&n=12&t=0.8&seed=3`;
  const { page, problems } = await openPage(env.browser, link);
  await page.locator('#steered').waitFor({ timeout: LOAD_TIMEOUT });
  await screenshot(page, 'steer');
  const steered = await page.locator('#steered').textContent();
  const baseline = await page.locator('#baseline').textContent();
  assert.notEqual(steered, baseline);
  // The same link in a fresh page gives the same text.
  const again = await openPage(env.browser, link);
  await again.page.locator('#steered').waitFor({ timeout: LOAD_TIMEOUT });
  assert.equal(await again.page.locator('#steered').textContent(), steered);
  assert.deepEqual(problems, []);
  assert.deepEqual(again.problems, []);
});

test('malformed links get a helpful page, never a blank one', async () => {
  const { page, problems } = await openPage(env.browser, `${env.url}#/feature/abc/1`);
  await page.getByRole('heading', { name: 'No such view' }).waitFor({ timeout: 30_000 });
  await page.goto(`${env.url}#/feature/0/999999`);
  await page.locator('#feature-error').waitFor({ timeout: LOAD_TIMEOUT });
  assert.match(await page.locator('#feature-error').textContent(), /block 0 has features 0 to \d+, not 999999/);
  await page.goto(`${env.url}#/steer?f=not-a-feature`);
  await page.locator('#steer-problem').waitFor({ timeout: LOAD_TIMEOUT });
  assert.match(await page.locator('#steer-problem').textContent(), /not-a-feature/);
  const long = 'word '.repeat(300);
  await page.goto(`${env.url}#/prompt?text=${encodeURIComponent(long)}`);
  await page.locator('#prompt-error').waitFor({ timeout: LOAD_TIMEOUT });
  assert.match(await page.locator('#prompt-error').textContent(), /at most 128/);
  await screenshot(page, 'malformed');
  assert.deepEqual(problems, []);
});

test('a malformed field of a link is named and the rest of the link is kept', async () => {
  // n=-1 and seed=abc cannot be read; the prompt, the features and the temperature can.
  const link = `${env.url}#/steer?text=In%20the%20morning&f=1/5:c60&n=-1&t=0&seed=abc`;
  const { page, problems } = await openPage(env.browser, link);
  await page.locator('#steered').waitFor({ timeout: LOAD_TIMEOUT });
  const errors = await page.locator('.link-error').allTextContents();
  assert.equal(errors.length, 2, errors.join('\n'));
  assert.match(errors[0], /n="-1" was ignored: n takes a number of tokens/);
  assert.match(errors[1], /seed="abc" was ignored: seed takes a seed/);
  assert.equal(await page.locator('#steer-prompt').inputValue(), 'In the morning');
  assert.equal(await page.locator('#steer-features').inputValue(), '1/5:c60');
  assert.match(await page.locator('#baseline').textContent(), /^In the morning/);
  // A repeated field: the first is used, and the page says so.
  await page.goto(`${env.url}#/lens?text=The%20jury&text=ignored`);
  await page.locator('#lens').waitFor({ timeout: LOAD_TIMEOUT });
  assert.match(await page.locator('.link-error').textContent(), /text is given more than once/);
  assert.equal(await page.locator('#lens-prompt').inputValue(), 'The jury');
  await screenshot(page, 'malformed-field');
  assert.deepEqual(problems, []);
});

test('the engines give the same answers, and the switch moves between them', async () => {
  const prompt = `${env.url}#/prompt?text=The%20jury%20said%20that%20the%20city`;
  const { page: gpuPage, problems: gpuProblems } = await openPage(env.browser, prompt.replace('#', '?engine=gpu#'));
  await gpuPage.locator('#predictions tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
  assert.equal(await engineOf(gpuPage), 'gpu');
  const onGpu = await firstPrediction(gpuPage);
  // The automatic choice: SwiftShader is a software renderer, slower than the CPU engine.
  const { page, problems } = await openPage(env.browser, prompt);
  await page.locator('#predictions tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
  assert.equal(await engineOf(page), 'cpu');
  assert.match(await page.locator('#engine-name').textContent(), /CPU in (a web worker|two web workers)/);
  assert.match(await page.locator('#engine-note').textContent(), /software renderer/);
  assert.equal(await firstPrediction(page), onGpu);
  await screenshot(page, 'cpu-automatic');
  // The switch: to the GPU, and the next answer comes from it.
  await page.locator('#engine-switch').click();
  await page.waitForFunction(() => document.querySelector('#engine-status')?.dataset.engine === 'gpu', null, { timeout: 120_000 });
  await page.locator('#prompt').fill('The jury said that the city of');
  await page.waitForFunction(() => document.querySelectorAll('#tokens .token').length === 7, null, { timeout: 60_000 });
  await screenshot(page, 'gpu-switched');
  await page.locator('#engine-switch').click();
  await page.waitForFunction(() => document.querySelector('#engine-status')?.dataset.engine === 'cpu', null, { timeout: 60_000 });
  // Forced CPU (?engine=cpu) says nothing about the GPU.
  const { page: cpuPage, problems: cpuProblems } = await openPage(env.browser, prompt.replace('#', '?engine=cpu#'));
  assert.equal(await engineOf(cpuPage), 'cpu');
  assert.equal(await cpuPage.locator('#engine-note').count(), 0);
  assert.deepEqual(problems, []);
  assert.deepEqual(gpuProblems, []);
  assert.deepEqual(cpuProblems, []);
});

test('without WebGPU the playground runs on the CPU engine and says why', async () => {
  const noGpu = await launchChromium([], { webgpu: false });
  try {
    const { page, problems } = await openPage(noGpu, `${env.url}#/prompt?text=In%20the%20morning`);
    await page.locator('#features li').first().waitFor({ timeout: LOAD_TIMEOUT });
    assert.equal(await engineOf(page), 'cpu');
    // Block 0's features can show while the rest of the model arrives (the note then says
    // the GPU is tried once it is in); then the note says why the GPU engine did not start.
    await page.waitForFunction(
      () => /GPU engine could not start/.test(document.querySelector('#engine-note')?.textContent ?? ''),
      null,
      { timeout: LOAD_TIMEOUT },
    );
    await page.goto(`${env.url}#/gpu`);
    await page.getByTestId('webgpu-status').waitFor({ timeout: 60_000 });
    assert.equal(await page.getByTestId('webgpu-status').textContent(), 'WebGPU is not available');
    await screenshot(page, 'cpu-fallback');
    assert.deepEqual(problems, []);
  } finally {
    await noGpu.close();
  }
});

test('a second visit loads the pack from the browser cache with the network cut', async () => {
  const context = await env.browser.newContext();
  const first = await context.newPage();
  await first.goto(`${env.url}#/`);
  // The features load after the model: the visit keeps them once they have, and then the
  // lessons' views (the home page says when they are kept; closing before then left their
  // feature shards to fetch again, more often with the column helper loading beside).
  await first.locator('#engine-status[data-features=ready]').waitFor({ timeout: LOAD_TIMEOUT });
  await first.locator('#lessons-offline').waitFor({ timeout: LOAD_TIMEOUT });
  await first.evaluate(() => navigator.serviceWorker.ready.then(() => true));
  await first.close();
  const asked = env.seen.length;
  const fetched = [];
  // Pack files may not be fetched again; the manifest may, and here fails as if offline
  // (as may the pack picker's index, which then leaves the picker hidden).
  await context.route('**/packs/**', (route) => {
    fetched.push(route.request().url());
    return route.abort('internetdisconnected');
  });
  const second = await context.newPage();
  await second.goto(`${env.url}#/`);
  await second.locator('#pack-info').waitFor({ timeout: LOAD_TIMEOUT });
  assert.match(await second.locator('#engine-status').textContent(), /from this browser's cache/);
  assert.ok(
    fetched.every((url) => url.endsWith('manifest.json') || url.endsWith('/packs/index.json')),
    fetched.join(', '),
  );
  // The build's files (named by their content's hash) answer from the service worker's
  // copy: of the app, only the page itself is fetched again (and the engine worker's
  // loader is asked about, a HEAD without a body, to notice a newer deploy).
  const buildFiles = env.seen
    .slice(asked)
    .filter((path) => /-[0-9a-f]{16}(?:_[a-z]+)?\.[a-z]+$/.test(path) && !path.endsWith('_loader.js'));
  assert.deepEqual(buildFiles, []);
  await screenshot(second, 'cached-visit');
  await context.close();
});

test("a captive portal's answer for the manifest after a good visit loses nothing: the last good manifest answers", async () => {
  const context = await env.browser.newContext();
  const first = await context.newPage();
  await first.goto(`${env.url}#/`);
  await first.locator('#pack-info').waitFor({ timeout: LOAD_TIMEOUT });
  // A good visit: every file the first view loads is in (the later blocks' transcoders
  // come after the first features).
  await first.locator('#engine-status[data-features=ready]').waitFor({ timeout: LOAD_TIMEOUT });
  await first.close();
  // A 200 answer that is not a manifest, as a hotel network's login page gives.
  await context.route('**/packs/brown/manifest.json', (route) => route.fulfill({
    status: 200,
    contentType: 'text/html',
    body: '<html><body>Please log in to the hotel Wi-Fi</body></html>',
  }));
  const second = await context.newPage();
  await second.goto(`${env.url}#/prompt?text=The%20jury`);
  await second.locator('#predictions tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
  assert.match(await second.locator('#engine-status').textContent(), /from this browser's cache/);
  // And the good copy is still there for a third visit.
  const third = await context.newPage();
  await third.goto(`${env.url}#/`);
  await third.locator('#pack-info').waitFor({ timeout: LOAD_TIMEOUT });
  await context.close();
});

test('a pack file longer than its manifest says is refused by name, not read to the end', async () => {
  /** A context whose server sends `glob`'s files with a million bytes too many. */
  async function tooLong(glob) {
    const context = await env.browser.newContext();
    await context.route(glob, async (route) => {
      const real = await route.fetch();
      const body = await real.body();
      await route.fulfill({ status: 200, contentType: 'application/octet-stream', body: Buffer.concat([body, Buffer.alloc(body.length + 1_000_000)]) });
    });
    return context;
  }
  const context = await tooLong('**/packs/brown/features/labels.json');
  const page = await context.newPage();
  await page.goto(`${env.url}#/prompt?text=The%20jury`);
  // The labels come with the features, after the model: predictions stay, the features
  // say why they did not load, and so does a view that needs them.
  await page.locator('#engine-status[data-features=failed]').waitFor({ timeout: LOAD_TIMEOUT });
  const expected = /packs\/brown\/features\/labels\.json: the download is longer than the \d+ bytes expected/;
  assert.match(await page.locator('#features-status').textContent(), expected);
  // The model's answer may come after the features failed: wait for it, it must come.
  await page.locator('#predictions tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
  assert.match(await page.locator('#no-features').textContent(), expected);
  await page.goto(`${env.url}#/search?q=the`);
  await page.getByText(/the pack's features did not load/).first().waitFor({ timeout: 60_000 });
  await context.close();
  // The corpus comes when a view first shows examples: that view says why it did not
  // load; the features and predictions are untouched.
  const corpus = await tooLong('**/packs/brown/corpus/**');
  const feature = await corpus.newPage();
  await feature.goto(`${env.url}#/feature/1/5`);
  await feature.getByText(/the pack's corpus did not load/).first().waitFor({ timeout: LOAD_TIMEOUT });
  assert.match(await feature.locator('body').textContent(), /packs\/brown\/corpus\/[^ ]+: the download is longer than the \d+ bytes expected/);
  assert.equal(await feature.locator('#engine-status').getAttribute('data-features'), 'ready');
  await corpus.close();
});

test('a page whose engine worker is gone from the server (a newer deploy) says to reload, at once', async () => {
  const context = await env.browser.newContext();
  await context.route(/glassbox-worker[^/]*$/, (route) => route.fulfill({ status: 404, body: 'not found' }));
  const page = await context.newPage();
  const started = Date.now();
  await page.goto(`${env.url}#/prompt?text=The%20jury`);
  await page.locator('#load-failed').waitFor({ timeout: 30_000 });
  assert.match(await page.locator('#load-failed').textContent(), /no longer on the server: a newer version was probably published .* Reload the page/);
  assert.ok(Date.now() - started < 30_000);
  await context.close();
});

test('requests superseded before they start are skipped: moving through six graphs shows the last one soon', async () => {
  const { page, problems } = await openPage(env.browser, `${env.url}?engine=cpu#/`);
  await page.locator('#pack-info').waitFor({ timeout: LOAD_TIMEOUT });
  const prompts = [
    'The jury said that the city of Atlanta had a',
    'In the morning the committee reported that the',
    'The Fulton County Grand Jury said Friday an investigation of',
    'Mrs. Jones told the reporters that her husband was',
    'The state senate passed a bill that would give the',
    'After the election the mayor said that the new',
  ];
  const started = Date.now();
  for (const text of prompts) {
    await page.goto(`${env.url}?engine=cpu#/circuit?text=${encodeURIComponent(text)}`);
    await new Promise((done) => setTimeout(done, 150));
  }
  await page.locator('#circuit-graph circle').first().waitFor({ timeout: LOAD_TIMEOUT });
  const tokens = await page.locator('#circuit-graph text.token').allTextContents();
  assert.match(tokens.join(''), /election/);
  console.log(`# six circuit prompts in a row, the last one's graph drawn after ${Date.now() - started} ms`);
  assert.deepEqual(problems, []);
});

test('offline, a second visit opens the page and answers from what the first visit kept', async () => {
  const context = await env.browser.newContext();
  const first = await context.newPage();
  await first.goto(`${env.url}#/prompt?text=The%20jury`);
  await first.locator('#features li').first().waitFor({ timeout: LOAD_TIMEOUT });
  // Every block's features are kept once all have arrived (block 0's show first).
  await first.locator('#engine-status[data-features=ready]').waitFor({ timeout: LOAD_TIMEOUT });
  // The service worker has kept the app shell once it is active.
  await first.evaluate(() => navigator.serviceWorker.ready.then(() => true));
  await first.close();
  await context.setOffline(true);
  const second = await context.newPage();
  const problems = [];
  second.on('pageerror', (error) => problems.push(error.message));
  await second.goto(`${env.url}?engine=cpu#/prompt?text=The%20jury%20said`);
  await second.locator('#features li').first().waitFor({ timeout: LOAD_TIMEOUT });
  // The prompt runs again as the rest of the model and the features arrive (the view shows
  // "Running the model…" meanwhile): its three tokens show after each run.
  await second.waitForFunction(() => document.querySelectorAll('#tokens .token').length === 3, null, { timeout: LOAD_TIMEOUT });
  assert.match(await second.locator('#engine-status').textContent(), /from this browser's cache/);
  await screenshot(second, 'offline-visit');
  assert.deepEqual(problems, []);
  await context.close();
});
