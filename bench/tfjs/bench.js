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
//   faceboxes       on a [1,1024,1024,3] input fed at standardize_input/sub
//                   (values in [-1,1]), read at the six prediction-layer
//                   BiasAdd outputs: the cut of tests/ref/lib.js and
//                   src/face/vs_faceboxes.h (the graph's loops and NMS are
//                   not run; visage does anchors/softmax/NMS in C)
//   per image     = one blazeface-back + one faceres run (no image decode,
//                   no crop/resize between them)
//   per image dlib = one blazeface-back + one dlib-resnet run
//   per image union dlib = one blazeface-back + one faceboxes + one
//                   dlib-resnet run: the networks visage's default detector
//                   and embedder run on a photo with one face
// Each is warmed up, then run N times; *_ms are medians, *_mean_ms / *_min_ms
// are given too. Inputs are the "hash" generator of tests/ref (same data every
// iteration). The cpu backend runs faceres once for reference (skipped when a
// run takes over 5 s).
//
// Prints one JSON line on stdout. Fields:
//   backend threads simd tfjs node iterations warmup
//   blazeface_ms faceres_ms per_image_ms dlib_ms per_image_dlib_ms
//   faceboxes_ms per_image_union_dlib_ms            (medians)
//   blazeface_mean_ms faceres_mean_ms per_image_mean_ms faceboxes_mean_ms
//   per_image_union_dlib_mean_ms                    (means)
//   blazeface_min_ms faceres_min_ms per_image_min_ms faceboxes_min_ms
//   per_image_union_dlib_min_ms                     (minima)
//   faceboxes_backend  'wasm', or 'cpu' if the wasm run failed (then
//                      faceboxes_note says why and the union field is null,
//                      since it would mix backends)
//   cpu_faceres_ms [cpu_note] [leaked_tensors]

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

// FaceBoxes as visage runs it: the photo's long side scaled to 1024 and padded
// to a square, fed past the graph's own resize/normalisation. The six outputs
// are the first six of lib.js's list (the rest are the reference's decoded
// nodes, behind the loops). Conv cost does not depend on the pixel values, so
// the hash generator over the whole square stands in for a padded photo.
const FB_SIDE = 1024;
const FB_SPEC = {
  input: 'standardize_input/sub',
  shape: [1, FB_SIDE, FB_SIDE, 3],
  outputs: L.MODELS.faceboxes.outputs.slice(0, 6),
};

function faceboxesInput(tf) {
  return tf.tensor(L.genHash(FB_SPEC.shape, [-1, 1]), FB_SPEC.shape, 'float32');
}

// Fallback when FaceBoxes cannot run in wasm: two cpu runs (the first is a
// warm-up), the second timed; skipped if the first alone takes over 30 s,
// since the pure-JS backend is slow on a 1024x1024 input. Leaves the backend
// on cpu (it is only called at the end).
async function faceboxesCpu(tf, run) {
  try {
    await L.useCpu();
    const m = await L.loadModel('faceboxes');
    const x = faceboxesInput(tf);
    const t0 = nowMs();
    run(m, FB_SPEC, x);
    const first = nowMs() - t0;
    if (first > 30000) {
      x.dispose();
      return { ms: null, note: `cpu skipped: first run took ${first.toFixed(0)} ms` };
    }
    const t1 = nowMs();
    run(m, FB_SPEC, x);
    const ms = nowMs() - t1;
    x.dispose();
    return { ms, note: 'timed on cpu, one run after one warm-up' };
  } catch (e) {
    return { ms: null, note: 'cpu failed: ' + e.message };
  }
}

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

  // FaceBoxes is loaded and tried once before timing, so an op the wasm
  // backend lacks shows as a note (and a cpu fallback) instead of a crash.
  let fb = null;
  let fbIn = null;
  let fbNote;
  try {
    fb = await L.loadModel('faceboxes');
    fbIn = faceboxesInput(tf);
    run(fb, FB_SPEC, fbIn);
  } catch (e) {
    fbNote = 'wasm failed: ' + e.message;
    fb = null;
    if (fbIn) { fbIn.dispose(); fbIn = null; }
  }
  const runFb = () => run(fb, FB_SPEC, fbIn);
  const runUnionDl = () => { runBf(); runFb(); runDl(); };

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
  const fbT = fb ? time(runFb) : null;
  const ud = fb ? time(runUnionDl) : null;
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

  let fbBackend = fb ? 'wasm' : null;
  let fbCpu = null;
  if (!fb) {
    fbCpu = await faceboxesCpu(tf, run);
    if (fbCpu.ms != null) fbBackend = 'cpu';
    fbNote += '; ' + fbCpu.note;
  }
  const fbStat = fbT || (fbCpu && fbCpu.ms != null ? { median: fbCpu.ms, mean: fbCpu.ms, min: fbCpu.ms } : null);
  const r3n = (x) => (x == null ? null : r3(x));

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
    faceboxes_ms: r3n(fbStat && fbStat.median),
    per_image_union_dlib_ms: r3n(ud && ud.median),
    blazeface_mean_ms: r3(b.mean),
    faceres_mean_ms: r3(f.mean),
    per_image_mean_ms: r3(p.mean),
    faceboxes_mean_ms: r3n(fbStat && fbStat.mean),
    per_image_union_dlib_mean_ms: r3n(ud && ud.mean),
    blazeface_min_ms: r3(b.min),
    faceres_min_ms: r3(f.min),
    per_image_min_ms: r3(p.min),
    faceboxes_min_ms: r3n(fbStat && fbStat.min),
    per_image_union_dlib_min_ms: r3n(ud && ud.min),
    faceboxes_backend: fbBackend,
    cpu_faceres_ms: cpuMs == null ? null : r3(cpuMs),
  };
  if (cpuNote) out.cpu_note = cpuNote;
  if (fbNote) out.faceboxes_note = fbNote;
  if (leaked !== 0) out.leaked_tensors = leaked;
  console.log(JSON.stringify(out));
}

main().catch((e) => { console.error(e); process.exit(1); });
