// `?pack=URL` opens a pack from any static host: a copy of the default pack served by a
// second server (another origin, as another site would be) loads and answers; a host that
// does not allow cross-origin reads, and addresses that are not a pack folder's, get a
// message that says why, never a blank page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join, normalize } from 'node:path';
import { distDir, openPage, screenshot, LOAD_TIMEOUT, useBrowser } from './harness.mjs';

const env = useBrowser();
const pack = join(distDir, 'packs/brown');

/** Serves the default pack's files under /mirror/, with or without CORS; counts requests. */
async function mirror({ cors }) {
  const seen = [];
  const server = createServer(async (request, response) => {
    const path = decodeURIComponent(new URL(request.url, 'http://localhost').pathname);
    seen.push(path);
    const headers = cors ? { 'access-control-allow-origin': '*' } : {};
    const file = normalize(join(pack, path.replace(/^\/mirror\//, '')));
    if (!path.startsWith('/mirror/') || !file.startsWith(pack)) {
      response.writeHead(404, headers).end();
      return;
    }
    try {
      const body = await readFile(file);
      response.writeHead(200, { ...headers, 'content-type': 'application/octet-stream' }).end(body);
    } catch {
      response.writeHead(404, headers).end('not found');
    }
  });
  await new Promise((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address();
  return { base: `http://127.0.0.1:${port}/mirror/`, seen, close: () => new Promise((done) => server.close(done)) };
}

const hosts = {};
before(async () => {
  hosts.open = await mirror({ cors: true });
  hosts.closed = await mirror({ cors: false });
});
after(async () => {
  await hosts.open?.close();
  await hosts.closed?.close();
});

test('a pack on another site opens from ?pack= and answers', async () => {
  const link = `${env.url}?pack=${encodeURIComponent(hosts.open.base)}#/prompt?text=The%20jury%20said`;
  const { page, problems } = await openPage(env.browser, link);
  await page.locator('#predictions tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
  assert.ok(hosts.open.seen.includes('/mirror/manifest.json'), hosts.open.seen.join(', '));
  assert.ok(hosts.open.seen.some((p) => p.startsWith('/mirror/model/')), hosts.open.seen.join(', '));
  await screenshot(page, 'pack-link');
  assert.deepEqual(problems, []);
});

test('a host that does not allow cross-origin reads is named as the reason', async () => {
  const link = `${env.url}?pack=${encodeURIComponent(hosts.closed.base)}#/prompt`;
  const { page } = await openPage(env.browser, link);
  await page.locator('#load-failed').waitFor({ timeout: LOAD_TIMEOUT });
  const text = await page.locator('#load-failed').textContent();
  assert.match(text, /manifest\.json/);
  assert.match(text, /CORS/);
});

test('an address that is not a pack folder says what pack= takes', async () => {
  for (const [value, reason] of [
    ['javascript:alert(1)', /only http and https/],
    ['https://', /names no host/],
  ]) {
    const { page, problems } = await openPage(env.browser, `${env.url}?pack=${encodeURIComponent(value)}#/prompt`);
    await page.locator('#load-failed').waitFor({ timeout: 60_000 });
    const text = await page.locator('#load-failed').textContent();
    assert.match(text, reason);
    assert.match(text, /pack= takes the address of a pack folder/);
    assert.deepEqual(problems, []);
    await page.close();
  }
});
