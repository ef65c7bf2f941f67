// The built-in lessons in the page: listed on the home page, each step's text beside its
// live view with the lesson's claims shown (the claims themselves are recomputed from the
// pack by `cargo test -p glassbox-lab --test lessons`), Back and Next through every step,
// a step kept open while the student tries something, a step link reloaded, and lesson
// links that cannot be followed answered with the reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { openPage, screenshot, root, serveDist, LOAD_TIMEOUT, useBrowser } from './harness.mjs';

const env = useBrowser();
const lessonsDir = join(root, 'www/lessons');
const lessons = readdirSync(lessonsDir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => [f.replace(/\.json$/, ''), JSON.parse(readFileSync(join(lessonsDir, f), 'utf8'))]);
const lesson = lessons.find(([name]) => name === 'predictions')[1];
// Links are followed from the keyboard (focus, Enter), as a student may: a click aims at
// coordinates, and the header changes height when the pack's features finish loading.

/** What a step's view must show: what its first claim names, where that view shows it. */
async function viewShowsClaim(page, step) {
  const claim = step.claims[0];
  if (claim.kind.startsWith('ablation_')) {
    // The step asks the student to ablate: the table gives the logit's change three ways.
    await page.locator('#ablate-node').waitFor({ timeout: LOAD_TIMEOUT });
    await page.locator('#ablate-node').press('Enter');
  }
  const [selector, expected] = {
    top_prediction: ['#predictions', claim.token?.trim()],
    lens_settles: ['#lens', claim.token?.trim()],
    best_tag: ['#hits, #feature-title', `${claim.layer}/${claim.feature}`],
    steered_contains: ['#steered', claim.text],
    head_score: ['#head-scores', `Head ${claim.layer}.${claim.head} `],
    no_head_above: ['#head-scores', claim.score?.replace('_', '-')],
    tag_evidence: ['#evidence', `(${claim.tag})`],
    fires_on: ['#on-prompt', claim.tokens?.[0]?.trim()],
    strongest_input: ['#node-details', `${claim.layer}_${claim.feature}_${claim.position}`],
    ablation_agrees: ['#intervention', claim.token?.trim()],
    ablation_raises: ['#intervention', claim.token?.trim()],
  }[claim.kind];
  await page.waitForFunction(
    ([selector, text]) => (document.querySelector(selector)?.textContent ?? '').includes(text),
    [selector, expected],
    { timeout: LOAD_TIMEOUT },
  );
}

/**
 * Walks `walked` from the step the page shows to its last: each step's title, place,
 * claims and view, then Back once. `tag` names the screenshots.
 */
async function walkSteps(page, walked, tag) {
  for (const [i, step] of walked.steps.entries()) {
    const n = i + 1;
    await page.locator(`#lesson[data-step="${n}"]`).waitFor({ timeout: LOAD_TIMEOUT });
    assert.equal(await page.locator('#lesson-step-title').textContent(), step.title);
    assert.match(await page.locator('.lesson-where').textContent(), new RegExp(`step ${n} of ${walked.steps.length}`));
    assert.equal(await page.locator('#lesson-claims li').count(), (step.claims ?? []).length);
    if ((step.claims ?? []).length > 0) {
      await viewShowsClaim(page, step);
    }
    // The text is text: the markers are gone, the words set in elements.
    assert.doesNotMatch(await page.locator('#lesson').innerHTML(), /\*\*/);
    // A question's answer shows when the student opens it.
    for (const [q, { answer }] of (step.questions ?? []).entries()) {
      const question = page.locator('.lesson-question').nth(q);
      await question.locator('summary').click();
      assert.ok((await question.textContent()).includes(answer.slice(0, 40)));
    }
    await screenshot(page, `${tag}-${n}`);
    if (n < walked.steps.length) {
      await page.locator('#lesson-next').press('Enter');
    }
  }
  await page.locator('#lesson-finish').waitFor({ timeout: 10_000 });
  if (walked.steps.length > 1) {
    await page.locator('#lesson-back').press('Enter');
    await page.locator(`#lesson[data-step="${walked.steps.length - 1}"]`).waitFor({ timeout: 30_000 });
  }
}

/** The page link (after `#`) of step 1 of the built-in lesson `name`. */
function firstStep(name, walked) {
  const view = walked.steps[0].view;
  return `${view}${view.includes('?') ? '&' : '?'}lesson=${name}&step=1`;
}

