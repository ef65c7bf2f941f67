// Time from navigation to a drawn attribution graph in headless Chromium (the page's
// engine worker on the CPU engine), for 16- and 24-token prompts of the default pack (the
// page computes graphs for at most 24 tokens; 48 are measured natively only).
// Run by `cargo xtask bench` after the release build; numbers, no assertions.
import { serveDist, launchChromium, openPage } from './harness.mjs';

const TEXT = "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election produced no evidence that any irregularities took place. The jury further said in term-end presentments that the City Executive Committee, which had over-all charge of the election, deserves the praise and thanks of the City of Atlanta for the manner in which the election was conducted.";

const server = await serveDist();
const browser = await launchChromium();
try {
  console.log('attribution graphs in headless Chromium (engine worker, CPU engine, wasm32), default pack');
  console.log('tokens  nodes kept  edges kept  first graph ms (pack cached)  re-prune ms');
  for (const words of [12, 18]) {
    const text = TEXT.split(' ').slice(0, words).join(' ');
    // Warm the pack cache, then time a fresh page.
    const warm = await openPage(browser, `${server.url}#/prompt?text=a`);
    await warm.page.locator('#features li').first().waitFor({ timeout: 180_000 });
    const started = Date.now();
    const { page } = await openPage(browser, `${server.url}#/circuit?text=${encodeURIComponent(text)}`);
    await page.locator('#circuit-graph circle').first().waitFor({ timeout: 600_000 });
    const first = Date.now() - started;
    const tokens = await page.evaluate(() => document.querySelectorAll('#circuit-graph text.token').length);
    const summary = await page.locator('#circuit-summary').textContent();
    const before = Date.now();
    await page.locator('#nodes-threshold').fill('0.5');
    await page.waitForFunction((s) => document.querySelector('#circuit-summary')?.textContent !== s, summary, { timeout: 600_000 });
    const reprune = Date.now() - before;
    const [, nodes, edges] = summary.match(/(\d+) nodes, (\d+) edges/);
    console.log(`${String(tokens).padStart(6)}  ${nodes.padStart(10)}  ${edges.padStart(10)}  ${String(first).padStart(28)}  ${String(reprune).padStart(11)}`);
    await page.close();
    await warm.page.close();
  }
} finally {
  await browser.close();
  await server.close();
}
