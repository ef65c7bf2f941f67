// The circuit view against the release build and the default pack: a graph renders; a
// hovered feature shows its label and top examples; a node can be selected, ablated and
// clamped (the graph's, the frozen model's and the model's logit changes), pinned and
// grouped into a supernode, and the selection, pin and supernode survive the link; the
// subgraph shows them; thresholds prune; the JSON export (with pins and supernodes in
// its qParams) imports back to the same graph and view; a malformed file is refused; a
// 48-token prompt gets a graph of its most influential features; a search rings nodes and
// groups them; "rather than" attributes a logit difference, ablations included; graph
// steering continues the prompt with nodes set, next to the unsteered text; a second
// prompt's graph is compared with the first's; suggested groups become supernodes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPage, screenshot, LOAD_TIMEOUT, useBrowser } from './harness.mjs';

const env = useBrowser();

const PROMPT = 'The%20jury%20said%20that%20the%20city';

/** The four scores the view states: replacement and completeness, whole then pruned. */
async function scoresOf(page) {
  const text = await page.locator('#graph-scores').textContent();
  const numbers = text.match(/\d+\.\d+/g)?.map(Number) ?? [];
  assert.equal(numbers.length, 4, text);
  return numbers;
}

async function summary(page) {
  const text = await page.locator('#circuit-summary').textContent();
  const [, nodes, edges] = text.match(/(\d+) nodes, (\d+) edges/);
  return { nodes: Number(nodes), edges: Number(edges) };
}

