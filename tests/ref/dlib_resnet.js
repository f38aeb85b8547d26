'use strict';
// Hand-written TF.js forward pass of the face recognition network that
// @vladmandic/face-api ships as models/face_recognition_model-weights_manifest.json
// + face_recognition_model.bin: dlib's face descriptor ResNet (128-d output), as
// face-api runs it. There is no graph, only the weights, so the layer order here
// follows face-api 1.7.15 (src/faceRecognitionNet/*.ts). It was written from
// that description, not copied.
//
// Input:  [1,150,150,3] float32 RGB, 0..255, NHWC.
// Output: "descriptor" [1,128] float32, NOT L2-normalised.
//
// Preprocessing is part of the forward pass (as in face-api):
//   x = (rgb - [122.782, 117.001, 104.298]) / 255
// (a float32 subtraction, then a float32 division by 255). NB dlib itself divides
// by 256; face-api divides by 255 and this reference follows face-api.
//
// Layers ("unit" = conv2d + conv bias, then the per-channel scale layer
// y*scale.weights + scale.biases, then an optional relu; the ops run in exactly
// that order):
//   conv32_down   unit 7x7 stride 2 'valid', 3->32, relu      150 -> 72
//   maxPool 3x3 stride 2 'valid'                               72 -> 35
//   conv32_1..3   residual (32)                                35
//   conv64_down   residual down, 32->64                        35 -> 17
//   conv64_1..3   residual (64)                                17
//   conv128_down  residual down, 64->128                       17 -> 8
//   conv128_1..2  residual (128)                               8
//   conv256_down  residual down, 128->256                      8 -> 4 (conv gives 3, padded)
//   conv256_1..2  residual (256)                               4
//   conv256_down_out residual down, 256->256                   4 -> 2 (conv gives 1, padded)
//   mean over H,W -> [1,256]; matMul with fc [256,128] -> [1,128]
//
// residual(x):      b = unit(x, conv1, 3x3/1 'same', relu); b = unit(b, conv2, 3x3/1 'same', no relu)
//                   y = relu(b + x)
// residual down(x): b = unit(x, conv1, 3x3/2 'valid', relu); b = unit(b, conv2, 3x3/1 'same', no relu)
//                   s = avgPool(x, 2x2, stride 2, 'valid')
//                   if b is smaller than s in H/W: zero rows/columns appended at the END
//                     (bottom rows, right columns) of b until it matches s
//                   if s has fewer channels than b: zero channels appended at the end of s
//                   y = relu(s + b)        (addition order: s + b)

const fs = require('fs');
const path = require('path');

const MANIFEST = 'face_recognition_model-weights_manifest.json';
const MEAN_RGB = [122.782, 117.001, 104.298];
const INPUT_SIZE = 150;

// [name, kind] in execution order, after the stem (conv32_down + maxPool).
const BLOCKS = [
  ['conv32_1', 'res'], ['conv32_2', 'res'], ['conv32_3', 'res'],
  ['conv64_down', 'down'], ['conv64_1', 'res'], ['conv64_2', 'res'], ['conv64_3', 'res'],
  ['conv128_down', 'down'], ['conv128_1', 'res'], ['conv128_2', 'res'],
  ['conv256_down', 'down'], ['conv256_1', 'res'], ['conv256_2', 'res'],
  ['conv256_down_out', 'down'],
];

// Every output name execute() accepts: the descriptor plus the intermediate
// activations (for debugging a port layer by layer).
const NODES = ['input_norm', 'conv32_down', 'max_pool', ...BLOCKS.map((b) => b[0]), 'mean', 'descriptor'];

// Reads the manifest (a JSON array of {paths, weights}) and its shards from
// disk and decodes them with tf.io.decodeWeights (uint8-quantised entries
// become float32 as q*scale + min, computed in double and rounded once).
function readWeights(tf, modelsDir) {
  const manifestPath = path.join(modelsDir, MANIFEST);
  const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
  const specs = [];
  const shards = [];
  for (const group of manifest) {
    for (const w of group.weights) specs.push(w);
    for (const p of group.paths) shards.push(fs.readFileSync(path.join(modelsDir, p)));
  }
  const bytes = Buffer.concat(shards);
  // The shards must hold exactly the bytes the specs describe.
  let want = 0;
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const q = s.quantization ? s.quantization.dtype : s.dtype;
    want += n * { uint8: 1, uint16: 2, float16: 2, float32: 4, int32: 4 }[q];
  }
  if (want !== bytes.length) {
    throw new Error(`${manifestPath}: specs need ${want} bytes, shards hold ${bytes.length}`);
  }
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length);
  return tf.io.decodeWeights(ab, specs);
}

