// The pack picker: the packs listed in packs/index.json beside the page (as `cargo xtask
// serve --pack NAME` lists the packs it serves), the open one selected; choosing another
// reopens the page on it, on the same view. With one pack listed there is no picker.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { serveDist, launchChromium, openPage, screenshot, LOAD_TIMEOUT } from './harness.mjs';

const index = JSON.stringify({
  packs: [
    { name: 'brown', path: 'brown/', description: 'the default pack' },
    { name: 'copy', path: 'copy/', description: 'a second pack beside it' },
  ],
});

let two;
let browser;
before(async () => {
  two = await serveDist({ aliases: { '/packs/copy/': '/packs/brown/' }, overrides: { '/packs/index.json': index } });
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await two?.close();
});

test('the picker lists the packs beside the page and opens the one chosen on the same view', async () => {
  const { page, problems } = await openPage(browser, `${two.url}#/prompt?text=The%20jury%20said`);
  await page.locator('#predictions tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
  const picker = page.locator('.pack-picker select');
  await picker.waitFor();
  assert.deepEqual(await picker.locator('option').allTextContents(), ['brown', 'copy']);
  assert.equal(await picker.inputValue(), 'brown/');
  await Promise.all([page.waitForURL(/\?pack=packs\/copy\//), picker.selectOption('copy/')]);
  await page.locator('#predictions tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
  assert.match(page.url(), /#\/prompt\?text=The%20jury%20said$/);
  assert.ok(two.seen.includes('/packs/copy/manifest.json'), two.seen.join(', '));
  assert.equal(await page.locator('.pack-picker select').inputValue(), 'copy/');
  await screenshot(page, 'pack-picker');
  assert.deepEqual(problems, []);
  await page.close();
});

test('one pack listed, or an index that is not one, shows no picker', async () => {
  for (const body of [null, '{"packs": [{"name": "x", "path": "../../etc/"}]}']) {
    const server = await serveDist(body === null ? {} : { overrides: { '/packs/index.json': body } });
    try {
      const { page, problems } = await openPage(browser, `${server.url}#/prompt?text=The%20jury`);
      await page.locator('#predictions tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
      assert.equal(await page.locator('.pack-picker').count(), 0);
      assert.ok(server.seen.includes('/packs/index.json'));
      assert.deepEqual(problems, []);
      await page.close();
    } finally {
      await server.close();
    }
  }
});