test('a graph renders, pins live in the link, thresholds prune, and its export imports back', async () => {
  const started = Date.now();
  const { page, problems } = await openPage(env.browser, `${env.url}#/circuit?text=${PROMPT}`);
  await page.locator('#circuit-graph circle').first().waitFor({ timeout: LOAD_TIMEOUT });
  console.log(`# navigation to a drawn graph: ${Date.now() - started} ms`);
  const full = await summary(page);
  assert.ok(full.nodes > 10 && full.edges > 10, JSON.stringify(full));
  assert.equal(await page.locator('#circuit-graph circle').count(), full.nodes);
  assert.ok(await page.locator('#circuit-graph circle.logit').count() >= 1);
  // The graph's replacement and completeness scores, whole and pruned, each a share.
  const scores = await scoresOf(page);
  for (const s of scores) assert.ok(s >= 0 && s <= 1, JSON.stringify(scores));
  // Hovering a feature shows its label and top corpus examples.
  const feature = page.locator('#circuit-graph circle.feature').first();
  const id = await feature.getAttribute('data-node');
  await feature.hover();
  await page.locator('#hover-card ol.snippets li').first().waitFor({ timeout: 60_000 });
  assert.match(await page.locator('#hover-card h4').textContent(), new RegExp(id));
  // Select it: its details, and the selection in the link.
  await feature.click();
  await page.locator('#node-details').waitFor();
  assert.match(await page.locator('#node-details h3').textContent(), new RegExp(id));
  await page.waitForFunction((at) => decodeURIComponent(location.hash).includes(`at=${at}`), id);
  // Ablate it, then clamp it: three changes of each logit, side by side.
  const logits = await page.locator('#circuit-graph circle.logit').count();
  await page.locator('#ablate-node').click();
  await page.locator('#intervention tbody tr').first().waitFor({ timeout: 60_000 });
  assert.equal(await page.locator('#intervention tbody tr').count(), logits);
  assert.equal(await page.locator('#intervention tbody tr:first-child td').count(), 4);
  const ablated = await page.locator('#intervention tbody').textContent();
  await page.locator('#clamp-value').fill('0.5');
  await page.locator('#clamp-node').click();
  await page.waitForFunction((before) => {
    const now = document.querySelector('#intervention tbody')?.textContent;
    return now && now !== before;
  }, ablated, { timeout: 60_000 });
  // Pin it and group it with another node into a supernode.
  await page.locator('#pin-node').click();
  await page.waitForFunction((pin) => decodeURIComponent(location.hash).includes(`pin=${pin}`), id);
  await page.locator('#group-label').fill('first group');
  await page.locator('#group-node').click();
  await page.waitForFunction(() => /groups=first/.test(decodeURIComponent(location.hash)));
  const other = await page.locator('#circuit-graph circle.feature').nth(1).getAttribute('data-node');
  await page.locator(`#circuit-graph circle[data-node="${other}"]`).click();
  await page.locator('button.add-to-group').first().click();
  await page.waitForFunction((o) => decodeURIComponent(location.hash).includes(`,${o}`), other);
  await page.locator('#subgraph [data-subgraph-node="supernode:first group"]').waitFor();
  assert.equal(await page.locator('#circuit-graph circle.grouped').count(), 2);
  await screenshot(page, 'circuit');
  // The link reproduces the view, selection, pin and supernode included, in a fresh page.
  const { page: again, problems: againProblems } = await openPage(env.browser, page.url());
  await again.locator(`#circuit-graph circle[data-node="${id}"].pinned`).waitFor({ timeout: LOAD_TIMEOUT });
  assert.deepEqual(await summary(again), full);
  assert.equal(await again.locator('#circuit-graph circle.grouped').count(), 2);
  await again.locator('#node-details').waitFor();
  assert.match(await again.locator('#node-details h3').textContent(), new RegExp(other));
  await again.locator('#subgraph [data-subgraph-node="supernode:first group"]').waitFor();
  // A lower node threshold keeps fewer nodes.
  await again.locator('#nodes-threshold').fill('0.4');
  await again.waitForFunction(() => /nodes=0\.4/.test(location.hash), null, { timeout: 30_000 });
  await again.waitForFunction((n) => {
    const m = document.querySelector('#circuit-summary')?.textContent.match(/(\d+) nodes/);
    return m && Number(m[1]) < n;
  }, full.nodes, { timeout: 60_000 });
  // Pruning changes the pruned graph's scores, never the whole graph's.
  assert.deepEqual((await scoresOf(again)).slice(0, 2), scores.slice(0, 2));
  // Export, then import into a fresh view: the same graph.
  const href = await page.locator('#circuit-export').getAttribute('href');
  const json = decodeURIComponent(href.slice(href.indexOf(',') + 1));
  const exported = JSON.parse(json);
  assert.equal(exported.nodes.length, full.nodes);
  assert.equal(exported.links.length, full.edges);
  assert.deepEqual(exported.qParams.pinnedIds, [id]);
  const { graph: whole, pruned } = exported.metadata.scores;
  assert.deepEqual([whole.replacement, whole.completeness, pruned.replacement, pruned.completeness].map((x) => x.toFixed(2)), scores.map((x) => x.toFixed(2)));
  assert.deepEqual(exported.qParams.supernodes, [['first group', id, other]]);
  const dir = await mkdtemp(join(tmpdir(), 'glassbox-graph-'));
  const file = join(dir, 'graph.json');
  await writeFile(file, json);
  const { page: viewer, problems: viewerProblems } = await openPage(env.browser, `${env.url}#/circuit`);
  await viewer.locator('#circuit-import').waitFor({ timeout: LOAD_TIMEOUT });
  await viewer.locator('#circuit-import').setInputFiles(file);
  await viewer.locator('#imported-from').waitFor({ timeout: 30_000 });
  assert.deepEqual(await summary(viewer), full);
  assert.deepEqual(await scoresOf(viewer), scores);
  assert.equal(await viewer.locator('#circuit-graph circle').count(), full.nodes);
  // The file's pins and supernodes come with it.
  assert.equal(await viewer.locator('#circuit-graph circle.grouped').count(), 2);
  await viewer.locator('#subgraph [data-subgraph-node="supernode:first group"]').waitFor();
  // A malformed file is refused with the reason; the page stays.
  const bad = join(dir, 'bad.json');
  await writeFile(bad, JSON.stringify({ ...exported, links: [{ source: 'nowhere', target: exported.nodes[0].node_id, weight: 1 }] }));
  const { page: refusing, problems: refusingProblems } = await openPage(env.browser, `${env.url}#/circuit`);
  await refusing.locator('#circuit-import').waitFor({ timeout: LOAD_TIMEOUT });
  await refusing.locator('#circuit-import').setInputFiles(bad);
  await refusing.locator('#import-error').waitFor({ timeout: 30_000 });
  assert.match(await refusing.locator('#import-error').textContent(), /nowhere/);
  // A node in a layer this model does not have (a million rows to draw), and a file too
  // large to read, are refused by name too.
  const deep = join(dir, 'deep.json');
  const deepIndex = exported.nodes.findIndex((n) => n.feature_type === 'cross layer transcoder');
  const nodes = exported.nodes.map((n, i) => (i === deepIndex ? { ...n, layer: '7' } : n));
  await writeFile(deep, JSON.stringify({ ...exported, nodes }));
  await refusing.locator('#circuit-import').setInputFiles(deep);
  await refusing.waitForFunction(() => /this model has 4 blocks/.test(document.querySelector('#import-error')?.textContent ?? ''), null, { timeout: 30_000 });
  const huge = join(dir, 'huge.json');
  await writeFile(huge, Buffer.alloc(70_000_000, 32));
  await refusing.locator('#circuit-import').setInputFiles(huge);
  await refusing.waitForFunction(() => /huge\.json: the file is 70 MB; graph files of at most 67 MB are read/.test(document.querySelector('#import-error')?.textContent ?? ''), null, { timeout: 30_000 });
  for (const p of [problems, againProblems, viewerProblems, refusingProblems]) assert.deepEqual(p, []);
});

