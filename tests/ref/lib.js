'use strict';
// Shared helpers for the visage TF.js reference (tests/ref/make_ref.js,
// tests/ref/check_ref.js) and the wasm benchmark (bench/tfjs/bench.js).
//
// Everything here works offline: models are read from disk and handed to
// tf.io.fromMemory, and the wasm backend is pointed at the .wasm files that
// ship inside node_modules/@tensorflow/tfjs-backend-wasm/dist/.

const fs = require('fs');
const path = require('path');

const REF_DIR = __dirname;
const REPO_ROOT = path.resolve(REF_DIR, '..', '..');
const MODELS_DIR = path.join(REPO_ROOT, 'models');
const OUT_DIR = path.join(REPO_ROOT, 'tests', 'data', 'ref');

let tf = null;
function loadTf() {
  if (tf) return tf;
  tf = require('@tensorflow/tfjs');
  // PROD only silences tfjs warnings (e.g. the "install tfjs-node" banner the
  // cpu backend prints on first use); it does not change any computation.
  tf.env().set('PROD', true);
  return tf;
}

// ---------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------

// Per-model description: input node name, shape, value range, and the output
// node names passed to model.execute(). Output names are exactly the strings
// used with execute() (no ":0" suffix).
const MODELS = {
  'blazeface-back': {
    input: 'input',
    shape: [1, 256, 256, 3],
    range: [-1, 1],
    // Identity/Identity_1/Identity_2/Identity_3 are the 4 graph sinks
    // (Identity ops fed by Reshape nodes). Shapes are verified at run time.
    outputs: ['Identity', 'Identity_1', 'Identity_2', 'Identity_3'],
  },
  faceres: {
    input: 'input_1',
    shape: [1, 224, 224, 3],
    range: [0, 255],
    // global_pooling/Mean is internal (the 1024-d embedding); the other two
    // are the declared graph outputs.
    outputs: ['global_pooling/Mean', 'gender_pred/Sigmoid', 'age_pred/Softmax'],
  },
  // face-api's face recognition net (dlib ResNet, 128-d). Weights only (a TF.js
  // weights manifest, no graph): the forward pass is written by hand in
  // dlib_resnet.js. The input is raw RGB 0..255; the mean subtraction and the
  // division by 255 happen inside the forward pass, as in face-api.
  'dlib-resnet': {
    weightsOnly: true,
    model_json: 'face_recognition_model-weights_manifest.json',
    input: 'input',
    shape: [1, 150, 150, 3],
    range: [0, 255],
    preprocess: 'inside the net: x = (v - [122.782, 117.001, 104.298][c]) / 255 ' +
      '(float32 sub, then float32 div by 255; face-api divides by 255, dlib by 256)',
    // The 128-d descriptor, not L2-normalised (face-api's raw matMul output).
    outputs: ['descriptor'],
  },
  // FaceBoxes (a TF Object Detection API export). Its graph holds loops,
  // TensorArrays and NMS: visage feeds it at standardize_input/sub and stops
  // at the six prediction-layer BiasAdd outputs, then does anchors, softmax
  // and NMS in C. The reference runs it from image_tensor on integer pixels
  // of 256x384 (multiples of 128, so the graph pads nothing; not square, so
  // a swapped x/y shows) and also records the graph's own anchors, face
  // scores and decoded boxes, against which the C decoder is checked.
  faceboxes: {
    input: 'image_tensor',
    dtype: 'int32',
    shape: [1, 256, 384, 3],
    range: [0, 255],
    integer: true,
    preprocess: 'pixels p = round(u*255) fed to image_tensor; the graph computes ' +
      '(float32) p * 0.0039215087890625 (1/255 as float16), then 2*x - 1: that is the C input at standardize_input/sub',
    outputs: [
      'prediction_layers/class_predictor_0/BiasAdd', 'prediction_layers/box_encoding_predictor_0/BiasAdd',
      'prediction_layers/class_predictor_1/BiasAdd', 'prediction_layers/box_encoding_predictor_1/BiasAdd',
      'prediction_layers/class_predictor_2/BiasAdd', 'prediction_layers/box_encoding_predictor_2/BiasAdd',
      // [anchors,4] ymin,xmin,ymax,xmax in [0,1], clipped; face probability
      // [1,anchors]; decoded boxes [1,anchors,4] in [0,1] of the image, clipped.
      'concatenate/clip_by_value', 'postprocessing/strided_slice_2', 'postprocessing/clip_by_value_1',
    ],
  },
};

