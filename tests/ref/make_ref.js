#!/usr/bin/env node
'use strict';
// Generates the TF.js reference outputs used by visage's C tests.
//
//   cd tests/ref && npm ci && node make_ref.js
//
// For each model in models/ and each input generator ("hash", "gradient"),
// builds the input tensor deterministically (integer arithmetic; see README.md
// and lib.js), runs the graph with the pure-JS 'cpu' backend of
// @tensorflow/tfjs, and writes every requested output node as a raw
// little-endian float32 file to tests/data/ref/, plus tests/data/ref/index.json.
// Inputs are not written: the C side regenerates them.

const fs = require('fs');
const path = require('path');
const L = require('./lib.js');

const CASES = [];
for (const model of Object.keys(L.MODELS)) {
  for (const gen of ['hash', 'gradient']) CASES.push({ model, gen });
}

function fmt(x) { return Number.isFinite(x) ? x.toPrecision(7) : String(x); }

async function main() {
  const tf = L.loadTf();
  await L.useCpu();
  fs.mkdirSync(L.OUT_DIR, { recursive: true });
  // Remove stale outputs from earlier runs so the directory mirrors index.json.
  for (const f of fs.readdirSync(L.OUT_DIR)) {
    if (f.endsWith('.f32') || f === 'index.json') fs.unlinkSync(path.join(L.OUT_DIR, f));
  }

  const index = {
    format: 'visage-tfjs-ref',
    version: 1,
    tfjs_version: tf.version.tfjs,
    backend: tf.getBackend(),
    dtype: 'float32',
    byte_order: 'little-endian',
    layout: 'row-major, shape as listed (inputs NHWC)',
    regenerate: 'cd tests/ref && npm ci && node make_ref.js',
    generators: {},
    scales: {
      '[-1,1]': L.SCALES['-1,1'],
      '[0,255]': L.SCALES['0,255'],
      '[0,255] integer': L.SCALES['0,255,integer'],
    },
    cases: [],
  };
  for (const [k, g] of Object.entries(L.GENERATORS)) {
    index.generators[k] = { description: g.description, c: g.c };
  }

  const models = {};
  let totalBytes = 0;
  for (const { model, gen } of CASES) {
    const m = L.MODELS[model];
    if (!models[model]) models[model] = await L.loadModel(model);
    const input = L.makeInput(model, gen);
    const inStats = L.stats(input);
    const caseName = `${model}_${gen}`;
    const t0 = process.hrtime.bigint();
    const outs = await L.runModel(models[model], model, input);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;

    const entry = {
      name: caseName,
      model,
      model_json: `models/${m.model_json || model + '.json'}`,
      input: {
        name: m.input,
        shape: m.shape,
        dtype: m.dtype || 'float32',
        layout: 'NHWC',
        generator: gen,
        range: m.range,
        scale: L.SCALES[L.scaleName(m)],
        // First 8 values, as float32 printed exactly (for checking a C port).
        head: Array.from(input.slice(0, 8)),
        sum: inStats.sum, // double-precision sum of the float32 values
      },
      outputs: [],
    };
    if (m.preprocess) entry.input.preprocess = m.preprocess;
    console.log(`${caseName}  (${ms.toFixed(0)} ms, input min=${fmt(inStats.min)} max=${fmt(inStats.max)} mean=${fmt(inStats.mean)})`);
    for (const o of outs) {
      const file = `${caseName}__${L.fileSafe(o.name)}.f32`;
      const buf = L.toLE(o.data);
      fs.writeFileSync(path.join(L.OUT_DIR, file), buf);
      totalBytes += buf.length;
      const s = L.stats(o.data);
      entry.outputs.push({
        name: o.name,
        shape: o.shape,
        dtype: 'float32',
        file,
        bytes: buf.length,
        min: s.min, max: s.max, mean: s.mean, rms: s.rms,
      });
      console.log(`  ${o.name.padEnd(22)} ${JSON.stringify(o.shape).padEnd(12)} -> ${file}` +
        `  min=${fmt(s.min)} max=${fmt(s.max)} mean=${fmt(s.mean)}` + (s.nonfinite ? ` NONFINITE=${s.nonfinite}` : ''));
      if (s.nonfinite) throw new Error(`${caseName}/${o.name}: non-finite values`);
    }
    index.cases.push(entry);
  }

  fs.writeFileSync(path.join(L.OUT_DIR, 'index.json'), JSON.stringify(index, null, 1) + '\n');
  const total = totalBytes + fs.statSync(path.join(L.OUT_DIR, 'index.json')).size;
  console.log(`wrote ${index.cases.length} cases, ${total} bytes to ${path.relative(L.REPO_ROOT, L.OUT_DIR)}/`);
  if (total > 2 * 1024 * 1024) throw new Error('tests/data/ref exceeds 2 MB');
}

main().catch((e) => { console.error(e); process.exit(1); });