test('a search finds nodes in the graph, rings them, and groups them into a supernode', async () => {
  // The token " jury" (position 1): every feature, error and embedding there.
  const { page, problems } = await openPage(env.browser, `${env.url}#/circuit?text=${PROMPT}&find=%22jury%22`);
  await page.locator('#circuit-graph circle').first().waitFor({ timeout: LOAD_TIMEOUT });
  const note = await page.locator('#found-note').textContent();
  const n = Number(note.match(/(\d+) nodes? match/)?.[1]);
  const ids = (selector) => page.locator(selector).evaluateAll((cs) => cs.map((c) => c.getAttribute('data-node')).sort());
  const found = await ids('#circuit-graph circle.found');
  assert.equal(found.length, n, note);
  const atJury = (await ids('#circuit-graph circle:not(.logit)')).filter((id) => /_1$/.test(id));
  assert.deepEqual(found, atJury);
  assert.ok(found.some((id) => id.startsWith('E_')) && found.some((id) => /^\d/.test(id)), found.join(' '));
  // Grouped: one supernode named after the token, in the link and the subgraph.
  await page.locator('#group-found').click();
  await page.waitForFunction(() => /groups=jury:/.test(decodeURIComponent(location.hash)));
  // The link changes before the graph is drawn again: wait for the rings, then count them.
  await page.locator('#circuit-graph circle.grouped').first().waitFor({ timeout: 30_000 });
  assert.equal(await page.locator('#circuit-graph circle.grouped').count(), n);
  await page.locator('#subgraph [data-subgraph-node="supernode:jury"]').waitFor();
  // A feature's number finds it at every position it is active.
  const feature = found.find((id) => /^\d+_\d+_\d+$/.test(id));
  assert.ok(feature, `no feature on " jury": ${found.join(' ')}`);
  const [layer, index] = feature.split('_');
  await page.locator('#graph-find').fill(`${layer}/${index}`);
  await page.locator('#graph-find').press('Enter');
  await page.waitForFunction((f) => decodeURIComponent(location.hash).includes(`find=${f}`), `${layer}/${index}`);
  await page.waitForFunction((f) => [...document.querySelectorAll('#circuit-graph circle.found')].some((c) => c.getAttribute('data-node') === f), feature);
  for (const id of await ids('#circuit-graph circle.found')) assert.ok(id.startsWith(`${layer}_${index}_`), id);
  await screenshot(page, 'circuit-find');
  // Nothing found: said, nothing ringed, nothing to group.
  await page.locator('#graph-find').fill('zzzz');
  await page.locator('#graph-find').press('Enter');
  await page.waitForFunction(() => /No node of these \d+ matches/.test(document.querySelector('#found-note')?.textContent ?? ''));
  assert.equal(await page.locator('#circuit-graph circle.found').count(), 0);
  assert.equal(await page.locator('#group-found').count(), 0);
  assert.deepEqual(problems, []);
});

