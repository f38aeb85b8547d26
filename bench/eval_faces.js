#!/usr/bin/env node
'use strict';
// bench/eval_faces.js - accuracy of visage on ../shared/data/faces:
//   faces found per photo (vs what its README says), and same/different-person
//   verification over every pair of labelled single-person photos: ROC AUC,
//   accuracy at the default threshold, the best threshold, score margins.
//   node bench/eval_faces.js [path/to/visage]
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const bin = process.argv[2] || path.join(root, 'build', 'visage');
const faces = path.join(root, '..', 'shared', 'data', 'faces');

// Who is in each photo, from the data set's README (test tooling only).
const person = {
  'knn_examples/test/obama1.jpg': 'obama', 'knn_examples/test/alex_lacamoire1.jpg': 'alex_lacamoire',
  'knn_examples/test/johnsnow_test1.jpg': 'kit_harington', 'obama-1080p.jpg': 'obama', 'obama-240p.jpg': 'obama',
  'obama_small.jpg': 'obama', 'test_images/obama3.jpg': 'obama', 'test_images/obama_partial_face.jpg': 'obama',
  'test_images/32bit.png': null,
};
const expectedFaces = { 'two_people.jpg': 2, 'knn_examples/test/obama_and_biden.jpg': 2, 'knn_examples/test/kit_with_rose.jpg': 2 };

function walk(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(path.join(dir, e.name)) : /\.(jpe?g|png)$/i.test(e.name) ? [path.join(dir, e.name)] : []);
}
const files = walk(faces).sort();
const out = execFileSync(bin, ['embed', ...files], { encoding: 'utf8', maxBuffer: 1 << 28 });
const rows = out.trim().split('\n').map((l) => JSON.parse(l));

let threshold = null;
try {
  threshold = JSON.parse(execFileSync(bin, ['compare', files[0], files[0]], { encoding: 'utf8' })).threshold;
} catch (e) { /* no face in files[0]: leave null */ }

console.log('# faces found per photo (expected: 1 unless noted)');
const items = [];
for (const r of rows) {
  const rel = path.relative(faces, r.file);
  const want = expectedFaces[rel] || 1;
  const scores = r.faces.map((f) => f.det_score.toFixed(2)).join(' ');
  console.log(`${rel}\t${r.width}x${r.height}\tfound ${r.faces.length}\texpected ${want}${rel.includes('obama_and_biden') ? ' (+1 partly hidden person)' : ''}\tscores ${scores}`);
  let who = rel.startsWith('knn_examples/train/') ? rel.split('/')[2] : person[rel];
  if (who && r.faces.length) {
    const best = r.faces.reduce((a, b) => (b.det_score * (0.25 + b.quality) > a.det_score * (0.25 + a.quality) ? b : a));
    items.push({ who, rel, e: best.embedding });
  }
}
const dot = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0);
const pos = [], neg = [];
for (let i = 0; i < items.length; i++)
  for (let j = i + 1; j < items.length; j++)
    (items[i].who === items[j].who ? pos : neg).push({ s: dot(items[i].e, items[j].e), a: items[i].rel, b: items[j].rel });
let auc = 0;
for (const p of pos) for (const n of neg) auc += p.s > n.s ? 1 : p.s === n.s ? 0.5 : 0;
auc /= pos.length * neg.length;
const acc = (t) => (pos.filter((p) => p.s >= t).length + neg.filter((n) => n.s < t).length) / (pos.length + neg.length);
let best = { t: 0, a: 0 };
for (let t = 0; t <= 1; t += 0.001) if (acc(t) > best.a) best = { t, a: acc(t) };
pos.sort((x, y) => x.s - y.s);
neg.sort((x, y) => y.s - x.s);
const sd = (a) => { const m = a.reduce((s, p) => s + p.s, 0) / a.length; return Math.sqrt(a.reduce((s, p) => s + (p.s - m) ** 2, 0) / a.length); };
console.log("# verification over all pairs of labelled single-person photos");
console.log(JSON.stringify({
  people: new Set(items.map((x) => x.who)).size, photos: items.length, same_pairs: pos.length, different_pairs: neg.length,
  roc_auc: +auc.toFixed(4), default_threshold: threshold, accuracy_at_default: threshold == null ? null : +acc(threshold).toFixed(4),
  best_threshold: +best.t.toFixed(3), best_accuracy: +best.a.toFixed(4),
  lowest_same: +pos[0].s.toFixed(3), lowest_same_pair: [pos[0].a, pos[0].b],
  highest_different: +neg[0].s.toFixed(3), highest_different_pair: [neg[0].a, neg[0].b],
  mean_same: +(pos.reduce((s, p) => s + p.s, 0) / pos.length).toFixed(3),
  mean_different: +(neg.reduce((s, p) => s + p.s, 0) / neg.length).toFixed(3),
  sd_same: +sd(pos).toFixed(3), sd_different: +sd(neg).toFixed(3),
}));
