// Two builds of the CPU engine against each other, each with its column helper, in one
// cross-origin isolated headless Chromium page: for one benchmark shape
// (crates/model/benches/shapes.rs), both builds' models and helper workers are loaded
// side by side, then their forward passes are timed in interleaved rounds (A then B, B
// then A, in turns), after a second of untimed runs of each, and the medians printed with
// B's time as a fraction of A's. On a machine whose load changes from one minute to the
// next, a change to the kernels or the sharing is measured this way, not by two runs of
// `onnx_bench.mjs` minutes apart.
//
//   A=<build> B=<build> [SHAPE=1] [LENGTHS=1,64,256] [ROUNDS=15] node tests/bench/builds_ab.mjs
//
// A build is a folder as `cargo xtask bench` writes `target/browser-bench-relaxed-simd`
// (the `glassbox-browser-bench` crate through wasm-bindgen, `--target=web`); copy it away
// before building the other. Not part of `cargo xtask bench`: it compares builds, not
// engines.
import { resolve } from 'node:path';
import { serveDist, launchChromium } from '../e2e/harness.mjs';

if (!process.env.A || !process.env.B) throw new Error('name the two builds: A=<folder> B=<folder>');
const builds = { a: resolve(process.env.A), b: resolve(process.env.B) };
const SHAPE = Number(process.env.SHAPE ?? 1);
const LENGTHS = (process.env.LENGTHS ?? '1,64,256').split(',').map(Number);
const ROUNDS = Number(process.env.ROUNDS ?? 15);

const PAGE = `<!doctype html><meta charset="utf-8"><title>Two builds of Glassbox's CPU engine</title>
<script type="module">
import initA, * as a from '/a/glassbox_browser_bench.js';
import initB, * as b from '/b/glassbox_browser_bench.js';
await initA();
await initB();
const sides = {};
// A build's model, and a helper worker of the same build serving its products.
async function start(name, build, index, tokens) {
  const model = new build.BenchModel(index);
  const shared = new SharedArrayBuffer(model.sharedBytes(tokens));
  const helper = new Worker('/helper.js', { type: 'module' });
  await new Promise((ready, failed) => {
    helper.onmessage = ({ data }) => (data === 'ready' ? ready() : failed(new Error(name + "'s helper: " + data)));
    helper.onerror = (event) => failed(new Error(name + "'s helper: " + event.message));
    helper.postMessage({ index, shared, name });
  });
  sides[name] = { model, shared };
}
const pause = () => new Promise((done) => setTimeout(done, 20));
window.bench = {
  async load(index, tokens) {
    await start('a', a, index, tokens);
    await start('b', b, index, tokens);
  },
  async measure(length, rounds) {
    const ids = Uint32Array.from({ length }, (_, i) => (i * 7919) % sides.a.model.vocab);
    const run = (name, times) => {
      const { model, shared } = sides[name];
      model.shareColumns(shared);
      try {
        const t = performance.now();
        model.forward(ids);
        times?.push(performance.now() - t);
      } finally {
        model.stopSharing();
      }
    };
    for (const name of ['a', 'b']) {
      for (const started = performance.now(); performance.now() - started < 1000;) {
        run(name);
        await pause();
      }
    }
    const times = { a: [], b: [] };
    for (let round = 0; round < rounds; round++) {
      for (const name of round % 2 ? ['b', 'a'] : ['a', 'b']) {
        run(name, times[name]);
        await pause();
      }
    }
    for (const name of ['a', 'b']) {
      const stopped = sides[name].model.whySharingStopped();
      if (stopped) throw new Error(name + "'s helper stopped: " + stopped);
    }
    return times;
  },
};
window.benchReady = true;
</script>`;

// A helper worker of the build it is named for, answering that build's products.
const HELPER = `onmessage = async ({ data: { index, shared, name } }) => {
  try {
    const build = await import('/' + name + '/glassbox_browser_bench.js');
    await build.default();
    const model = build.BenchModel.forHelper(index);
    postMessage('ready');
    model.serveColumns(shared);
    model.free();
  } catch (error) {
    postMessage(String(error));
  }
};`;

const median = (values) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)];
const server = await serveDist({
  folders: { '/a/': builds.a, '/b/': builds.b },
  overrides: { '/bench.html': PAGE, '/helper.js': HELPER, '/favicon.ico': '' },
  headers: { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' },
});
const browser = await launchChromium();
try {
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(error.message));
  await page.goto(`${server.url}bench.html`);
  await page.waitForFunction(() => window.benchReady === true, null, { timeout: 60_000 })
    .catch((error) => { throw new Error(`the page did not start: ${problems.join('; ') || error.message}`); });
  await page.evaluate((args) => window.bench.load(...args), [SHAPE, Math.max(...LENGTHS)]);
  console.log(`A: ${builds.a}\nB: ${builds.b}\nshape ${SHAPE}, each with a helper worker, medians of ${ROUNDS} interleaved rounds`);
  for (const length of LENGTHS) {
    const times = await page.evaluate((args) => window.bench.measure(...args), [length, ROUNDS]);
    const [a, b] = [median(times.a), median(times.b)];
    console.log(`  ${length} tokens: A ${a.toFixed(1)} ms, B ${b.toFixed(1)} ms, B/A ${(b / a).toFixed(3)}`);
  }
  if (problems.length) throw new Error(problems.join('; '));
} finally {
  await browser.close();
  await server.close();
}