test('"rather than" attributes a logit difference: one logit node, ablated as the difference', async () => {
  const { page, problems } = await openPage(env.browser, `${env.url}#/circuit?text=The%20men%20said%20that%20they`);
  await page.locator('#circuit-graph circle').first().waitFor({ timeout: LOAD_TIMEOUT });
  assert.ok((await page.locator('#circuit-graph circle.logit').count()) > 1);
  await page.locator('#circuit-versus').fill(' was');
  await page.locator('#circuit-versus').press('Enter');
  await page.waitForFunction(() => location.hash.includes('versus='));
  await page.waitForFunction(() => document.querySelectorAll('#circuit-graph circle.logit').length === 1, null, { timeout: 60_000 });
  await page.locator('#circuit-graph circle.logit').click();
  await page.locator('#node-details').waitFor();
  assert.match(await page.locator('#node-details').textContent(), /" were" rather than " was"/);
  // Ablating a feature: one row, the change of the difference, three ways.
  await page.locator('#circuit-graph circle.feature').first().click();
  await page.locator('#ablate-node').click();
  await page.locator('#intervention tbody tr').first().waitFor({ timeout: 60_000 });
  assert.equal(await page.locator('#intervention tbody tr').count(), 1);
  assert.match(await page.locator('#intervention tbody').textContent(), /" were" rather than " was"/);
  await screenshot(page, 'circuit-versus');
  // The link reproduces it.
  const { page: again, problems: againProblems } = await openPage(env.browser, page.url());
  await again.locator('#circuit-graph circle.logit').first().waitFor({ timeout: LOAD_TIMEOUT });
  assert.equal(await again.locator('#circuit-graph circle.logit').count(), 1);
  assert.equal(await again.locator('#circuit-versus').inputValue(), ' was');
  // Two tokens are refused with the reason.
  await again.locator('#circuit-versus').fill(' was not');
  await again.locator('#circuit-versus').press('Enter');
  await again.locator('#circuit-error').waitFor({ timeout: 60_000 });
  assert.match(await again.locator('#circuit-error').textContent(), /is 2 tokens/);
  assert.deepEqual(problems, []);
  assert.deepEqual(againProblems, []);
  await again.close();
  await page.close();
});

