#!/usr/bin/env node
'use strict';
// Checks tests/data/ref against index.json and cross-checks the stored cpu
// backend outputs against the @tensorflow/tfjs-backend-wasm backend.
//
//   cd tests/ref && node check_ref.js
//
// 1. every file in index.json exists and its size is 4 * prod(shape);
// 2. the regenerated inputs match the recorded head/sum;
// 3. every case is re-run with the wasm backend (XNNPACK, SIMD, offline
//    .wasm from node_modules) and compared with the stored cpu output:
//    prints max |wasm - cpu| and that divided by max |cpu| per output.
// Exits non-zero on a missing/mis-sized file, an input mismatch, or a
// relative difference above 1e-3.

const fs = require('fs');
const path = require('path');
const L = require('./lib.js');

const REL_TOL = 1e-3;

async function main() {
  const index = JSON.parse(fs.readFileSync(path.join(L.OUT_DIR, 'index.json'), 'utf8'));
  let failures = 0;
  const fail = (msg) => { failures++; console.log('FAIL ' + msg); };

  // 1 + 2: files and inputs.
  for (const c of index.cases) {
    for (const o of c.outputs) {
      const p = path.join(L.OUT_DIR, o.file);
      const want = 4 * o.shape.reduce((a, b) => a * b, 1);
      if (!fs.existsSync(p)) { fail(`${o.file} missing`); continue; }
      const got = fs.statSync(p).size;
      if (got !== want) fail(`${o.file}: ${got} bytes, shape ${JSON.stringify(o.shape)} needs ${want}`);
    }
    const input = L.makeInput(c.model, c.input.generator);
    const s = L.stats(input);
    const headOk = c.input.head.every((v, i) => Object.is(v, input[i]));
    if (!headOk || s.sum !== c.input.sum) fail(`${c.name}: regenerated input differs from index.json`);
  }
  console.log(`files/inputs: ${index.cases.length} cases checked`);

  // 3: wasm vs stored cpu.
  const info = await L.useWasm();
  console.log(`wasm backend: threads=${info.threads} simd=${info.simd}`);
  const models = {};
  let worstAbs = 0, worstRel = 0;
  for (const c of index.cases) {
    if (!models[c.model]) models[c.model] = await L.loadModel(c.model);
    const names = c.outputs.map((o) => o.name);
    const outs = await L.runModel(models[c.model], c.model, L.makeInput(c.model, c.input.generator), names);
    for (let k = 0; k < outs.length; k++) {
      const o = c.outputs[k];
      const ref = L.fromLE(fs.readFileSync(path.join(L.OUT_DIR, o.file)));
      const got = outs[k].data;
      if (JSON.stringify(outs[k].shape) !== JSON.stringify(o.shape)) {
        fail(`${c.name}/${o.name}: wasm shape ${JSON.stringify(outs[k].shape)} != ${JSON.stringify(o.shape)}`);
        continue;
      }
      let maxAbs = 0, refMax = 0;
      for (let i = 0; i < ref.length; i++) {
        maxAbs = Math.max(maxAbs, Math.abs(got[i] - ref[i]));
        refMax = Math.max(refMax, Math.abs(ref[i]));
      }
      const rel = refMax > 0 ? maxAbs / refMax : maxAbs;
      worstAbs = Math.max(worstAbs, maxAbs);
      worstRel = Math.max(worstRel, rel);
      console.log(`  ${c.name.padEnd(33)} ${o.name.padEnd(20)} max_abs_diff=${maxAbs.toExponential(3)}` +
        `  max|ref|=${refMax.toPrecision(5)}  rel=${rel.toExponential(3)}`);
      if (!(rel <= REL_TOL)) fail(`${c.name}/${o.name}: wasm vs cpu rel diff ${rel} > ${REL_TOL}`);
    }
  }
  console.log(`wasm vs cpu: worst max_abs_diff=${worstAbs.toExponential(3)} worst rel=${worstRel.toExponential(3)}`);
  console.log(failures ? `check_ref: ${failures} failure(s)` : 'check_ref: OK');
  process.exit(failures ? 1 : 0);
}

main().catch((e) => { console.error(e); process.exit(1); });