// Reads <models>/<name>.json and its .bin shards and returns the ModelArtifacts
// for tf.io.fromMemory: modelTopology + weightSpecs (flattened from
// weightsManifest, in manifest order) + weightData (all shards concatenated,
// in manifest order, as one ArrayBuffer).
function readArtifacts(name, modelsDir = MODELS_DIR) {
  const jsonPath = path.join(modelsDir, name + '.json');
  const j = JSON.parse(fs.readFileSync(jsonPath, 'utf8'));
  const weightSpecs = [];
  const shards = [];
  for (const group of j.weightsManifest) {
    for (const w of group.weights) weightSpecs.push(w);
    for (const p of group.paths) shards.push(fs.readFileSync(path.join(path.dirname(jsonPath), p)));
  }
  const total = shards.reduce((n, b) => n + b.length, 0);
  const weightData = new ArrayBuffer(total);
  const u8 = new Uint8Array(weightData);
  let off = 0;
  for (const b of shards) { u8.set(b, off); off += b.length; }
  const art = { modelTopology: j.modelTopology, weightSpecs, weightData };
  if (j.format) art.format = j.format;
  if (j.generatedBy) art.generatedBy = j.generatedBy;
  if (j.convertedBy) art.convertedBy = j.convertedBy;
  if (j.signature) art.signature = j.signature;
  if (j.userDefinedMetadata) art.userDefinedMetadata = j.userDefinedMetadata;
  return art;
}

async function loadModel(name, modelsDir = MODELS_DIR) {
  const t = loadTf();
  if (MODELS[name] && MODELS[name].weightsOnly) return require('./dlib_resnet.js').load(t, modelsDir);
  const handler = t.io.fromMemory(readArtifacts(name, modelsDir));
  return t.loadGraphModel(handler);
}

// ---------------------------------------------------------------------------
// Input generators (integer arithmetic only; see README.md)
// ---------------------------------------------------------------------------

// Scale u in [0,1] (a double) to the model's range, in double precision, then
// the caller rounds to float32. Both forms are a single IEEE rounding in C too:
//   [-1,1]: v = u*2 - 1   (u*2 is exact, so fused or not the result is equal)
//   [0,255]: v = u*255
function scale(u, range) {
  if (range[0] === -1 && range[1] === 1) return u * 2 - 1;
  if (range[0] === 0 && range[1] === 255) return u * 255;
  throw new Error('unsupported range ' + range);
}

// "hash": element index i over the row-major NHWC tensor (i = ((n*H + y)*W + x)*C + c)
//   h = (i * 2654435761) mod 2^32       (exact uint32 product)
//   u = (h % 1000) / 999                (double)
function genHash(shape, range) {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const h = Math.imul(i, 2654435761 | 0) >>> 0; // low 32 bits of i*2654435761
    const u = (h % 1000) / 999;
    out[i] = scale(u, range);
  }
  return out;
}

// "gradient": x = column, y = row, c = channel (batch index ignored, N=1).
// A diagonal triangle wave (continuous, unlike a % 256 sawtooth, so it has no
// hard edges and gives more image-like activations):
//   t = (x*3 + y*5 + c*7) % 512
//   u = (t < 256 ? t : 511 - t) / 255   (double)
function genGradient(shape, range) {
  const [N, H, W, C] = shape;
  const out = new Float32Array(N * H * W * C);
  let i = 0;
  for (let b = 0; b < N; b++) {
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        for (let c = 0; c < C; c++) {
          const t = (x * 3 + y * 5 + c * 7) % 512;
          const u = (t < 256 ? t : 511 - t) / 255;
          out[i++] = scale(u, range);
        }
      }
    }
  }
  return out;
}

const GENERATORS = {
  hash: {
    fn: genHash,
    description: 'i = row-major NHWC element index; h = (i * 2654435761) mod 2^32 (uint32 multiply); ' +
      'u = (double)(h % 1000) / 999.0; v = scale(u); stored as (float)v',
    c: 'uint32_t h = (uint32_t)i * 2654435761u; double u = (double)(h % 1000u) / 999.0; float v = (float)SCALE(u);',
  },
  gradient: {
    fn: genGradient,
    description: 'x = column, y = row, c = channel (triangle wave); t = (x*3 + y*5 + c*7) % 512; ' +
      'u = (double)(t < 256 ? t : 511 - t) / 255.0; v = scale(u); stored as (float)v',
    c: 'int t = (x*3 + y*5 + c*7) % 512; double u = (double)(t < 256 ? t : 511 - t) / 255.0; float v = (float)SCALE(u);',
  },
};