test('graph steering: nodes set from the graph continue the prompt beside the unsteered text, and the link reproduces it', async () => {
  const prompt = 'The men said that they';
  const { page, problems } = await openPage(env.browser, `${env.url}#/circuit?text=The%20men%20said%20that%20they`);
  await page.locator('#circuit-graph circle.feature').first().waitFor({ timeout: LOAD_TIMEOUT });
  assert.equal(await page.locator('#graph-steering').count(), 0);
  // A feature clamped high, and an error taken out, each added from its node.
  await page.locator('#circuit-graph circle.feature').first().click();
  await page.locator('#clamp-value').fill('40');
  await page.locator('#steer-clamped').click();
  await page.waitForFunction(() => location.hash.includes('steer='));
  await page.locator('#circuit-graph circle.error').first().click();
  await page.locator('#steer-error').click();
  await page.waitForFunction(() => decodeURIComponent(location.hash).includes(',error_'));
  await page.locator('#graph-steered').waitFor({ timeout: 60_000 });
  const nodes = await page.locator('#graph-steer-nodes li').allTextContents();
  assert.equal(nodes.length, 2, nodes.join(' | '));
  assert.match(nodes[0], /feature \d+\/\d+ at token \d+ set to 40/);
  assert.match(nodes[1], /transcoder error at token \d+ taken out/);
  const baseline = await page.locator('#graph-baseline').textContent();
  const steered = await page.locator('#graph-steered').textContent();
  for (const text of [baseline, steered]) {
    assert.ok(text.startsWith(prompt) && text.length > prompt.length, text);
  }
  assert.equal(await page.locator('#graph-steer-result ol li').count(), 10);
  await screenshot(page, 'circuit-graph-steering');
  // The link gives the same texts; fewer tokens give a shorter continuation.
  const { page: again, problems: againProblems } = await openPage(env.browser, page.url());
  await again.locator('#graph-steered').waitFor({ timeout: LOAD_TIMEOUT });
  assert.equal(await again.locator('#graph-steered').textContent(), steered);
  assert.equal(await again.locator('#graph-baseline').textContent(), baseline);
  await again.locator('#graph-steer-tokens').fill('2');
  await again.locator('#graph-steer-tokens').press('Enter');
  await again.waitForFunction(() => location.hash.includes('n=2'));
  await again.waitForFunction(
    (length) => (document.querySelector('#graph-baseline')?.textContent ?? '').length < length,
    baseline.length,
    { timeout: 60_000 },
  );
  // Attention frozen over the prompt: in the link, said, and generated again.
  assert.equal(await again.locator('#graph-steer-freeze').isChecked(), false);
  await again.locator('#graph-steer-freeze').check();
  await again.waitForFunction(() => location.hash.includes('attn=frozen'));
  assert.match(await again.locator('#graph-steer-how').textContent(), /attention frozen/);
  await again.locator('#graph-steered').waitFor({ timeout: 60_000 });
  assert.ok((await again.locator('#graph-steered').textContent()).startsWith(prompt));
  const frozenLink = again.url();
  const { page: frozen, problems: frozenProblems } = await openPage(env.browser, frozenLink);
  await frozen.locator('#graph-steered').waitFor({ timeout: LOAD_TIMEOUT });
  assert.equal(await frozen.locator('#graph-steer-freeze').isChecked(), true);
  assert.equal(await frozen.locator('#graph-steered').textContent(), await again.locator('#graph-steered').textContent());
  assert.deepEqual(frozenProblems, []);
  await frozen.close();
  await again.locator('#graph-steer-freeze').uncheck();
  await again.waitForFunction(() => !location.hash.includes('attn='));
  // Removing both nodes closes the panel.
  await again.locator('#graph-steer-nodes .remove').first().click();
  await again.waitForFunction(() => document.querySelectorAll('#graph-steer-nodes li').length === 1);
  await again.locator('#graph-steer-nodes .remove').first().click();
  await again.waitForFunction(() => !location.hash.includes('steer='));
  assert.equal(await again.locator('#graph-steering').count(), 0);
  // A malformed list is named, and can be cleared.
  await again.goto(`${env.url}#/circuit?text=The%20men%20said%20that%20they&steer=banana`);
  await again.locator('#graph-steer-problem').waitFor({ timeout: LOAD_TIMEOUT });
  assert.match(await again.locator('#graph-steer-problem').textContent(), /"banana" is not a node to set/);
  assert.deepEqual(problems, []);
  assert.deepEqual(againProblems, []);
  await again.close();
  await page.close();
});

test('an edge from an earlier token split by the heads that carry it, each head\'s QK attribution beside it; the link reproduces it', async () => {
  const { page, problems } = await openPage(env.browser, `${env.url}#/circuit?text=The%20men%20said%20that%20they`);
  await page.locator('#circuit-graph circle.feature').first().waitFor({ timeout: LOAD_TIMEOUT });
  // A node with an input from an earlier token offers "which heads?".
  const ids = await page.locator('#circuit-graph circle').evaluateAll((cs) => cs.map((c) => c.getAttribute('data-node')));
  let found = null;
  for (const id of ids) {
    await page.locator(`#circuit-graph circle[data-node="${id}"]`).click();
    await page.locator('#node-details h3').filter({ hasText: id }).waitFor();
    if (await page.locator('#node-details .split-edge').count() > 0) { found = id; break; }
  }
  assert.ok(found, 'no node has an input from an earlier token');
  await page.locator('#node-details .split-edge').first().click();
  await page.waitForFunction(() => location.hash.includes('heads='));
  await page.locator('#edge-heads-total').waitFor({ timeout: 60_000 });
  const total = await page.locator('#edge-heads-total').textContent();
  assert.match(total, /is [+-]\d+\.\d+: heads carry [+-]\d+\.\d+ of it in one hop/);
  const rows = await page.locator('#edge-heads tbody tr').count();
  assert.ok(rows >= 1, total);
  // The top carrier's QK attribution shows at once; another head's on a click.
  await page.locator('#qk-score').waitFor({ timeout: 60_000 });
  const first = await page.locator('#qk h3').textContent();
  assert.match(first, /Why head \d+\.\d+ looks from token \d+ to token \d+/);
  if (rows > 1) {
    const second = (await page.locator('#edge-heads tbody tr').nth(1).locator('td').first().textContent()).trim();
    await page.locator('#edge-heads tbody tr').nth(1).locator('.why-here').click();
    await page.waitForFunction((h) => location.hash.includes(`head=${h}`), second);
    await page.waitForFunction((h) => document.querySelector('#qk h3')?.textContent.includes(`head ${h} `), second, { timeout: 60_000 });
    await page.locator('#qk-score').waitFor({ timeout: 60_000 });
  }
  await screenshot(page, 'circuit-edge-heads');
  // The link reproduces it; Close takes it away.
  const { page: again, problems: againProblems } = await openPage(env.browser, page.url());
  await again.locator('#edge-heads-total').waitFor({ timeout: LOAD_TIMEOUT });
  assert.equal(await again.locator('#edge-heads-total').textContent(), total);
  assert.equal(await again.locator('#qk h3').textContent(), await page.locator('#qk h3').textContent());
  await again.locator('#edge-heads-close').click();
  await again.waitForFunction(() => !location.hash.includes('heads='));
  assert.equal(await again.locator('#edge-heads-panel').count(), 0);
  // A source the graph lacks is named.
  await again.goto(`${env.url}#/circuit?text=The%20men%20said%20that%20they&at=${encodeURIComponent(found)}&heads=0_999999_0`);
  await again.locator('#edge-heads-error').waitFor({ timeout: LOAD_TIMEOUT });
  assert.match(await again.locator('#edge-heads-error').textContent(), /not a node of this graph/);
  assert.deepEqual(problems, []);
  assert.deepEqual(againProblems, []);
  await again.close();
  await page.close();
});