test('the home page lists the five built-in lessons', async () => {
  const { page, problems } = await openPage(env.browser, `${env.url}#/`);
  await page.locator('#lessons a').first().waitFor({ timeout: LOAD_TIMEOUT });
  assert.equal(lessons.length, 5);
  assert.deepEqual(await page.locator('#lessons a').allTextContents(), [
    'Tokens, predictions and the logit lens',
    'Attention: where each token looks',
    'A feature and its evidence',
    'Steering: turning one feature up',
    'A circuit: why “they” is followed by “were”',
  ]);
  assert.deepEqual(problems, []);
});

for (const [name, walked] of lessons) {
  test(`the lesson “${walked.title}” walks from the home page through every step beside its live view`, async () => {
    const { page, problems } = await openPage(env.browser, `${env.url}#/`);
    await page.locator('#lessons a').first().waitFor({ timeout: LOAD_TIMEOUT });
    await page.locator('#lessons a', { hasText: walked.title }).press('Enter');
    await walkSteps(page, walked, `lesson-${name}`);
    assert.deepEqual(problems, []);
  });
}

test("each lesson's first step shows at once from its preview while the model loads, then turns live", async () => {
  for (const [name, walked] of lessons) {
    // The model's files are held back until the preview has been checked.
    const context = await env.browser.newContext({ viewport: { width: 1100, height: 800 } });
    let release;
    const held = new Promise((resolve) => { release = resolve; });
    await context.route('**/packs/brown/model/**', async (route) => {
      await held;
      await route.continue();
    });
    const page = await context.newPage();
    await page.goto(`${env.url}#${firstStep(name, walked)}`);
    const step = walked.steps[0];
    await page.locator('#preview-note').waitFor({ timeout: 30_000 });
    assert.match(await page.locator('#engine-status').textContent(), /[Ll]oading/, name);
    // The view says what the step's first claim names, with no model loaded.
    await viewShowsClaim(page, step);
    // A feature view's examples are in the preview too: none is left waiting.
    const examples = await page.locator('.example').count();
    if (examples > 0) {
      assert.equal(await page.locator('.example .shaded').count(), examples, name);
    }
    await screenshot(page, `lesson-preview-${name}`);
    release();
    // Once the model is in, the note goes and the live view says the same.
    await page.locator('#preview-note').waitFor({ state: 'detached', timeout: LOAD_TIMEOUT });
    await page.locator('#engine-status[data-features=ready]').waitFor({ timeout: LOAD_TIMEOUT });
    await viewShowsClaim(page, step);
    await context.close();
  }
});

test('every lesson walks in embed mode, the header gone', async () => {
  for (const [name, walked] of lessons) {
    const { page, problems } = await openPage(env.browser, `${env.url}?embed=1#${firstStep(name, walked)}`);
    await walkSteps(page, walked, `embed-${name}`);
    assert.equal(await page.locator('header.site').isVisible(), false);
    assert.ok(await page.locator('#embed-bar a').isVisible());
    assert.deepEqual(problems, []);
    await page.close();
  }
});

