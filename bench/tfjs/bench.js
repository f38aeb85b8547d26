#!/usr/bin/env node
'use strict';
// TF.js wasm-backend baseline for visage's benchmark.
//
//   (cd tests/ref && npm ci)          # once; this script reuses those modules
//   node bench/tfjs/bench.js [N]      # N timed iterations, default 30
//
// There is no package.json here: the script loads tests/ref/lib.js, which
// require()s @tensorflow/tfjs and @tensorflow/tfjs-backend-wasm from
// tests/ref/node_modules (Node resolves modules relative to lib.js), and
// points the wasm backend at the .wasm files in
// tests/ref/node_modules/@tensorflow/tfjs-backend-wasm/dist/, which Node
// reads with fs. Nothing is fetched.
//
// Timed, with the wasm backend (XNNPACK; SIMD; single thread, since
// tfjs-backend-wasm disables its pthreads build under Node):
//   blazeface-back  on a [1,256,256,3] input (all 4 outputs)
//   faceres         on a [1,224,224,3] input (global_pooling/Mean + heads)
//   dlib-resnet     on a [1,150,150,3] input (face-api's weights, the layer
//                   order of tests/ref/dlib_resnet.js)
//   per image     = one blazeface-back + one faceres run (no image decode,
//                   no crop/resize between them)
// Each is warmed up, then run N times; *_ms are medians, *_mean_ms / *_min_ms
// are given too. Inputs are the "hash" generator of tests/ref (same data every
// iteration). The cpu backend runs faceres once for reference (skipped when a
// run takes over 5 s).
//
// Prints one JSON line on stdout.

const path = require('path');
const L = require(path.join(__dirname, '..', '..', 'tests', 'ref', 'lib.js'));

const N = Math.max(1, parseInt(process.argv[2] || '30', 10) || 30);
const WARMUP = 5;

function nowMs() { return Number(process.hrtime.bigint()) / 1e6; }

function summarize(ts) {
  const s = ts.slice().sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return { median, mean, min: s[0] };
}

const r3 = (x) => Math.round(x * 1000) / 1000;

async function main() {
  const tf = L.loadTf();
  const info = await L.useWasm();

  const bf = await L.loadModel('blazeface-back');
  const fr = await L.loadModel('faceres');
  const dl = await L.loadModel('dlib-resnet');
  const dlSpec = L.MODELS['dlib-resnet'];
  const dlIn = tf.tensor(L.makeInput('dlib-resnet', 'hash'), dlSpec.shape, 'float32');
  const bfSpec = L.MODELS['blazeface-back'];
  const frSpec = L.MODELS.faceres;
  const bfIn = tf.tensor(L.makeInput('blazeface-back', 'hash'), bfSpec.shape, 'float32');
  const frIn = tf.tensor(L.makeInput('faceres', 'hash'), frSpec.shape, 'float32');

  // Runs a model and waits for all its outputs to be read back, so the time
  // covers the whole inference.
  const run = (model, spec, x) => {
    const outs = model.execute({ [spec.input]: x }, spec.outputs);
    for (const o of outs) { o.dataSync(); o.dispose(); }
  };
  const runBf = () => run(bf, bfSpec, bfIn);
  const runFr = () => run(fr, frSpec, frIn);
  const runPair = () => { runBf(); runFr(); };
  const runDl = () => run(dl, dlSpec, dlIn);
  const runPairDl = () => { runBf(); runDl(); };

  const time = (fn) => {
    for (let i = 0; i < WARMUP; i++) fn();
    const ts = [];
    for (let i = 0; i < N; i++) {
      const t0 = nowMs();
      fn();
      ts.push(nowMs() - t0);
    }
    return summarize(ts);
  };

  const base = tf.memory().numTensors;
  const b = time(runBf);
  const f = time(runFr);
  const p = time(runPair);
  const d = time(runDl);
  const pd = time(runPairDl);
  const leaked = tf.memory().numTensors - base;

  // cpu backend, faceres, once (after one untimed warm-up run, skipped if that
  // alone took more than 5 s).
  let cpuMs = null;
  let cpuNote;
  try {
    await L.useCpu();
    const frCpu = await L.loadModel('faceres');
    const x = tf.tensor(L.makeInput('faceres', 'hash'), frSpec.shape, 'float32');
    const t0 = nowMs();
    run(frCpu, frSpec, x);
    const first = nowMs() - t0;
    if (first > 5000) {
      cpuNote = `skipped: first run took ${first.toFixed(0)} ms`;
    } else {
      const t1 = nowMs();
      run(frCpu, frSpec, x);
      cpuMs = nowMs() - t1;
    }
    x.dispose();
  } catch (e) {
    cpuNote = 'failed: ' + e.message;
  }

  const out = {
    backend: 'wasm',
    threads: info.threads,
    simd: info.simd,
    tfjs: tf.version.tfjs,
    node: process.versions.node,
    iterations: N,
    warmup: WARMUP,
    blazeface_ms: r3(b.median),
    faceres_ms: r3(f.median),
    per_image_ms: r3(p.median),
    dlib_ms: r3(d.median),
    per_image_dlib_ms: r3(pd.median),
    blazeface_mean_ms: r3(b.mean),
    faceres_mean_ms: r3(f.mean),
    per_image_mean_ms: r3(p.mean),
    blazeface_min_ms: r3(b.min),
    faceres_min_ms: r3(f.min),
    per_image_min_ms: r3(p.min),
    cpu_faceres_ms: cpuMs == null ? null : r3(cpuMs),
  };
  if (cpuNote) out.cpu_note = cpuNote;
  if (leaked !== 0) out.leaked_tensors = leaked;
  console.log(JSON.stringify(out));
}

main().catch((e) => { console.error(e); process.exit(1); });
