// The attention and logit-lens views against the release build and the default pack:
// each renders from its link, a head or block chosen goes into the link, and a link to a
// block the model does not have says so instead of breaking the page; a cell of the
// attention map splits its score (QK attribution).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, screenshot, LOAD_TIMEOUT, useBrowser } from './harness.mjs';

const env = useBrowser();

const PROMPT = encodeURIComponent('The jury said that the city of Atlanta');

test('the attention view shows every head of a block and the chosen one large', async () => {
  const { page, problems } = await openPage(env.browser, `${env.url}#/attention?text=${PROMPT}&layer=1`);
  await page.locator('#attention-title').waitFor({ timeout: LOAD_TIMEOUT });
  const heads = await page.locator('.thumbs button.thumb').count();
  assert.equal(heads, 4);
  assert.match(await page.locator('#attention-title').textContent(), /Block 1, head 0/);
  // The large map: a row label per token (8 of them), a cell for each query and each key
  // up to it.
  const tokens = await page.locator('.graph-scroll svg.attention text.axis[text-anchor="end"]').count();
  assert.equal(tokens, 8);
  const cells = await page.locator('.graph-scroll svg.attention rect.cell').count();
  assert.equal(cells, (tokens * (tokens + 1)) / 2);
  await page.locator('#head-2').click();
  await page.waitForFunction(() => /head=2/.test(location.hash));
  await page.waitForFunction(() => /head 2/.test(document.querySelector('#attention-title')?.textContent ?? ''));
  await page.locator('#block-3').click();
  await page.waitForFunction(() => /layer=3/.test(location.hash));
  await page.waitForFunction(() => /Block 3/.test(document.querySelector('#attention-title')?.textContent ?? ''));
  await screenshot(page, 'attention');
  assert.deepEqual(problems, []);
  // A block the model does not have: the reason, and the page stays.
  const { page: bad, problems: badProblems } = await openPage(env.browser, `${env.url}#/attention?text=${PROMPT}&layer=9`);
  await bad.locator('#attention-error').waitFor({ timeout: LOAD_TIMEOUT });
  assert.match(await bad.locator('#attention-error').textContent(), /no block 9/);
  assert.ok(await bad.locator('#attention-prompt').isVisible());
  assert.deepEqual(badProblems, []);
});

test('why a head looked there: a cell of the map splits its score into query-side and key-side parts that sum to it', async () => {
  const { page, problems } = await openPage(env.browser, `${env.url}#/attention?text=${PROMPT}&layer=2&head=3`);
  await page.locator('.graph-scroll svg.attention rect.cell').first().waitFor({ timeout: LOAD_TIMEOUT });
  assert.equal(await page.locator('#qk').count(), 0);
  await page.locator('.graph-scroll rect[data-cell="7_4"]').click();
  await page.waitForFunction(() => /qk=7_4/.test(location.hash));
  await page.locator('#qk-score').waitFor({ timeout: 60_000 });
  const stated = await page.locator('#qk-score').textContent();
  const [, score, , sum] = stated.match(/Score (-?\d+\.\d+) \(attention (\d+\.\d+)\); its \d+ terms sum to (-?\d+\.\d+)/);
  assert.ok(Math.abs(Number(score) - Number(sum)) <= 0.002, stated);
  assert.ok((await page.locator('#qk-terms tbody tr').count()) > 0);
  assert.equal(await page.locator('#qk-query-parts li').count(), 8);
  assert.match(await page.locator('#qk-key-parts').textContent(), /feature \d\/\d+|embedding|attention of block|error of block|bias/);
  assert.match(await page.locator('.graph-scroll rect.cell.selected').getAttribute('data-cell'), /^7_4$/);
  await screenshot(page, 'attention-qk');
  // The link reproduces it; a feature part opens its feature.
  const { page: again, problems: againProblems } = await openPage(env.browser, page.url());
  await again.locator('#qk-score').waitFor({ timeout: LOAD_TIMEOUT });
  assert.equal(await again.locator('#qk-score').textContent(), stated);
  const feature = again.locator('#qk-terms a, #qk-key-parts a, #qk-query-parts a').first();
  if (await feature.count()) {
    await feature.click();
    await again.waitForFunction(() => location.hash.startsWith('#/feature/'));
  }
  // A key after its query is refused with the reason.
  await again.goto(`${env.url}#/attention?text=${PROMPT}&layer=2&head=3&qk=2_5`);
  await again.locator('#qk-error').waitFor({ timeout: LOAD_TIMEOUT });
  assert.match(await again.locator('#qk-error').textContent(), /reads keys at or before it/);
  assert.deepEqual(problems, []);
  assert.deepEqual(againProblems, []);
  await again.close();
  await page.close();
});