test('after one visit, every lesson walks offline, in teacher mode with controls hidden', async () => {
  const context = await env.browser.newContext({ viewport: { width: 1100, height: 800 } });
  const first = await context.newPage();
  await first.goto(`${env.url}#/`);
  // The visit keeps the page (service worker), the pack, and what the lessons show.
  await first.locator('#lessons-offline').waitFor({ timeout: LOAD_TIMEOUT });
  assert.match(await first.locator('#lessons-offline').textContent(), /work offline from now on/);
  await first.evaluate(() => navigator.serviceWorker.ready.then(() => true));
  await first.close();
  await context.setOffline(true);
  const hidden = 'engine,picker,open,prompt,thresholds,nav';
  for (const [name, walked] of lessons) {
    const page = await context.newPage();
    const problems = [];
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(`${env.url}?hide=${hidden}#${firstStep(name, walked)}`);
    await walkSteps(page, walked, `offline-teacher-${name}`);
    assert.equal(await page.locator('header.site nav').isVisible(), false);
    assert.equal(await page.locator('#engine-switch').isVisible(), false);
    assert.match(await page.locator('#engine-status').textContent(), /from this browser's cache/);
    assert.deepEqual(problems, []);
    await page.close();
  }
  await context.close();
});

test('a step stays open while the student tries something, reloads from its link, and closes', async () => {
  const link = `${env.url}#${lesson.steps[0].view}&lesson=predictions&step=1`;
  const { page, problems } = await openPage(env.browser, link);
  await viewShowsClaim(page, lesson.steps[0]);
  // Trying something: the view's link changes, the step stays, with a way back.
  await page.locator('#prompt').fill('The President of the Soviet');
  await page.waitForFunction(() => /Soviet/.test(decodeURIComponent(location.hash)));
  await page.locator('#lesson-return').waitFor({ timeout: 30_000 });
  assert.equal(await page.locator('#lesson').getAttribute('data-step'), '1');
  await page.locator('#lesson-return').press('Enter');
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
    await page.locator('#lesson-next').press('Enter');
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

test('a lesson written in the page from three views round-trips through its link and its file', async () => {
  const context = await env.browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(error.message));
  await page.goto(`${env.url}#/write`);
  await page.locator('#draft-empty').waitFor({ timeout: LOAD_TIMEOUT });
  await page.locator('#draft-title').fill('Three views of one sentence');
  // The bar above each view adds it, as it is, as the next step.
  const views = ['/prompt?text=The+jury+said', '/lens?text=The+jury+said', '/feature/0/460'];
  for (const [i, view] of views.entries()) {
    await page.goto(`${env.url}#${view}`);
    await page.locator('#draft-add').waitFor({ timeout: LOAD_TIMEOUT });
    await page.locator('#draft-add').press('Enter');
    await page.locator('#draft-added').waitFor({ timeout: 10_000 });
    assert.match(await page.locator('#draft-added').textContent(), new RegExp(`Added as step ${i + 1}`));
  }
  // The home page cannot be a step: the button says so.
  await page.goto(`${env.url}#/`);
  await page.locator('#draft-add').waitFor({ timeout: LOAD_TIMEOUT });
  assert.equal(await page.locator('#draft-add').isDisabled(), true);
  await page.goto(`${env.url}#/write`);
  await page.locator('.draft-step').nth(2).waitFor({ timeout: LOAD_TIMEOUT });
  assert.equal(await page.locator('#draft-title').inputValue(), 'Three views of one sentence');
  const titles = ['The tokens', 'Block by block', 'A modal feature'];
  for (const [i, title] of titles.entries()) {
    await page.locator('.draft-step-title').nth(i).fill(title);
    await page.locator('.draft-step-text').nth(i).fill(`Step ${i + 1} reads **this** view. <b>not bold</b>`);
  }
  // A question with its answer, on the first step.
  await page.locator('.draft-add-question').first().click();
  await page.locator('.draft-question-text').first().fill('How many tokens is “The jury said”?');
  await page.locator('.draft-question-answer').first().fill('Three: “The”, “ jury”, “ said”.');
  // Reordering: the last step up, then back down.
  await page.locator('.draft-up').nth(2).click();
  assert.equal(await page.locator('.draft-step-title').nth(1).inputValue(), 'A modal feature');
  await page.locator('.draft-down').nth(1).click();
  assert.equal(await page.locator('.draft-step-title').nth(2).inputValue(), 'A modal feature');
  await screenshot(page, 'write-lesson');

  // The link carries the whole lesson: a student's browser walks it.
  const link = await page.locator('#draft-link').inputValue();
  assert.match(link, /#\/prompt\?text=The\+jury\+said&lesson=z%3A[A-Za-z0-9_-]+&step=1$/);
  const { page: student, problems: studentProblems } = await openPage(env.browser, link);
  const expectedViews = ['#predictions tbody tr', '#lens tbody tr', '#feature-title'];
  for (const [i, title] of titles.entries()) {
    await student.locator(`#lesson[data-step="${i + 1}"]`).waitFor({ timeout: LOAD_TIMEOUT });
    assert.equal(await student.locator('#lesson-step-title').textContent(), title);
    assert.match(await student.locator('.lesson-where').textContent(), /Three views of one sentence · step \d of 3/);
    assert.equal(await student.locator('#lesson strong').first().textContent(), 'this');
    assert.equal(await student.locator('#lesson b').count(), 0);
    await student.locator(expectedViews[i]).first().waitFor({ timeout: LOAD_TIMEOUT });
    if (i === 0) {
      await student.locator('.lesson-question summary').click();
      assert.match(await student.locator('.lesson-question').textContent(), /How many tokens .*\?\s*Three: “The”, “ jury”, “ said”\./);
    }
    if (i < 2) await student.locator('#lesson-next').press('Enter');
  }
  assert.deepEqual(studentProblems, []);
  await student.close();

  // The file: downloaded, it reads as the same lesson; opened again after starting over.
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#draft-download').click()]);
  assert.equal(download.suggestedFilename(), 'three-views-of-one-sentence.json');
  const file = await download.path();
  const saved = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(saved.title, 'Three views of one sentence');
  assert.deepEqual(saved.steps.map((s) => s.title), titles);
  assert.deepEqual(saved.steps.map((s) => s.view), views);
  assert.deepEqual(saved.steps[0].questions, [{ question: 'How many tokens is “The jury said”?', answer: 'Three: “The”, “ jury”, “ said”.' }]);
  await page.locator('#draft-new').click();
  await page.locator('#draft-empty').waitFor({ timeout: 10_000 });
  await page.locator('#draft-open').setInputFiles(file);
  await page.locator('.draft-step').nth(2).waitFor({ timeout: 10_000 });
  assert.equal(await page.locator('#draft-title').inputValue(), 'Three views of one sentence');
  assert.equal(await page.locator('.draft-step-title').nth(0).inputValue(), 'The tokens');
  assert.equal(await page.locator('#draft-link').inputValue(), link);
  // A file that is not a lesson is refused by name; the lesson here stays.
  await page.locator('#draft-open').setInputFiles({ name: 'notes.json', mimeType: 'application/json', buffer: Buffer.from('{"hello": 1}') });
  await page.locator('#draft-problem').waitFor({ timeout: 10_000 });
  assert.match(await page.locator('#draft-problem').textContent(), /notes\.json was not opened, the lesson here is unchanged: not a lesson/);
  assert.equal(await page.locator('.draft-step').count(), 3);
  assert.deepEqual(problems, []);
  await context.close();
});

test('the presenter layout sets everything larger, and the arrow keys move between steps', async () => {
  const [name, walked] = lessons.find(([n]) => n === 'predictions');
  const { page, problems } = await openPage(env.browser, `${env.url}?present=1#${firstStep(name, walked)}`);
  await page.locator('#lesson[data-step="1"]').waitFor({ timeout: LOAD_TIMEOUT });
  assert.equal(await page.locator('.present').count(), 1);
  await page.keyboard.press('ArrowRight');
  await page.locator('#lesson[data-step="2"]').waitFor({ timeout: 30_000 });
  await viewShowsClaim(page, walked.steps[1]);
  await page.keyboard.press('ArrowRight');
  await page.locator('#lesson[data-step="3"]').waitFor({ timeout: 30_000 });
  await page.keyboard.press('ArrowLeft');
  await page.locator('#lesson[data-step="2"]').waitFor({ timeout: 30_000 });
  // Keys typed into a text box are the student's, not the lesson's.
  await page.locator('#prompt').focus();
  await page.keyboard.press('ArrowLeft');
  await new Promise((done) => setTimeout(done, 500));
  assert.equal(await page.locator('#lesson').getAttribute('data-step'), '2');
  await screenshot(page, 'presenter');
  assert.deepEqual(problems, []);
});

test("a pack's own lessons are listed first and walk; one that is not a lesson is named, the rest kept", async () => {
  const packDir = join(root, 'www/packs/brown');
  const manifest = JSON.parse(readFileSync(join(packDir, 'manifest.json'), 'utf8'));
  const mine = {
    title: 'Our pack, two views',
    summary: 'A lesson the pack carries.',
    pack: 'brown',
    steps: [
      {
        title: 'The prompt',
        text: 'What comes after *The state of New*?',
        view: '/prompt?text=The%20state%20of%20New',
        claims: [{ kind: 'top_prediction', prompt: 'The state of New', token: ' York', at_least: 0.3 }],
      },
      { title: 'A modal feature', text: 'Its evidence.', view: '/feature/0/460' },
    ],
  };
  const files = {
    'lessons/mine.json': JSON.stringify(mine),
    'lessons/broken.json': '{"title": "no steps"}',
  };
  const overrides = {};
  for (const [path, body] of Object.entries(files)) {
    const bytes = Buffer.from(body);
    manifest.files.push({ path, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
    overrides[`/packs/brown/${path}`] = bytes;
  }
  manifest.lessons = Object.keys(files);
  overrides['/packs/brown/manifest.json'] = JSON.stringify(manifest);
  const server = await serveDist({ overrides });
  try {
    const { page, problems } = await openPage(env.browser, `${server.url}#/`);
    await page.locator('#lessons a', { hasText: mine.title }).waitFor({ timeout: LOAD_TIMEOUT });
    assert.equal(await page.locator('#lessons a').first().textContent(), mine.title);
    assert.match(await page.locator('#lessons').textContent(), /The pack's lesson “broken” could not be read: lessons\/broken\.json: not a lesson/);
    assert.equal(await page.locator('#lessons a').count(), 1 + lessons.length);
    await page.locator('#lessons a', { hasText: mine.title }).press('Enter');
    assert.match(await page.evaluate(() => location.hash), /lesson=pack%3Amine&step=1/);
    await walkSteps(page, mine, 'pack-lesson');
    await page.goto(`${server.url}#/prompt?text=a&lesson=pack%3Anope&step=1`);
    await page.locator('#lesson-refused').waitFor({ timeout: LOAD_TIMEOUT });
    assert.match(await page.locator('#lesson-refused').textContent(), /has no lesson called “nope”/);
    assert.deepEqual(problems, []);
  } finally {
    await server.close();
  }
});