test('a prompt begun with <|endoftext|>, as circuit-tracer begins it, leaves that position\'s features out of the graph', async () => {
  const { page, problems } = await openPage(env.browser, `${env.url}#/circuit?text=The%20jury%20said`);
  await page.locator('#circuit-graph circle.feature').first().waitFor({ timeout: LOAD_TIMEOUT });
  const atFirst = () => page.locator('#circuit-graph circle.feature').evaluateAll((cs) => cs.filter((c) => /_0$/.test(c.getAttribute('data-node'))).length);
  assert.ok(await atFirst() > 0);
  assert.equal(await page.locator('#circuit-bos').isChecked(), false);
  await page.locator('#circuit-bos').check();
  await page.waitForFunction(() => decodeURIComponent(location.hash).includes('text=<|endoftext|>The'));
  assert.equal(await page.locator('#circuit-prompt').inputValue(), '<|endoftext|>The jury said');
  // The graph of four tokens: features from position 1 on, none at the separator's.
  await page.waitForFunction(() => {
    const ids = [...document.querySelectorAll('#circuit-graph circle.feature')].map((c) => c.getAttribute('data-node'));
    return ids.length > 0 && !ids.some((id) => /_0$/.test(id)) && ids.some((id) => /_3$/.test(id));
  }, null, { timeout: 60_000 });
  await page.locator('#circuit-bos').uncheck();
  await page.waitForFunction(() => !decodeURIComponent(location.hash).includes('endoftext'));
  assert.equal(await page.locator('#circuit-prompt').inputValue(), 'The jury said');
  assert.deepEqual(problems, []);
  await page.close();
});

