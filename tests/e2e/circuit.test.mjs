// The circuit view against the release build and the default pack: a graph renders, a
// node can be selected, ablated (predicted next to actual logit changes) and pinned, and
// the pin survives the link; thresholds prune it;
// and its JSON export imports back to the same graph; a malformed file is refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveDist, launchChromium, openPage, screenshot } from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await serveDist();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.close();
});

const LOAD_TIMEOUT = 180_000;
const PROMPT = 'The%20jury%20said%20that%20the%20city';

async function summary(page) {
  const text = await page.locator('#circuit-summary').textContent();
  const [, nodes, edges] = text.match(/(\d+) nodes, (\d+) edges/);
  return { nodes: Number(nodes), edges: Number(edges) };
}

test('a graph renders, pins live in the link, thresholds prune, and its export imports back', async () => {
  const started = Date.now();
  const { page, problems } = await openPage(browser, `${server.url}#/circuit?text=${PROMPT}`);
  await page.locator('#circuit-graph circle').first().waitFor({ timeout: LOAD_TIMEOUT });
  console.log(`# navigation to a drawn graph: ${Date.now() - started} ms`);
  const full = await summary(page);
  assert.ok(full.nodes > 10 && full.edges > 10, JSON.stringify(full));
  assert.equal(await page.locator('#circuit-graph circle').count(), full.nodes);
  assert.ok(await page.locator('#circuit-graph circle.logit').count() >= 1);
  // Select a feature and pin it.
  const feature = page.locator('#circuit-graph circle.feature').first();
  const id = await feature.getAttribute('data-node');
  await feature.click();
  await page.locator('#node-details').waitFor();
  assert.match(await page.locator('#node-details h3').textContent(), new RegExp(id));
  // Ablate it: predicted and actual change of each logit, side by side.
  await page.locator('#ablate-node').click();
  await page.locator('#ablation tbody tr').first().waitFor({ timeout: 60_000 });
  assert.equal(await page.locator('#ablation tbody tr').count(), await page.locator('#circuit-graph circle.logit').count());
  await page.locator('#pin-node').click();
  await page.waitForFunction((pin) => decodeURIComponent(location.hash).includes(`pin=${pin}`), id);
  await screenshot(page, 'circuit');
  // The link reproduces the view, pin included, in a fresh page.
  const { page: again, problems: againProblems } = await openPage(browser, page.url());
  await again.locator(`#circuit-graph circle[data-node="${id}"].pinned`).waitFor({ timeout: LOAD_TIMEOUT });
  assert.deepEqual(await summary(again), full);
  // A lower node threshold keeps fewer nodes.
  await again.locator('#nodes-threshold').fill('0.4');
  await again.waitForFunction(() => /nodes=0\.4/.test(location.hash), null, { timeout: 30_000 });
  await again.waitForFunction((n) => {
    const m = document.querySelector('#circuit-summary')?.textContent.match(/(\d+) nodes/);
    return m && Number(m[1]) < n;
  }, full.nodes, { timeout: 60_000 });
  // Export, then import into a fresh view: the same graph.
  const href = await page.locator('#circuit-export').getAttribute('href');
  const json = decodeURIComponent(href.slice(href.indexOf(',') + 1));
  const exported = JSON.parse(json);
  assert.equal(exported.nodes.length, full.nodes);
  assert.equal(exported.links.length, full.edges);
  const dir = await mkdtemp(join(tmpdir(), 'glassbox-graph-'));
  const file = join(dir, 'graph.json');
  await writeFile(file, json);
  const { page: viewer, problems: viewerProblems } = await openPage(browser, `${server.url}#/circuit`);
  await viewer.locator('#circuit-import').waitFor({ timeout: LOAD_TIMEOUT });
  await viewer.locator('#circuit-import').setInputFiles(file);
  await viewer.locator('#imported-from').waitFor({ timeout: 30_000 });
  assert.deepEqual(await summary(viewer), full);
  assert.equal(await viewer.locator('#circuit-graph circle').count(), full.nodes);
  // A malformed file is refused with the reason; the page stays.
  const bad = join(dir, 'bad.json');
  await writeFile(bad, JSON.stringify({ ...exported, links: [{ source: 'nowhere', target: exported.nodes[0].node_id, weight: 1 }] }));
  const { page: refusing, problems: refusingProblems } = await openPage(browser, `${server.url}#/circuit`);
  await refusing.locator('#circuit-import').waitFor({ timeout: LOAD_TIMEOUT });
  await refusing.locator('#circuit-import').setInputFiles(bad);
  await refusing.locator('#import-error').waitFor({ timeout: 30_000 });
  assert.match(await refusing.locator('#import-error').textContent(), /nowhere/);
  for (const p of [problems, againProblems, viewerProblems, refusingProblems]) assert.deepEqual(p, []);
});
