// The CPU engine against onnxruntime-web, side by side in one headless Chromium page: for
// each benchmark shape (crates/model/benches/shapes.rs, the same seeded weights as the
// other forward benchmarks), the page builds the CPU engine's model (the
// `glassbox-browser-bench` wasm module, built as the page's engine is built) and the same
// weights exported to ONNX, checks that both give the same logits, then times a forward
// pass of each at 1, 64 and 256 tokens in interleaved rounds (one of each, in turns; at
// least 9, more while under 3 s), after untimed runs of both, and prints each median.
// onnxruntime-web runs as a page would run it: its wasm backend with one thread (what it
// does in a page that is not cross-origin isolated, as Glassbox's is on a static host's
// first visit), then with two threads in a cross-origin isolated page. There the CPU
// engine is timed a second way too, as a page with two cores runs it: its products shared
// with a column helper, a worker that holds its own copy of the model (through a
// SharedArrayBuffer), the logits checked to be the same to the bit as without. Every
// position's logits are computed by both engines (onnxruntime-web also copies them out of
// its wasm memory: part of its time).
//
// The CPU engine is the build Chromium runs (with relaxed SIMD); where
// GLASSBOX_BROWSER_BENCH_SIMD128 names the build for browsers without it (Safari's), that
// build is timed too, against onnxruntime-web on one thread, in a page of its own.
//
// Run by `cargo xtask bench` (which builds the modules into GLASSBOX_BROWSER_BENCH and
// GLASSBOX_BROWSER_BENCH_SIMD128 and prints the ratios); numbers, and a failure only when
// the two engines disagree.
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serveDist, launchChromium, root } from '../e2e/harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const moduleDir = resolve(process.env.GLASSBOX_BROWSER_BENCH ?? join(root, 'target/browser-bench-relaxed-simd'));
const simd128Dir = process.env.GLASSBOX_BROWSER_BENCH_SIMD128;
const ortDir = join(here, 'node_modules/onnxruntime-web/dist');
const ROUNDS = Number(process.env.GLASSBOX_BENCH_ROUNDS ?? 9);
const LENGTHS = [1, 64, 256];
/** GLASSBOX_BENCH_SHAPES (numbers, "0,1") times only those shapes, while working on one. */
const SHAPES = process.env.GLASSBOX_BENCH_SHAPES?.split(',').map(Number);
/** The largest difference in logits, relative to the largest logit (at least 1), that
 * counts as the same model. */
const AGREEMENT = 1e-3;

const PAGE = `<!doctype html><meta charset="utf-8"><title>Glassbox and onnxruntime-web</title>
<script type="module">
import * as ort from '/ort/ort.wasm.min.mjs';
import init, { BenchModel, stopHelper } from '/glassbox/glassbox_browser_bench.js';
await init();
ort.env.wasm.numThreads = Number(new URL(location.href).searchParams.get('threads'));
ort.env.wasm.wasmPaths = '/ort/';
const MAX_ROUNDS = 41;
let model;
let session;
// In a cross-origin isolated page, a helper worker with its own copy of the model, which
// the CPU engine shares its products with (through the buffer shared) in its rows
// "with a helper".
let helper;
let shared;
// A pause between runs: onnxruntime's threads spin a while after a run, which would take
// a core from whichever run came next.
const pause = () => new Promise((done) => setTimeout(done, 20));
window.bench = {
  info: () => ({ isolated: crossOriginIsolated, cores: navigator.hardwareConcurrency, shapes: BenchModel.shapeCount() }),
  async load(index, tokens) {
    if (shared) stopHelper(shared);
    helper?.terminate();
    helper = shared = undefined;
    model?.free();
    await session?.release();
    const onnx = (model = new BenchModel(index)).takeOnnx();
    if (crossOriginIsolated) {
      shared = new SharedArrayBuffer(model.sharedBytes(tokens));
      helper = new Worker('/helper.js', { type: 'module' });
      await new Promise((ready, failed) => {
        helper.onmessage = ({ data }) => (data === 'ready' ? ready() : failed(new Error('helper: ' + data)));
        helper.onerror = (event) => failed(new Error('helper: ' + event.message));
        helper.postMessage({ index, shared });
      });
    }
    session = await ort.InferenceSession.create(onnx, { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
    // Two seconds of both engines on a few tokens, untimed: the browser compiles both
    // wasm modules with its optimizing tier in the background after they load.
    const ids = Uint32Array.from({ length: 8 }, (_, i) => i);
    const feeds = { input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, 8]) };
    for (const started = performance.now(); performance.now() - started < 2000;) {
      model.forward(ids);
      await session.run(feeds);
      await pause();
    }
    return { name: model.name, onnxBytes: onnx.length };
  },
  async measure(length, rounds) {
    const ids = Uint32Array.from({ length }, (_, i) => (i * 7919) % model.vocab);
    const feeds = () => ({ input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, length]) });
    // Both once, comparing their logits, then untimed for half a second each (so that the
    // browser has compiled both engines' hot code with its optimizing tier).
    const ours = model.logits(ids);
    const theirs = (await session.run(feeds())).logits.data;
    // With a helper: the CPU engine's forward pass, its products shared (timed without
    // installing the helper, which a page does once).
    const withHelper = (times) => {
      model.shareColumns(shared);
      try {
        const t = performance.now();
        model.forward(ids);
        times?.push(performance.now() - t);
      } finally {
        model.stopSharing();
      }
    };
    let sharedSame = true;
    if (helper) {
      model.shareColumns(shared);
      const sharedLogits = model.logits(ids);
      model.stopSharing();
      sharedSame = sharedLogits.length === ours.length && sharedLogits.every((value, i) => Object.is(value, ours[i]));
    }
    const warms = [() => model.forward(ids), () => session.run(feeds())];
    if (helper) warms.push(() => withHelper());
    for (const warm of warms) {
      for (const started = performance.now(); performance.now() - started < 500;) await warm();
    }
    let diff = 0;
    let largest = 0;
    for (let i = 0; i < ours.length; i++) {
      diff = Math.max(diff, Math.abs(ours[i] - theirs[i]));
      largest = Math.max(largest, Math.abs(ours[i]));
    }
    const glassbox = [];
    const onnxruntime = [];
    const helped = [];
    const started = performance.now();
    for (let round = 0; round < MAX_ROUNDS && (round < rounds || performance.now() - started < 3000); round++) {
      const runs = [
        async () => { const t = performance.now(); model.forward(ids); glassbox.push(performance.now() - t); },
        async () => { const t = performance.now(); await session.run(feeds()); onnxruntime.push(performance.now() - t); },
      ];
      if (helper) runs.push(async () => withHelper(helped));
      // Each engine first, middle and last in turn.
      for (let turn = 0; turn < round % runs.length; turn++) runs.push(runs.shift());
      for (const run of runs) {
        await run();
        await pause();
      }
    }
    const stopped = model.whySharingStopped();
    if (stopped) throw new Error('the helper stopped: ' + stopped);
    return { glassbox, onnxruntime, helped, sharedSame, diff, largest, sameLength: ours.length === theirs.length };
  },
};
window.benchReady = true;
</script>`;