test('two prompts side by side: the second graph matched to the first, what appears, vanishes or flips sign; the link reproduces it', async () => {
  const { page, problems } = await openPage(env.browser, `${env.url}#/circuit?text=The%20men%20said%20that%20they`);
  await page.locator('#circuit-graph circle.feature').first().waitFor({ timeout: LOAD_TIMEOUT });
  assert.equal(await page.locator('#comparison').count(), 0);
  await page.locator('#circuit-vs').fill('The woman said that she');
  await page.locator('#circuit-vs').press('Enter');
  await page.waitForFunction(() => location.hash.includes('vs='));
  await page.locator('#compare-table tbody tr').first().waitFor({ timeout: 60_000 });
  const counts = await page.locator('#compare-counts').textContent();
  const [appear, vanish, flip, stay] = counts.match(/\d+/g).map(Number);
  assert.ok(appear + vanish > 0 && stay > 0, counts);
  // Only what changed is listed, each row saying how; a node only in the second graph
  // is absent from the first.
  const rows = page.locator('#compare-table tbody tr');
  const n = await rows.count();
  assert.equal(n, Math.min(40, appear + vanish + flip));
  for (let i = 0; i < n; i += 1) {
    const cells = await rows.nth(i).locator('td').allTextContents();
    assert.match(cells[4], /^(appears|vanishes|flips sign)$/);
    if (cells[4] === 'appears') assert.equal(cells[2], 'absent');
    if (cells[4] === 'vanishes') assert.equal(cells[3], 'absent');
  }
  await screenshot(page, 'circuit-compare');
  // A node of the first graph listed there opens in its details.
  const listed = page.locator('#compare-table button.link').first();
  if (await listed.count()) {
    await listed.click();
    await page.locator('#node-details').waitFor({ timeout: 10_000 });
  }
  // The link reproduces it.
  const { page: again, problems: againProblems } = await openPage(env.browser, page.url());
  await again.locator('#compare-counts').waitFor({ timeout: LOAD_TIMEOUT });
  assert.equal(await again.locator('#compare-counts').textContent(), counts);
  // The two prompts' likeliest tokens differ: the logit difference is one click away.
  await again.locator('#compare-versus').click();
  await again.waitForFunction(() => location.hash.includes('versus='));
  await again.waitForFunction(() => document.querySelectorAll('#circuit-graph circle.logit').length === 1, null, { timeout: 60_000 });
  // A prompt against itself: everything stays.
  await again.goto(`${env.url}#/circuit?text=The%20men%20said%20that%20they&vs=The%20men%20said%20that%20they`);
  await again.locator('#compare-counts').waitFor({ timeout: LOAD_TIMEOUT });
  assert.match(await again.locator('#compare-counts').textContent(), /^0 appear, 0 vanish, 0 flip/);
  assert.deepEqual(problems, []);
  assert.deepEqual(againProblems, []);
  await again.close();
  await page.close();
});

test('suggested groups: features alike in a graph are offered as supernodes, accepted under a new name or rejected', async () => {
  const { page, problems } = await openPage(env.browser, `${env.url}#/circuit?text=${PROMPT}`);
  await page.locator('#suggestions li').first().waitFor({ timeout: LOAD_TIMEOUT });
  const offered = await page.locator('#suggestions li').count();
  const first = page.locator('#suggestions li').first();
  assert.notEqual(await first.locator('.suggestion-name').inputValue(), '');
  const members = await first.locator('button.link').allTextContents();
  assert.ok(members.length >= 2, members.join(','));
  await screenshot(page, 'circuit-suggestions');
  // Accepted under a name of one's own: a supernode in the link with those members.
  await first.locator('.suggestion-name').fill('alike ones');
  await first.locator('.accept').click();
  const hash = () => page.evaluate(() => decodeURIComponent(location.hash.replace(/\+/g, ' ')));
  await page.waitForFunction(() => decodeURIComponent(location.hash.replace(/\+/g, ' ')).includes('groups=alike ones:'));
  await page.locator('#subgraph [data-subgraph-node="supernode:alike ones"]').waitFor();
  const link = await hash();
  for (const id of members) assert.ok(link.includes(id), `${id} in ${link}`);
  assert.equal(await page.locator('#suggestions li').count() + 1, offered);
  // Rejected: gone from the list, nothing grouped.
  if (offered > 1) {
    await page.locator('#suggestions li').first().locator('.reject').click();
    await page.waitForFunction((n) => document.querySelectorAll('#suggestions li').length === n, offered - 2);
    assert.equal(((await hash()).match(/;/g) ?? []).length, 0);
  }
  assert.deepEqual(problems, []);
  await page.close();
});

