#!/usr/bin/env node
'use strict';
// Optional second check of the hand-written dlib-resnet forward pass
// (dlib_resnet.js): runs face-api's own bundled implementation on the same
// inputs and compares its descriptor with the stored reference files.
//
//   cd tests/ref && NODE_PATH=$PWD/node_modules node crosscheck_faceapi.js /path/to/face-api/package
//
// The argument is an unpacked @vladmandic/face-api@1.7.15 npm package (e.g.
// `npm pack @vladmandic/face-api@1.7.15` then tar xzf). Its
// dist/face-api.node-wasm.js does require('@tensorflow/tfjs') and
// require('@tensorflow/tfjs-backend-wasm'); NODE_PATH makes those resolve to
// this folder's node_modules, so face-api and this script share one tfjs
// instance (4.22.0) and the same backend. Weights are loaded by face-api
// itself (faceRecognitionNet.loadFromDisk(models/)). Nothing is fetched.
// Runs on the cpu backend, then on wasm; exits non-zero if a descriptor
// differs from the stored one by more than 1e-5 absolute.

const fs = require('fs');
const path = require('path');
const L = require('./lib.js');

const TOL = 1e-5;

async function main() {
  const pkg = process.argv[2];
  if (!pkg) throw new Error('usage: NODE_PATH=$PWD/node_modules node crosscheck_faceapi.js <face-api package dir>');
  const tf = L.loadTf();
  await L.useCpu();
  const faceapi = require(path.resolve(pkg, 'dist', 'face-api.node-wasm.js'));
  if (faceapi.tf.Tensor !== tf.Tensor) throw new Error('face-api loaded another tfjs; set NODE_PATH=$PWD/node_modules');
  const net = faceapi.nets.faceRecognitionNet;
  await net.loadFromDisk(L.MODELS_DIR);
  console.log(`face-api ${faceapi.version}, tfjs ${tf.version.tfjs}`);

  const m = L.MODELS['dlib-resnet'];
  let worst = 0;
  for (const backend of ['cpu', 'wasm']) {
    if (backend === 'wasm') await L.useWasm();
    for (const gen of ['hash', 'gradient']) {
      const ref = L.fromLE(fs.readFileSync(path.join(L.OUT_DIR, `dlib-resnet_${gen}__descriptor.f32`)));
      const x = tf.tensor(L.makeInput('dlib-resnet', gen), m.shape, 'float32');
      const got = await net.computeFaceDescriptor(x);
      x.dispose();
      let maxAbs = 0, refMax = 0;
      for (let i = 0; i < ref.length; i++) {
        maxAbs = Math.max(maxAbs, Math.abs(got[i] - ref[i]));
        refMax = Math.max(refMax, Math.abs(ref[i]));
      }
      if (got.length !== ref.length) throw new Error(`face-api gave ${got.length} values, reference has ${ref.length}`);
      worst = Math.max(worst, maxAbs);
      console.log(`  ${backend.padEnd(4)} ${gen.padEnd(8)} max|face-api - ref|=${maxAbs.toExponential(3)}  max|ref|=${refMax.toPrecision(5)}` +
        `  face-api head=${Array.from(got.slice(0, 3)).map((v) => v.toPrecision(7)).join(',')}`);
    }
  }
  console.log(worst <= TOL ? `crosscheck_faceapi: OK (worst ${worst.toExponential(3)})` : `crosscheck_faceapi: FAIL (worst ${worst})`);
  process.exit(worst <= TOL ? 0 : 1);
}

main().catch((e) => { console.error(e); process.exit(1); });