// The helper worker: the same shape's model, answering the page's products until stopped.
const HELPER = `import init, { BenchModel } from '/glassbox/glassbox_browser_bench.js';
onmessage = async ({ data: { index, shared } }) => {
  try {
    await init();
    const model = BenchModel.forHelper(index);
    postMessage('ready');
    model.serveColumns(shared);
    model.free();
  } catch (error) {
    postMessage(String(error));
  }
};`;

const COOP_COEP = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** One page: onnxruntime-web with `threads` threads (its page cross-origin isolated when
 * `isolated`), every shape and length against the CPU engine built into `glassboxDir`,
 * whose rows are printed as `{glassbox}, beside {threads}`. */
async function runPage(browser, threads, isolated, glassboxDir = moduleDir, glassbox = 'Glassbox') {
  const server = await serveDist({
    folders: { '/ort/': ortDir, '/glassbox/': glassboxDir },
    overrides: { '/bench.html': PAGE, '/helper.js': HELPER, '/favicon.ico': '' },
    headers: isolated ? COOP_COEP : {},
  });
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  try {
    await page.goto(`${server.url}bench.html?threads=${threads}`);
    await page.waitForFunction(() => window.benchReady === true, null, { timeout: 60_000 })
      .catch((error) => { throw new Error(`the bench page did not start: ${problems.join('; ') || error.message}`); });
    const info = await page.evaluate(() => window.bench.info());
    if (info.isolated !== isolated) throw new Error(`the page is ${info.isolated ? '' : 'not '}cross-origin isolated`);
    // onnxruntime-web's rows name the build they were timed beside, where it is not the
    // default one, so that each ratio compares times of one page.
    const engine = `onnxruntime-web, ${threads} thread${threads > 1 ? 's' : ''}` +
      (glassboxDir === moduleDir ? '' : ` (beside ${glassbox})`);
    // The CPU engine's rows name the page they were timed in ("Glassbox, beside 1: …").
    console.log(`\n${engine} (wasm backend${isolated ? ', cross-origin isolated page' : ''}) and ${glassbox}'s CPU engine (wasm32, one thread), ` +
      `${info.cores} cores, median of at least ${ROUNDS} interleaved rounds (more, up to 41, while under 3 s)`);
    for (let shape = 0; shape < info.shapes; shape++) {
      if (SHAPES && !SHAPES.includes(shape)) continue;
      const model = await page.evaluate((args) => window.bench.load(...args), [shape, Math.max(...LENGTHS)]);
      for (const length of LENGTHS) {
        const result = await page.evaluate(([n, rounds]) => window.bench.measure(n, rounds), [length, ROUNDS]);
        const relative = result.diff / Math.max(1, result.largest);
        if (length === LENGTHS[0]) {
          console.log(`${model.name}: ONNX model ${(model.onnxBytes / 1e6).toFixed(1)} MB`);
        }
        console.log(`  ${length} tokens: logits agree to ${result.diff.toExponential(1)} (largest ${result.largest.toFixed(2)})`);
        if (!result.sameLength || !(relative <= AGREEMENT)) {
          throw new Error(`${model.name}, ${length} tokens: onnxruntime-web's logits differ from the CPU engine's by ${result.diff}`);
        }
        const label = `${model.name}, ${length} tokens`;
        console.log(`${glassbox}, beside ${threads}: ${label}: median ${median(result.glassbox).toFixed(1)} ms over ${result.glassbox.length} rounds`);
        console.log(`${engine}: ${label}: median ${median(result.onnxruntime).toFixed(1)} ms over ${result.onnxruntime.length} rounds`);
        if (result.helped.length) {
          if (!result.sharedSame) throw new Error(`${label}: the logits with a helper differ from those without`);
          console.log(`${glassbox} with a helper worker, beside ${threads}: ${label}: median ${median(result.helped).toFixed(1)} ms over ${result.helped.length} rounds (logits the same to the bit)`);
        }
      }
    }
    if (problems.length) throw new Error(problems.join('; '));
  } finally {
    await page.close();
    await server.close();
  }
}

const browser = await launchChromium();
try {
  await runPage(browser, 1, false);
  await runPage(browser, 2, true);
  if (simd128Dir) await runPage(browser, 1, false, resolve(simd128Dir), 'Glassbox simd128 only');
} finally {
  await browser.close();
}
