// The built-in lessons in the page: listed on the home page, each step's text beside its
// live view with the lesson's claims shown (the claims themselves are recomputed from the
// pack by `cargo test -p glassbox-lab --test lessons`), Back and Next through every step,
// a step kept open while the student tries something, a step link reloaded, and lesson
// links that cannot be followed answered with the reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { openPage, screenshot, root, serveDist, LOAD_TIMEOUT, useBrowser } from './harness.mjs';

const env = useBrowser();
const lessonsDir = join(root, 'www/lessons');
const lessons = readdirSync(lessonsDir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => [f.replace(/\.json$/, ''), JSON.parse(readFileSync(join(lessonsDir, f), 'utf8'))]);
const lesson = lessons.find(([name]) => name === 'predictions')[1];

/** What a step's view must show: what its first claim names, where that view shows it. */
async function viewShowsClaim(page, step) {
  const claim = step.claims[0];
  const [selector, expected] = {
    top_prediction: ['#predictions', claim.token?.trim()],
    lens_settles: ['#lens', claim.token?.trim()],
    best_tag: ['#feature-title', `${claim.layer}`],
    steered_contains: ['#steered', claim.text],
  }[claim.kind];
  await page.waitForFunction(
    ([selector, text]) => (document.querySelector(selector)?.textContent ?? '').includes(text),
    [selector, expected],
    { timeout: LOAD_TIMEOUT },
  );
}

for (const [name, walked] of lessons) {
  test(`the lesson “${walked.title}” walks from the home page through every step beside its live view`, async () => {
    const { page, problems } = await openPage(env.browser, `${env.url}#/`);
    await page.locator('#lessons a').first().waitFor({ timeout: LOAD_TIMEOUT });
    await page.locator('#lessons a', { hasText: walked.title }).click();
    for (const [i, step] of walked.steps.entries()) {
      const n = i + 1;
      await page.locator(`#lesson[data-step="${n}"]`).waitFor({ timeout: LOAD_TIMEOUT });
      assert.equal(await page.locator('#lesson-step-title').textContent(), step.title);
      assert.match(await page.locator('.lesson-where').textContent(), new RegExp(`step ${n} of ${walked.steps.length}`));
      assert.ok(await page.locator('#lesson-claims li').count() >= 1);
      await viewShowsClaim(page, step);
      // The text is text: the markers are gone, the words set in elements.
      assert.doesNotMatch(await page.locator('#lesson').innerHTML(), /\*\*/);
      await screenshot(page, `lesson-${name}-${n}`);
      if (n < walked.steps.length) {
        await page.locator('#lesson-next').click();
      }
    }
    await page.locator('#lesson-finish').waitFor({ timeout: 10_000 });
    if (walked.steps.length > 1) {
      await page.locator('#lesson-back').click();
      await page.locator(`#lesson[data-step="${walked.steps.length - 1}"]`).waitFor({ timeout: 30_000 });
    }
    assert.deepEqual(problems, []);
  });
}

test('a step stays open while the student tries something, reloads from its link, and closes', async () => {
  const link = `${env.url}#${lesson.steps[0].view}&lesson=predictions&step=1`;
  const { page, problems } = await openPage(env.browser, link);
  await viewShowsClaim(page, lesson.steps[0]);
  // Trying something: the view's link changes, the step stays, with a way back.
  await page.locator('#prompt').fill('The President of the Soviet');
  await page.waitForFunction(() => /Soviet/.test(decodeURIComponent(location.hash)));
  await page.locator('#lesson-return').waitFor({ timeout: 30_000 });
  assert.equal(await page.locator('#lesson').getAttribute('data-step'), '1');
  await page.locator('#lesson-return').click();
  await viewShowsClaim(page, lesson.steps[0]);
  assert.equal(await page.locator('#lesson-return').count(), 0);
  // The link of a later step opens that step after a reload.
  await page.goto(`${env.url}#${lesson.steps[2].view}&lesson=predictions&step=3`);
  await page.reload();
  await page.locator('#lesson[data-step="3"]').waitFor({ timeout: LOAD_TIMEOUT });
  await viewShowsClaim(page, lesson.steps[2]);
  await page.locator('#lesson-close').click();
  await page.waitForFunction(() => !document.querySelector('#lesson'));
  assert.ok(!/lesson=/.test(await page.evaluate(() => location.hash)));
  assert.deepEqual(problems, []);
});

