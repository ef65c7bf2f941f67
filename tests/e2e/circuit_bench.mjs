// Time from navigation to a drawn attribution graph in headless Chromium, on the page's
// CPU engine (`?engine=cpu`: the worker's wasm32, one thread) and its GPU engine
// (`?engine=gpu`: WebGPU, SwiftShader on a machine without a GPU), for prompts of about
// 16 and 48 tokens of the default pack (at most the 2048 most influential features);
// then the CPU engine's graph time with its batches spread over 1, 2 and 4 workers
// (`?workers=N`: N helper workers carry the batches the engine worker hands out; 1, the
// engine worker alone), for prompts of about 16, 32 and 64 tokens, as the circuit view
// reports it (`#graph-work`).
// Run by `cargo xtask bench` after the release build (GLASSBOX_BENCH_ENGINES=cpu or gpu
// runs one engine, an empty one none; GLASSBOX_BENCH_WORKERS=1,2 the workers measured);
// numbers, no assertions.
import { serveDist, launchChromium, openPage } from './harness.mjs';

const TEXT = "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election produced no evidence that any irregularities took place. The jury further said in term-end presentments that the City Executive Committee, which had over-all charge of the election, deserves the praise and thanks of the City of Atlanta for the manner in which the election was conducted.";

const server = await serveDist();
const browser = await launchChromium();
try {
  console.log('attribution graphs in headless Chromium (the page, default pack cached)');
  console.log('engine  tokens  nodes kept  edges kept  first graph ms  re-prune ms');
  for (const engine of (process.env.GLASSBOX_BENCH_ENGINES ?? 'cpu,gpu').split(',').filter(Boolean)) {
    for (const words of [12, 34]) {
      const text = TEXT.split(' ').slice(0, words).join(' ');
      // Warm the pack cache, then time a fresh page.
      const warm = await openPage(browser, `${server.url}?engine=${engine}#/prompt?text=a`);
      await warm.page.locator('#features li').first().waitFor({ timeout: 180_000 });
      const started = Date.now();
      const { page } = await openPage(browser, `${server.url}?engine=${engine}#/circuit?text=${encodeURIComponent(text)}`);
      await page.locator('#circuit-graph circle, #circuit-error').first().waitFor({ timeout: 600_000 });
      const first = Date.now() - started;
      if (await page.locator('#circuit-error').count()) {
        console.log(`${engine.padStart(6)}  ${String(words).padStart(6)} words: ${await page.locator('#circuit-error').textContent()} (${first} ms)`);
        await page.close();
        await warm.page.close();
        continue;
      }
      const tokens = await page.evaluate(() => document.querySelectorAll('#circuit-graph text.token').length);
      const summary = await page.locator('#circuit-summary').textContent();
      const before = Date.now();
      await page.locator('#nodes-threshold').fill('0.5');
      await page.waitForFunction((s) => document.querySelector('#circuit-summary')?.textContent !== s, summary, { timeout: 600_000 });
      const reprune = Date.now() - before;
      const [, nodes, edges] = summary.match(/(\d+) nodes, (\d+) edges/);
      console.log(`${engine.padStart(6)}  ${String(tokens).padStart(6)}  ${nodes.padStart(10)}  ${edges.padStart(10)}  ${String(first).padStart(14)}  ${String(reprune).padStart(11)}`);
      await page.close();
      await warm.page.close();
    }
  }
  await spreadOverWorkers();
} finally {
  await browser.close();
  await server.close();
}

/** The CPU engine's graph time over 1, 2 and 4 workers: the median of three prompts of
 * each length (different windows of the text, so none is the graph kept from before). */
async function spreadOverWorkers() {
  const words = TEXT.split(' ');
  const lengths = [[12, '~16'], [24, '~32'], [45, '~64']];
  const cores = await (await browser.newPage()).evaluate(() => navigator.hardwareConcurrency);
  console.log(`\nattribution graphs spread over workers (CPU engine; this machine has ${cores} cores)`);
  console.log('workers  tokens  graph ms (median of 3)  batches (engine worker, then helpers)');
  for (const workers of (process.env.GLASSBOX_BENCH_WORKERS ?? '1,2,4').split(',').filter(Boolean).map(Number)) {
    const { page } = await openPage(browser, `${server.url}?engine=cpu&workers=${workers}#/circuit?text=${encodeURIComponent(words.slice(50, 56).join(' '))}`);
    await page.locator('#graph-work').waitFor({ timeout: 600_000 });
    // The helpers start with the first graph; a second finds them loaded.
    await graphOf(page, words.slice(52, 60).join(' '));
    for (const [count, label] of lengths) {
      const runs = [];
      for (const offset of [0, 1, 2]) {
        runs.push(await graphOf(page, words.slice(offset, offset + count).join(' ')));
      }
      runs.sort((a, b) => a.ms - b.ms);
      const { ms, tokens, batches } = runs[1];
      console.log(`${String(workers).padStart(7)}  ${String(tokens || label).padStart(6)}  ${String(Math.round(ms)).padStart(22)}  ${batches}`);
    }
    await page.close();
  }
}

/** Types `text` into the circuit view and waits for its graph: its time, tokens and the
 * batches each worker carried. */
async function graphOf(page, text) {
  await page.locator('#circuit-prompt').fill(text);
  await page.locator('#circuit-prompt').press('Enter');
  await page.waitForFunction((t) => {
    const hash = decodeURIComponent(location.hash.replace(/\+/g, ' '));
    return hash.includes(t) && (document.querySelector('#graph-work') || document.querySelector('#circuit-error'));
  }, text, { timeout: 600_000 });
  const note = page.locator('#graph-work');
  if (!(await note.count())) {
    return { ms: NaN, tokens: 0, batches: await page.locator('#circuit-error').textContent() };
  }
  const tokens = await page.evaluate(() => document.querySelectorAll('#circuit-graph text.token').length);
  const said = await note.textContent();
  const batches = said.match(/of its batches of targets, (.*)\./)?.[1] ?? said;
  return { ms: Number(await note.getAttribute('data-ms')), tokens, batches };
}