const SCALES = {
  '-1,1': 'v = u*2.0 - 1.0 (double)',
  '0,255': 'v = u*255.0 (double)',
  '0,255,integer': 'v = round(u*255.0) (double; no value of u lies near a .5)',
};

function scaleName(m) {
  return m.range.join(',') + (m.integer ? ',integer' : '');
}

function makeInput(modelName, genName) {
  const m = MODELS[modelName];
  const v = GENERATORS[genName].fn(m.shape, m.range);
  if (m.integer) for (let i = 0; i < v.length; i++) v[i] = Math.round(v[i]);
  return v;
}

// ---------------------------------------------------------------------------
// Misc
// ---------------------------------------------------------------------------

function stats(a) {
  let min = Infinity, max = -Infinity, sum = 0, sumsq = 0, nonfinite = 0;
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    if (!Number.isFinite(v)) { nonfinite++; continue; }
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
    sumsq += v * v;
  }
  const n = a.length - nonfinite;
  return { min, max, sum, mean: n ? sum / n : NaN, rms: n ? Math.sqrt(sumsq / n) : NaN, nonfinite };
}

function toLE(f32) {
  const buf = Buffer.alloc(f32.length * 4);
  for (let i = 0; i < f32.length; i++) buf.writeFloatLE(f32[i], i * 4);
  return buf;
}

function fromLE(buf) {
  const out = new Float32Array(buf.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = buf.readFloatLE(i * 4);
  return out;
}

function fileSafe(nodeName) {
  return nodeName.replace(/[^A-Za-z0-9_.-]/g, '_');
}

// Runs one model on one input with the current backend and returns
// [{name, shape, data: Float32Array}] in the order of `outputs`.
async function runModel(model, modelName, input, outputs) {
  const t = loadTf();
  const m = MODELS[modelName];
  const names = outputs || m.outputs;
  const x = t.tensor(input, m.shape, m.dtype || 'float32');
  let res = model.execute({ [m.input]: x }, names);
  if (!Array.isArray(res)) res = [res];
  const out = [];
  for (let k = 0; k < names.length; k++) {
    out.push({ name: names[k], shape: res[k].shape.slice(), data: await res[k].data() });
    res[k].dispose();
  }
  x.dispose();
  return out;
}

function wasmDistDir() {
  const pkg = require.resolve('@tensorflow/tfjs-backend-wasm/package.json');
  return path.join(path.dirname(pkg), 'dist') + path.sep;
}

// Registers and selects the wasm backend, loading the .wasm binaries from the
// local node_modules (read with fs in Node; nothing is fetched). Returns
// {threads, simd}.
async function useWasm() {
  const t = loadTf();
  const wasm = require('@tensorflow/tfjs-backend-wasm');
  const dir = wasmDistDir();
  wasm.setWasmPaths({
    'tfjs-backend-wasm.wasm': dir + 'tfjs-backend-wasm.wasm',
    'tfjs-backend-wasm-simd.wasm': dir + 'tfjs-backend-wasm-simd.wasm',
    'tfjs-backend-wasm-threaded-simd.wasm': dir + 'tfjs-backend-wasm-threaded-simd.wasm',
  });
  const ok = await t.setBackend('wasm');
  if (!ok || t.getBackend() !== 'wasm') throw new Error('could not initialise the wasm backend');
  await t.ready();
  const simd = await t.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  const mt = await t.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
  return { threads: wasm.getThreadsCount(), simd: !!simd, multithread_support: !!mt };
}

async function useCpu() {
  const t = loadTf();
  const ok = await t.setBackend('cpu');
  if (!ok || t.getBackend() !== 'cpu') throw new Error('could not initialise the cpu backend');
  await t.ready();
}

module.exports = {
  REF_DIR, REPO_ROOT, MODELS_DIR, OUT_DIR, MODELS, GENERATORS, SCALES,
  loadTf, readArtifacts, loadModel, makeInput, genHash, genGradient, scale, scaleName,
  stats, toLE, fromLE, fileSafe, runModel, useWasm, useCpu, wasmDistDir,
};