function take(weights, name, rank) {
  const t = weights[name];
  if (!t) throw new Error(`dlib-resnet: weight ${name} missing`);
  if (t.rank !== rank) throw new Error(`dlib-resnet: weight ${name} has rank ${t.rank}, expected ${rank}`);
  return t;
}

function unitParams(weights, prefix) {
  return {
    filters: take(weights, `${prefix}/conv/filters`, 4), // HWIO
    bias: take(weights, `${prefix}/conv/bias`, 1),
    mul: take(weights, `${prefix}/scale/weights`, 1),
    add: take(weights, `${prefix}/scale/biases`, 1),
  };
}

// conv -> +bias -> *scale.weights -> +scale.biases -> [relu]
function unit(tf, x, p, stride, padding, relu) {
  let y = tf.conv2d(x, p.filters, stride, padding);
  y = tf.add(y, p.bias);
  y = tf.mul(y, p.mul);
  y = tf.add(y, p.add);
  return relu ? tf.relu(y) : y;
}

function residual(tf, x, p) {
  const a = unit(tf, x, p.conv1, 1, 'same', true);
  const b = unit(tf, a, p.conv2, 1, 'same', false);
  return tf.relu(tf.add(b, x));
}

function residualDown(tf, x, p) {
  const a = unit(tf, x, p.conv1, 2, 'valid', true);
  let b = unit(tf, a, p.conv2, 1, 'same', false);
  let s = tf.avgPool(x, 2, 2, 'valid');
  const dh = s.shape[1] - b.shape[1];
  const dw = s.shape[2] - b.shape[2];
  if (dh < 0 || dw < 0) throw new Error(`dlib-resnet: conv branch ${b.shape} larger than shortcut ${s.shape}`);
  if (dh || dw) b = tf.pad(b, [[0, 0], [0, dh], [0, dw], [0, 0]]);
  const dc = b.shape[3] - s.shape[3];
  if (dc < 0) throw new Error(`dlib-resnet: shortcut ${s.shape} has more channels than ${b.shape}`);
  if (dc) s = tf.pad(s, [[0, 0], [0, 0], [0, 0], [0, dc]]);
  return tf.relu(tf.add(s, b));
}

// Returns a model object with a GraphModel-like execute(feeds, names), so
// lib.js#runModel works on it unchanged. feeds = {input: Tensor4D [N,150,150,3]}.
function load(tf, modelsDir) {
  const w = readWeights(tf, modelsDir);
  const params = { conv32_down: unitParams(w, 'conv32_down'), fc: take(w, 'fc', 2) };
  for (const [name] of BLOCKS) {
    params[name] = { conv1: unitParams(w, `${name}/conv1`), conv2: unitParams(w, `${name}/conv2`) };
  }
  // 4 tensors for the stem, 8 per block, 1 for fc: nothing in the manifest is left unused.
  const nUsed = 4 + 8 * BLOCKS.length + 1;
  if (Object.keys(w).length !== nUsed) {
    throw new Error(`dlib-resnet: manifest has ${Object.keys(w).length} weights, the net uses ${nUsed}`);
  }

  function execute(feeds, names) {
    const single = typeof names === 'string';
    const want = single ? [names] : names;
    for (const n of want) if (!NODES.includes(n)) throw new Error(`dlib-resnet: unknown output ${n}`);
    const x = feeds.input;
    if (!x || x.rank !== 4 || x.shape[1] !== INPUT_SIZE || x.shape[2] !== INPUT_SIZE || x.shape[3] !== 3) {
      throw new Error(`dlib-resnet: input must be [N,${INPUT_SIZE},${INPUT_SIZE},3]`);
    }
    const kept = {};
    const keep = (name, t) => { if (want.includes(name)) kept[name] = tf.keep(t); return t; };
    tf.tidy(() => {
      const mean = tf.tensor1d(MEAN_RGB, 'float32');
      let y = keep('input_norm', tf.div(tf.sub(tf.cast(x, 'float32'), mean), 255));
      y = keep('conv32_down', unit(tf, y, params.conv32_down, 2, 'valid', true));
      y = keep('max_pool', tf.maxPool(y, 3, 2, 'valid'));
      for (const [name, kind] of BLOCKS) {
        y = keep(name, kind === 'down' ? residualDown(tf, y, params[name]) : residual(tf, y, params[name]));
      }
      const pooled = keep('mean', tf.mean(y, [1, 2]));
      keep('descriptor', tf.matMul(pooled, params.fc));
    });
    const out = want.map((n) => kept[n]);
    return single ? out[0] : out;
  }

  return { execute, params, nodes: NODES.slice() };
}

module.exports = { load, MANIFEST, MEAN_RGB, INPUT_SIZE, BLOCKS, NODES };
