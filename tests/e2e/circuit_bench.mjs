// Time from navigation to a drawn attribution graph in headless Chromium, on the page's
// CPU engine (`?engine=cpu`: the worker's wasm32, one thread) and its GPU engine
// (`?engine=gpu`: WebGPU, SwiftShader on a machine without a GPU), for prompts of about
// 16 and 48 tokens of the default pack (at most the 2048 most influential features).
// Run by `cargo xtask bench` after the release build (GLASSBOX_BENCH_ENGINES=cpu or gpu
// runs one engine); numbers, no assertions.
import { serveDist, launchChromium, openPage } from './harness.mjs';

const TEXT = "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election produced no evidence that any irregularities took place. The jury further said in term-end presentments that the City Executive Committee, which had over-all charge of the election, deserves the praise and thanks of the City of Atlanta for the manner in which the election was conducted.";

const server = await serveDist();
const browser = await launchChromium();
try {
  console.log('attribution graphs in headless Chromium (the page, default pack cached)');
  console.log('engine  tokens  nodes kept  edges kept  first graph ms  re-prune ms');
  for (const engine of (process.env.GLASSBOX_BENCH_ENGINES ?? 'cpu,gpu').split(',')) {
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
} finally {
  await browser.close();
  await server.close();
}