test('the logit lens reads the residual stream after every block', async () => {
  const { page, problems } = await openPage(env.browser, `${env.url}#/lens?text=${PROMPT}`);
  await page.locator('#lens tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
  // The embeddings and four blocks, the model's own prediction on top.
  assert.equal(await page.locator('#lens tbody tr').count(), 5);
  assert.match(await page.locator('#lens tbody tr:first-child th').textContent(), /after block 3/);
  assert.match(await page.locator('#lens tbody tr:last-child th').textContent(), /embeddings/);
  const columns = await page.locator('#lens thead th').count();
  const cells = await page.locator('#lens tbody tr:first-child td').count();
  assert.equal(cells, columns - 1);
  assert.ok(cells >= 6, `${cells} positions`);
  const title = await page.locator('#lens tbody tr:first-child td').first().getAttribute('title');
  assert.match(title, /next token: rank \d+/);
  // The top row's last cell is the prompt view's first prediction.
  const lastCell = (await page.locator('#lens tbody tr:first-child td').last().textContent()).trim();
  const { page: prompt } = await openPage(env.browser, `${env.url}#/prompt?text=${PROMPT}`);
  await prompt.locator('#predictions tbody tr code').first().waitFor({ timeout: LOAD_TIMEOUT });
  const predicted = (await prompt.locator('#predictions tbody tr code').first().textContent()).trim();
  assert.equal(predicted, lastCell);
  await screenshot(page, 'lens');
  assert.deepEqual(problems, []);
});

test('what is being typed in a view\'s box survives the view re-rendering, and Enter commits it', async () => {
  const { page, problems } = await openPage(env.browser, `${env.url}#/lens?text=The%20jury`);
  await page.locator('#lens tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
  const box = page.locator('#lens-prompt');
  await box.focus();
  await box.press('End');
  await page.keyboard.type(' said that');
  // The view re-renders while the box keeps the focus (here the link changes under it,
  // as an answer or the engine's progress would re-render it): the draft stays.
  await page.evaluate(() => {
    history.replaceState(null, '', `${location.pathname}${location.search}${location.hash}&text=again`);
    dispatchEvent(new PopStateEvent('popstate'));
  });
  await page.locator('.link-error').waitFor({ timeout: 10_000 });
  assert.equal(await box.inputValue(), 'The jury said that');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'lens-prompt');
  await box.press('Enter');
  await page.waitForFunction(() => decodeURIComponent(location.hash.replaceAll('+', ' ')).includes('text=The jury said that'));
  await page.waitForFunction(() => document.querySelectorAll('#lens thead th').length >= 5);
  // A new link replaces the draft with its own text.
  await page.goto(`${env.url}#/lens?text=In%20the%20morning`);
  await page.waitForFunction(() => document.querySelector('#lens-prompt')?.value === 'In the morning');
  assert.deepEqual(problems, []);
});

test('steering without the syntax: find a feature, set it with a preset or the slider, remove it', async () => {
  const { page, problems } = await openPage(env.browser, `${env.url}#/steer?text=The%20man%20said%20that&n=8`);
  await page.locator('#steer-problem').waitFor({ timeout: LOAD_TIMEOUT });
  // Search by tag: numbers.
  await page.locator('#steer-search').fill('CD');
  await page.locator('#steer-search').press('Enter');
  await page.locator('#steer-hits .steer-add').first().waitFor({ timeout: LOAD_TIMEOUT });
  await page.locator('#steer-hits .steer-add').first().click();
  await page.waitForFunction(() => /f=\d+%2F\d+%3Ac10/.test(location.hash));
  const row = page.locator('.steer-row').first();
  const feature = await row.getAttribute('data-feature');
  // Its record marks what is typical; a preset sets the clamp from it, in the link.
  await row.locator('.steer-typical').waitFor({ timeout: LOAD_TIMEOUT });
  const strongest = Number((await row.locator('.steer-typical').textContent()).match(/at most ([\d.]+)/)[1]);
  assert.ok(strongest > 0);
  await row.getByRole('button', { name: '2× strongest' }).click();
  await page.waitForFunction((f) => decodeURIComponent(location.hash).includes(`f=${f}:c`) && !/c10(&|$)/.test(location.hash), feature);
  const clamp = Number(decodeURIComponent(await page.evaluate(() => location.hash)).match(/:c([\d.]+)/)[1]);
  assert.ok(Math.abs(clamp - 2 * strongest) < 0.02, `${clamp} vs ${strongest}`);
  await page.locator('#steered').waitFor({ timeout: LOAD_TIMEOUT });
  // The slider writes the link when let go.
  await row.locator('.steer-slider').fill('1');
  await page.waitForFunction(() => /%3Ac1(&|$)/.test(location.hash));
  // Ablate, then remove: the list empties and the view says what to do.
  await row.getByRole('button', { name: 'ablate' }).click();
  await page.waitForFunction(() => /%3Ax0(&|$)/.test(location.hash));
  await page.locator('.steer-remove').first().click();
  await page.locator('#steer-problem').waitFor({ timeout: 30_000 });
  assert.equal(await page.locator('.steer-row').count(), 0);
  await screenshot(page, 'steer-picker');
  assert.deepEqual(problems, []);
});