test('a 48-token prompt gets a graph of its most influential features', async () => {
  const text = "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election produced no evidence that any irregularities took place. The jury further said in term-end presentments that the City Executive Committee, which";
  const started = Date.now();
  const { page, problems } = await openPage(env.browser, `${env.url}#/circuit?text=${encodeURIComponent(text)}`);
  await page.locator('#circuit-graph circle').first().waitFor({ timeout: LOAD_TIMEOUT });
  console.log(`# navigation to a drawn 48-token graph: ${Date.now() - started} ms`);
  const tokens = await page.locator('#circuit-graph text.token').count();
  assert.ok(tokens >= 40 && tokens <= 64, `${tokens} tokens`);
  assert.match(await page.locator('#attributed-note').textContent(), /most influential/);
  const { nodes } = await summary(page);
  assert.ok(nodes > 20, `${nodes} nodes`);
  await screenshot(page, 'circuit-long');
  // Double-clicking a feature opens its feature view.
  const id = await page.locator('#circuit-graph circle.feature').first().getAttribute('data-node');
  const [layer, feature] = id.split('_');
  await page.locator('#circuit-graph circle.feature').first().dblclick();
  await page.waitForFunction((want) => location.hash.startsWith(want), `#/feature/${layer}/${feature}`);
  assert.deepEqual(problems, []);
});

/** The graph's JSON export, as the page offers it. */
async function exportOf(page) {
  const href = await page.locator('#circuit-export').getAttribute('href');
  return JSON.parse(decodeURIComponent(href.slice(href.indexOf(',') + 1)));
}

/** Opens `text`'s graph in `page` (through its prompt box) and waits for how it was computed. */
async function graphWork(page, text) {
  await page.locator('#circuit-prompt').fill(text);
  await page.locator('#circuit-prompt').press('Enter');
  await page.waitForFunction((t) => document.querySelector('#graph-work') && document.querySelector('#attributed-note') && decodeURIComponent(location.hash.replace(/\+/g, ' ')).includes(t), text, { timeout: LOAD_TIMEOUT });
  const note = page.locator('#graph-work');
  return { workers: Number(await note.getAttribute('data-workers')), text: await note.textContent() };
}

test('a graph spread over helper workers, and a steered text\'s unsteered twin continued by one, are what the engine worker computes alone', async () => {
  const prompts = [
    'The jury said that the city of Atlanta had been',
    'In the morning the men of the village went to the',
    'She said that the President would not be able to',
    'The committee reported that the new school was',
  ];
  const { page: spread, problems } = await openPage(env.browser, `${env.url}?engine=cpu&workers=3#/circuit?text=${PROMPT}`);
  await spread.locator('#graph-work').waitFor({ timeout: LOAD_TIMEOUT });
  // Three helpers beside the engine worker, which hands the batches out.
  assert.equal(await spread.locator('#graph-work').getAttribute('data-workers'), '4');
  // The helpers start with the first graph and load the pack from the browser's cache;
  // a later graph finds them ready.
  let chosen;
  for (const text of prompts) {
    const work = await graphWork(spread, text);
    console.log(`# ${text}: ${work.text}`);
    const helpers = work.text.match(/and ([\d, ]+) in its helpers/)?.[1].split(', ').map(Number) ?? [];
    if (work.workers === 4 && helpers.some((n) => n > 0)) {
      chosen = text;
      break;
    }
  }
  assert.ok(chosen, 'no graph was carried by the helpers');
  const together = await exportOf(spread);
  const { page: alone } = await openPage(env.browser, `${env.url}?engine=cpu&workers=1#/circuit?text=${encodeURIComponent(chosen)}`);
  await alone.locator('#graph-work').waitFor({ timeout: LOAD_TIMEOUT });
  assert.equal(await alone.locator('#graph-work').getAttribute('data-workers'), '1');
  assert.match(await alone.locator('#graph-work').textContent(), /engine worker alone/);
  assert.deepEqual(together, await exportOf(alone));
  // Steering: the unsteered text, continued by a helper meanwhile, is the one continued
  // alone.
  const steer = `#/steer?text=${encodeURIComponent(chosen)}&f=1/3:x0,0/7:c6&n=20&t=0.8&seed=3`;
  const texts = async (page) => {
    await page.evaluate((hash) => { location.hash = hash; }, steer);
    await page.locator('#steered').waitFor({ timeout: LOAD_TIMEOUT });
    return [await page.locator('#baseline').textContent(), await page.locator('#steered').textContent()];
  };
  const [spreadTexts, aloneTexts] = [await texts(spread), await texts(alone)];
  console.log(`# steered beside a helper: ${JSON.stringify(spreadTexts)}`);
  assert.deepEqual(spreadTexts, aloneTexts);
  assert.notEqual(spreadTexts[0], spreadTexts[1]);
  assert.deepEqual(problems, []);
});