test('lesson links that cannot be followed say why and the view still answers', async () => {
  const cases = [
    ['#/prompt?text=a&lesson=no-such-lesson&step=1', /no lesson called “no-such-lesson”/],
    ['#/prompt?text=a&lesson=predictions&step=99', /has 4 steps; the link asks for step 99/],
  ];
  for (const [hash, reason] of cases) {
    const { page, problems } = await openPage(env.browser, `${env.url}${hash}`);
    await page.locator('#lesson-refused').waitFor({ timeout: LOAD_TIMEOUT });
    assert.match(await page.locator('#lesson-refused').textContent(), reason);
    await page.locator('#predictions tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
    assert.deepEqual(problems, []);
    await page.close();
  }
});

test('a teacher link hides controls by name, and embed mode keeps the chrome minimal with its snippet', async () => {
  const step = `#${lesson.steps[0].view}&lesson=predictions&step=1`;
  const { page, problems } = await openPage(env.browser, `${env.url}?hide=engine,prompt,nav,open,nonsense${step}`);
  await viewShowsClaim(page, lesson.steps[0]);
  await page.locator('#engine-status[data-engine]').waitFor({ timeout: LOAD_TIMEOUT });
  // Hidden by name: the engine switch, the prompt box, the view links, "Open a model…".
  assert.equal(await page.locator('#engine-switch').isVisible(), false);
  assert.equal(await page.locator('#prompt').isVisible(), false);
  assert.equal(await page.locator('header.site nav').isVisible(), false);
  assert.equal(await page.locator('.open-model').isVisible(), false);
  // What the lesson needs stays; an unknown name is named, with the names that work.
  assert.ok(await page.locator('#lesson').isVisible());
  assert.ok(await page.locator('#predictions').isVisible());
  assert.match(await page.locator('#hide-note').textContent(), /hide=nonsense names no control; it hides engine/);
  await screenshot(page, 'teacher-mode');
  // Embed: the header gone, a way out to the full page, and the snippet a course page pastes.
  const { page: embedded, problems: embedProblems } = await openPage(env.browser, `${env.url}?embed=1${step}`);
  await viewShowsClaim(embedded, lesson.steps[0]);
  assert.equal(await embedded.locator('header.site').isVisible(), false);
  assert.ok(await embedded.locator('#embed-bar a').isVisible());
  await embedded.locator('.embed-link').first().click();
  const snippet = await embedded.locator('#embed-snippet').inputValue();
  assert.match(snippet, /^<iframe src="[^"]*\?embed=1#\/prompt\?text=The%20President[^"]*&amp;lesson=predictions&amp;step=1"/);
  await screenshot(embedded, 'embed-mode');
  assert.deepEqual(problems, []);
  assert.deepEqual(embedProblems, []);
});

test("a teacher's own lesson opens from its address, its text kept as text; a file that is not one is named", async () => {
  const own = {
    title: 'My class: two views',
    pack: 'brown',
    steps: [
      {
        title: 'Our prompt',
        text: 'Look at **the predictions**. <img src=x onerror="window.hacked=1"> stays text.',
        view: '/prompt?text=The%20state%20of%20New',
        claims: [{ kind: 'top_prediction', prompt: 'The state of New', token: ' York', at_least: 0.3 }],
      },
      { title: 'Through the lens', text: 'Block by block.', view: '/lens?text=The%20state%20of%20New' },
    ],
  };
  const server = await serveDist({
    overrides: {
      '/my/lesson.json': JSON.stringify(own),
      '/my/portal.json': '<html>Sign in to the Wi-Fi</html>',
      '/my/big.json': ' '.repeat(300 * 1024),
    },
  });
  try {
    const address = encodeURIComponent('my/lesson.json');
    const { page, problems } = await openPage(env.browser, `${server.url}#/prompt?text=The%20state%20of%20New&lesson=${address}&step=1`);
    await page.locator('#lesson[data-step="1"]').waitFor({ timeout: LOAD_TIMEOUT });
    assert.equal(await page.locator('#lesson-step-title').textContent(), 'Our prompt');
    assert.equal(await page.locator('#lesson img').count(), 0);
    assert.match(await page.locator('#lesson').textContent(), /<img src=x onerror="window\.hacked=1"> stays text/);
    assert.equal(await page.evaluate(() => window.hacked), undefined);
    await viewShowsClaim(page, own.steps[0]);
    await page.locator('#lesson-next').click();
    await page.locator('#lesson[data-step="2"]').waitFor({ timeout: 30_000 });
    await page.locator('#lens tbody tr').first().waitFor({ timeout: LOAD_TIMEOUT });
    assert.match(await page.evaluate(() => location.hash), /lesson=my%2Flesson\.json&step=2/);
    for (const [file, reason] of [
      ['my/portal.json', /could not be opened: not a lesson/],
      ['my/missing.json', /could not be opened: the server answered 404/],
      ['my/big.json', /could not be opened: .*(longer than the 262144 bytes|at most 262144)/],
    ]) {
      await page.goto(`${server.url}#/prompt?text=a&lesson=${encodeURIComponent(file)}&step=1`);
      await page.locator('#lesson-refused').waitFor({ timeout: 30_000 });
      assert.match(await page.locator('#lesson-refused').textContent(), reason);
    }
    // The browser logs the missing file's 404 itself; nothing else went wrong.
    assert.deepEqual(problems.filter((p) => !/status of 404|HTTP 404 for .*missing\.json/.test(p)), []);
  } finally {
    await server.close();
  }
});


test('guess the feature: examples and four labels, the verdict, the score kept in this browser, the next round', async () => {
  const { page, problems } = await openPage(env.browser, `${env.url}#/quiz?seed=7&round=0`);
  await page.locator('#quiz-examples li').first().waitFor({ timeout: LOAD_TIMEOUT });
  assert.ok((await page.locator('#quiz-examples li mark').count()) >= 1);
  assert.equal(await page.locator('.quiz-option').count(), 4);
  await screenshot(page, 'quiz');
  await page.locator('#quiz-option-0').click();
  await page.locator('#quiz-verdict').waitFor({ timeout: 10_000 });
  const verdict = await page.locator('#quiz-verdict').textContent();
  assert.match(verdict, /^(Right\. |Not this one: it was “.+”\. )Feature \d+\/\d+/);
  // Exactly one option is marked right, and the choice cannot be changed.
  assert.equal(await page.locator('.quiz-option.right').count(), 1);
  assert.equal(await page.locator('#quiz-option-1').isDisabled(), true);
  assert.match(await page.locator('#quiz-score').textContent(), /(0|1) of 1/);
  const right = /^Right/.test(verdict) ? 1 : 0;
  assert.equal(await page.evaluate(() => localStorage.getItem('glassbox-quiz-score')), `${right} 1`);
  // The next round: a new question, the score carried over.
  await page.locator('.quiz-next').click();
  await page.waitForFunction(() => /round=1/.test(location.hash));
  await page.locator('#quiz-option-2').waitFor({ timeout: LOAD_TIMEOUT });
  assert.equal(await page.locator('#quiz-verdict').count(), 0);
  await page.locator('#quiz-option-2').click();
  await page.locator('#quiz-verdict').waitFor({ timeout: 10_000 });
  assert.match(await page.locator('#quiz-score').textContent(), /of 2/);
  assert.deepEqual(problems, []);
});
