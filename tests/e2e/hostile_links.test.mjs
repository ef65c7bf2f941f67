// Hostile and malformed links, one after another in one page: for each, the page answers
// with a message naming the problem, keeps what the rest of the link carried, and stays
// responsive (the next link is answered in the same page). The pack loads once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openPage, screenshot, LOAD_TIMEOUT, useBrowser } from './harness.mjs';

const env = useBrowser();
const enc = encodeURIComponent;

/** Each case: the view's link, where the message shows, what it says, and a field kept. */
const CASES = [
  { name: 'a prompt of 100 kB', link: `#/prompt?text=${enc('a'.repeat(100_000))}`, at: '#prompt-error', says: /100000 bytes long; at most 65536/ },
  { name: 'a prompt longer than the context', link: `#/prompt?text=${enc('word '.repeat(300))}`, at: '#prompt-error', says: /at most 128/ },
  { name: '65 steered features', link: `#/steer?text=The%20jury&f=${[...Array(65).keys()].map((i) => `0/${i}:x0`).join(',')}`, at: '#steer-problem', says: /more than 64 steered features/, kept: ['#steer-prompt', 'The jury'] },
  { name: 'a steered feature that is not one', link: '#/steer?text=The%20jury&f=not-a-feature', at: '#steer-problem', says: /not-a-feature/, kept: ['#steer-prompt', 'The jury'] },
  { name: 'a steered value that is not a number', link: '#/steer?text=The%20jury&f=0/1:cNaN', at: '#steer-problem', says: /0\/1:cNaN/, kept: ['#steer-prompt', 'The jury'] },
  { name: 'a negative token count', link: '#/steer?text=In%20the%20morning&f=1/5:c60&n=-1', at: '.link-error', says: /n="-1" was ignored/, kept: ['#steer-features', '1/5:c60'] },
  { name: 'a seed that is not a number', link: '#/steer?text=In%20the%20morning&f=1/5:c60&seed=abc', at: '.link-error', says: /seed="abc" was ignored/, kept: ['#steer-prompt', 'In the morning'] },
  { name: 'too many tokens to generate', link: '#/steer?text=In%20the%20morning&f=1/5:c60&n=100000', at: '#steer-error, .link-error', says: /generate 1 to 64|n="100000"/, kept: ['#steer-prompt', 'In the morning'] },
  { name: 'a temperature out of range', link: '#/steer?text=In%20the%20morning&f=1/5:c60&t=1e9', at: '#steer-error, #steer-problem, .link-error', says: /temperature/, kept: ['#steer-prompt', 'In the morning'] },
  { name: 'a field given twice', link: '#/lens?text=The%20jury&text=ignored', at: '.link-error', says: /text is given more than once/, kept: ['#lens-prompt', 'The jury'] },
  { name: 'forty fields', link: `#/lens?text=The%20jury&${[...Array(40).keys()].map((i) => `x${i}=1`).join('&')}`, at: '.link-error', says: /the first 32 fields are read/, kept: ['#lens-prompt', 'The jury'] },
  { name: 'a block the model lacks', link: '#/attention?text=The%20jury&layer=9', at: '#attention-error', says: /no block 9/, kept: ['#attention-prompt', 'The jury'] },
  { name: 'a feature the block lacks', link: '#/feature/0/999999', at: '#feature-error', says: /block 0 has features 0 to \d+, not 999999/ },
  { name: 'a dictionary the model lacks', link: '#/feature/9/1', at: '#feature-error', says: /block 9/ },
  { name: 'node thresholds that are not shares', link: '#/circuit?text=The%20jury&nodes=abc', at: '.link-error', says: /nodes="abc" was ignored/, kept: ['#circuit-prompt', 'The jury'] },
  { name: 'a node threshold above one', link: '#/circuit?text=The%20jury&nodes=7', at: '.link-error, #circuit-error', says: /node|nodes/, kept: ['#circuit-prompt', 'The jury'] },
  { name: 'a circuit prompt over 64 tokens', link: `#/circuit?text=${enc('the jury said '.repeat(30))}`, at: '#circuit-error', says: /at most 64|graphs are computed for at most/ },
  { name: '65 supernodes', link: `#/circuit?text=The%20jury&groups=${enc([...Array(65).keys()].map((i) => `g${i}:1_2_0`).join(';'))}`, at: '#groups-error', says: /more than 64 supernodes/, kept: ['#circuit-prompt', 'The jury'] },
  { name: 'a supernode of 300 members', link: `#/circuit?text=The%20jury&groups=${enc(`big:${[...Array(300).keys()].map((i) => `1_${i}_0`).join(',')}`)}`, at: '#groups-error', says: /has 300 members; at most 256/, kept: ['#circuit-prompt', 'The jury'] },
  { name: '3000 pins', link: `#/circuit?text=The%20jury&pin=${[...Array(3000).keys()].map((i) => `1_${i}_0`).join(',')}`, at: '#pins-error', says: /more than 2048 nodes/, kept: ['#circuit-prompt', 'The jury'] },
  { name: 'graph steering past the prompt', link: '#/circuit?text=The%20jury&steer=0_1_9:0', at: '#graph-steer-error', says: /position 9 is past the prompt/, kept: ['#circuit-prompt', 'The jury'] },
  { name: 'graph steering tokens out of range', link: '#/circuit?text=The%20jury&steer=0_1_0:0&n=500', at: '#graph-steer-problem', says: /graph steering generates 1 to 20/, kept: ['#circuit-prompt', 'The jury'] },
  { name: 'graph steering tokens that are not a number', link: '#/circuit?text=The%20jury&steer=0_1_0:0&n=abc', at: '.link-error', says: /n="abc" was ignored/, kept: ['#circuit-prompt', 'The jury'] },
  { name: 'graph steering attention neither free nor frozen', link: '#/circuit?text=The%20jury&steer=0_1_0:0&attn=banana', at: '.link-error', says: /attn="banana" was ignored: .*free or frozen/, kept: ['#circuit-prompt', 'The jury'] },
  { name: 'a node set twice in graph steering', link: '#/circuit?text=The%20jury&steer=0_1_0:0,0_1_0:2', at: '#graph-steer-problem', says: /already set/, kept: ['#circuit-prompt', 'The jury'] },
  { name: 'a second prompt over 64 tokens', link: `#/circuit?text=The%20jury&vs=${enc('the jury said '.repeat(30))}`, at: '#compare-error', says: /at most 64/, kept: ['#circuit-prompt', 'The jury'] },
  { name: 'an unknown view', link: '#/nowhere?x=1', at: 'h2', says: /No such view/ },
  { name: 'a search of 100 kB', link: `#/search?q=${enc(`text:${'b'.repeat(100_000)}`)}`, at: '#search-error', says: /at most 65536/ },
];

test('hostile and malformed links are each answered with the problem named, the rest kept', async () => {
  const { page, problems } = await openPage(env.browser, `${env.url}#/`);
  await page.locator('#pack-info').waitFor({ timeout: LOAD_TIMEOUT });
  for (const c of CASES) {
    await page.goto(`${env.url}${c.link}`);
    await page.waitForFunction(
      ([selector, source]) => [...document.querySelectorAll(selector)].some((e) => new RegExp(source).test(e.textContent)),
      [c.at, c.says.source],
      { timeout: 60_000 },
    ).catch(async () => {
      const shown = await page.locator('main').textContent();
      assert.fail(`${c.name}: no ${c.at} saying ${c.says} (the page shows: ${shown.slice(0, 400)})`);
    });
    if (c.kept) assert.equal(await page.locator(c.kept[0]).inputValue(), c.kept[1], `${c.name}: ${c.kept[0]} kept`);
  }
  // Still responsive after all of them: a good link is answered.
  await page.goto(`${env.url}#/prompt?text=The%20jury%20said`);
  await page.locator('#predictions tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
  await screenshot(page, 'after-hostile-links');
  console.log(`# ${CASES.length} hostile links answered`);
  assert.deepEqual(problems, []);
});
