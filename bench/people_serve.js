#!/usr/bin/env node
'use strict';
// bench/people_serve.js - the automatic people feature (issue 14) measured
// through the product: `visage serve` with its background people runner,
// over HTTP on loopback, everything at its default but the runner's tick
// (VISAGE_PEOPLE_TICK_MS=200).
//   node bench/people_serve.js [--strangers N] [--seed S] [--settle-timeout SEC]
// 1. build/bench_people --faces ../shared/data/faces --write-copies TMP writes
//    the shared photos' augmented copies (the ones bench_people clusters) as
//    JPEG files with TMP/labels.tsv (file, person, photo id, face box).
//    VISAGE_BENCH_PEOPLE names another bench_people binary.
// 2. The copies (and with --strangers N the first N LFW DevTest images of
//    pairsDevTest.txt, unlabelled) are ingested in a seeded shuffled order,
//    20 per POST /api/v1/ingest/batch; then the bench waits until every image
//    is done and until the people runner has settled (GET /api/v1/people and
//    each person's faces unchanged for SETTLE_QUIET_MS).
// 3. Each labelled copy is mapped to the indexed face of its image whose box
//    overlaps the expected box best (IoU >= 0.3), each face to its person
//    (GET /api/v1/people/{id}, paged), and one JSON line is printed: pairwise
//    and BCubed quality over the labelled faces (an unassigned or unindexed
//    face pairs with no one, is its own cluster in BCubed), what each found
//    person holds, strangers that joined a labelled person, timings.
// Strangers never count in the pair metrics; they are only reported as
// false members. Asserts nothing. PEOPLE_SERVE_KEEP=1 keeps the copies and
// the data dir (people.db) for a look afterwards.
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const L = require('../tests/integration/lib');

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const STRANGERS = parseInt(opt('--strangers', '0'), 10);
const SEED = parseInt(opt('--seed', '77'), 10);
const SETTLE_TIMEOUT_MS = parseFloat(opt('--settle-timeout', '300')) * 1000;
// --tick MS: the runner's pause; a long one (longer than the ingest) makes its
// first real pass a bulk batch over every face (the merge step's case)
const TICK_MS = parseInt(opt('--tick', '200'), 10);
const SETTLE_QUIET_MS = Math.max(5000, 2 * TICK_MS + 1000); // two runner passes with nothing changed
const BENCH_BIN = process.env.VISAGE_BENCH_PEOPLE || path.join(L.ROOT, 'build', 'bench_people');
const LFW = path.join(L.ROOT, '..', 'shared', 'data', 'lfw-dev');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function mulberry32(a) {
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function shuffle(a, seed) {
  const rnd = mulberry32(seed);
  for (let i = a.length - 1; i > 0; i--) { const j = Math.floor(rnd() * (i + 1)); [a[i], a[j]] = [a[j], a[i]]; }
  return a;
}
function iou(a, b) { // boxes [x, y, w, h]
  const x0 = Math.max(a[0], b[0]), y0 = Math.max(a[1], b[1]);
  const x1 = Math.min(a[0] + a[2], b[0] + b[2]), y1 = Math.min(a[1] + a[3], b[1] + b[3]);
  const inter = Math.max(0, x1 - x0) * Math.max(0, y1 - y0);
  const uni = a[2] * a[3] + b[2] * b[3] - inter;
  return uni > 0 ? inter / uni : 0;
}
// The first n distinct images the pair list names, in its order (README: NAME i j / NAME1 i NAME2 j).
function lfwImages(n) {
  const out = [], seen = new Set();
  if (n <= 0) return out;
  const lines = fs.readFileSync(path.join(LFW, 'pairsDevTest.txt'), 'utf8').split('\n').slice(1);
  for (const line of lines) {
    const f = line.trim().split(/\s+/);
    const pairs = f.length === 3 ? [[f[0], f[1]], [f[0], f[2]]] : f.length === 4 ? [[f[0], f[1]], [f[2], f[3]]] : [];
    for (const [who, num] of pairs) {
      const rel = who + '/' + who + '_' + String(num).padStart(4, '0') + '.jpg';
      if (seen.has(rel)) continue;
      seen.add(rel);
      const st = fs.statSync(path.join(LFW, rel), { throwIfNoEntry: false });
      if (!st || !st.size) continue; // Betsy_Coffin_0001.jpg is missing from the copy (an empty file)
      out.push(rel);
      if (out.length >= n) return out;
    }
  }
  return out;
}

async function allPeople(s) {
  const out = [];
  for (let c = null; ;) {
    const r = await L.api(s, 'GET', '/api/v1/people?include_ignored=true&limit=200' + (c ? '&cursor=' + encodeURIComponent(c) : ''));
    if (r.status !== 200) throw new Error('GET /api/v1/people: ' + r.status + ' ' + JSON.stringify(r.data).slice(0, 200));
    out.push(...r.data.people);
    if (!r.data.next_cursor) return out;
    c = r.data.next_cursor;
  }
}
async function personFaces(s, id) {
  const out = [];
  for (let c = null; ;) {
    const r = await L.api(s, 'GET', '/api/v1/people/' + id + '?limit=200' + (c ? '&cursor=' + encodeURIComponent(c) : ''));
    if (r.status === 404) return null; // gone between the list and now
    if (r.status !== 200) throw new Error('GET /api/v1/people/' + id + ': ' + r.status);
    out.push(...r.data.face_list.map((f) => f.face_id));
    if (!r.data.next_cursor) return out;
    c = r.data.next_cursor;
  }
}
// face id -> person id, for every person; null when a person vanished mid-read (read again).
async function snapshot(s) {
  const people = await allPeople(s);
  const faceTo = new Map();
  for (const p of people) {
    const faces = await personFaces(s, p.person_id);
    if (!faces) return null;
    for (const f of faces) faceTo.set(f, p.person_id);
  }
  const sig = people.map((p) => p.person_id + ':' + p.faces).sort().join(',') + '|' + [...faceTo].map((e) => e.join('=')).sort().join(',');
  return { people, faceTo, sig };
}

(async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'visage-pserve-'));
  const copies = path.join(tmp, 'copies');
  const dataDir = path.join(tmp, 'data');
  fs.mkdirSync(dataDir);
  let s = null;
  try {
    // 1. the copies and their labels
    const wr = execFileSync(BENCH_BIN, ['--faces', L.FACES, '--write-copies', copies, '--models', L.MODELS],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const written = JSON.parse(wr.trim().split('\n').pop());
    const labels = fs.readFileSync(path.join(copies, 'labels.tsv'), 'utf8').trim().split('\n').map((l) => {
      const f = l.split('\t');
      return { file: f[0], person: f[1], photo: +f[2], box: f.slice(3, 7).map(Number) };
    });
    const items = [...new Set(labels.map((x) => x.file))].map((f) => ({ kind: 'copy', name: f, bytes: fs.readFileSync(path.join(copies, f)) }));
    for (const rel of lfwImages(STRANGERS)) items.push({ kind: 'stranger', name: rel, bytes: fs.readFileSync(path.join(LFW, rel)) });
    for (const it of items) it.sha = crypto.createHash('sha256').update(it.bytes).digest('hex');
    shuffle(items, SEED);

    // 2. serve, ingest, wait for the records, then for the runner
    s = await L.startServer(dataDir, { VISAGE_PEOPLE_TICK_MS: String(TICK_MS) });
    const t0 = Date.now();
    const accepted = new Set();
    for (let i = 0; i < items.length; i += 20) {
      const batch = items.slice(i, i + 20);
      const r = await L.api(s, 'POST', '/api/v1/ingest/batch', { json: { items: batch.map((it) => ({ image_b64: it.bytes.toString('base64') })) } });
      if (r.status !== 202) throw new Error('ingest/batch: ' + r.status + ' ' + JSON.stringify(r.data).slice(0, 300));
      for (const a of r.data.accepted) accepted.add(a.image_sha256);
      if (r.data.rejected.length) console.error('people_serve: rejected ' + JSON.stringify(r.data.rejected).slice(0, 300));
    }
    const records = await L.waitDone(s, undefined, [...accepted], 1800000);
    const tIngest = Date.now();
    let snap = null, lastSig = null, lastChange = Date.now(), settled = false;
    while (Date.now() - tIngest < SETTLE_TIMEOUT_MS) {
      const sn = await snapshot(s);
      if (sn) {
        if (sn.sig !== lastSig) { lastSig = sn.sig; lastChange = Date.now(); }
        snap = sn;
        if (Date.now() - lastChange >= SETTLE_QUIET_MS) { settled = true; break; }
      }
      await sleep(TICK_MS * 2);
    }
    const settleS = (lastChange - tIngest) / 1000;

    // 3. labels -> faces -> people
    const bySha = new Map(items.map((it) => [it.sha, it]));
    const byFile = new Map(items.filter((it) => it.kind === 'copy').map((it) => [it.name, it]));
    let failedImages = 0;
    const strangerNotIndexed = {}; // reason -> faces, for the stranger images' faces the quality gate kept out
    const faceKind = new Map(); // face id -> 'stranger' | 'copy'
    for (const [sha, rec] of Object.entries(records)) {
      if (rec.status !== 'done') failedImages++;
      for (const f of rec.faces_indexed || []) faceKind.set(f.face_id, bySha.get(sha).kind);
      if (bySha.get(sha).kind === 'stranger')
        for (const f of rec.faces_not_indexed || []) for (const why of f.reasons || []) strangerNotIndexed[why] = (strangerNotIndexed[why] || 0) + 1;
    }
    const claimed = new Map();
    for (const lb of labels) {
      const rec = records[byFile.get(lb.file).sha];
      let best = null, bv = 0.3;
      for (const f of (rec && rec.faces_indexed) || []) {
        const v = iou(f.bbox, lb.box);
        if (v >= bv) { bv = v; best = f.face_id; }
      }
      lb.face = best;
      if (!best) { // why: a face found there but not indexed (its reasons), or none found
        let nb = null, nv = 0.3;
        for (const f of (rec && rec.faces_not_indexed) || []) { const v = iou(f.bbox, lb.box); if (v >= nv) { nv = v; nb = f; } }
        lb.why = nb ? 'not indexed: ' + (nb.reasons || []).join('+') : 'no face detected there';
      }
      if (best) claimed.set(best, (claimed.get(best) || 0) + 1);
      lb.cluster = best && snap ? snap.faceTo.get(best) || null : null;
    }
    const n = labels.length, matched = labels.filter((x) => x.face).length;
    const tsize = {};
    for (const lb of labels) tsize[lb.person] = (tsize[lb.person] || 0) + 1;
    const csize = {}, cell = {};
    for (const lb of labels) if (lb.cluster) {
      csize[lb.cluster] = (csize[lb.cluster] || 0) + 1;
      const k = lb.cluster + '\t' + lb.person;
      cell[k] = (cell[k] || 0) + 1;
    }
    const pairs = (m) => m * (m - 1) / 2;
    let tp = 0, pred = 0, tru = 0, bp = 0, br = 0;
    for (const c of Object.values(csize)) pred += pairs(c);
    for (const t of Object.values(tsize)) tru += pairs(t);
    for (const [k, c] of Object.entries(cell)) tp += pairs(c);
    for (const lb of labels) {
      if (!lb.cluster) { bp += 1; br += 1 / tsize[lb.person]; continue; }
      const c = cell[lb.cluster + '\t' + lb.person];
      bp += c / csize[lb.cluster];
      br += c / tsize[lb.person];
    }
    const P = pred ? tp / pred : 1, R = tru ? tp / tru : 1, BP = bp / n, BR = br / n;
    // what each found person holds: labelled faces by true person, strangers, other faces of the copies
    const holds = {};
    for (const [face, pid] of snap ? snap.faceTo : []) {
      const h = holds[pid] || (holds[pid] = { faces: 0, labelled: {}, photos: new Set(), strangers: 0, unlabelled_copy_faces: 0 });
      h.faces++;
      if (faceKind.get(face) === 'stranger') h.strangers++;
    }
    for (const lb of labels) if (lb.cluster) {
      const h = holds[lb.cluster];
      h.labelled[lb.person] = (h.labelled[lb.person] || 0) + 1;
      h.photos.add(lb.person + '/' + lb.photo);
    }
    for (const [face, pid] of snap ? snap.faceTo : []) if (faceKind.get(face) === 'copy' && !claimed.has(face)) holds[pid].unlabelled_copy_faces++;
    const people = Object.values(holds).filter((h) => Object.keys(h.labelled).length)
      .sort((a, b) => b.faces - a.faces)
      .map((h) => ({ faces: h.faces, labelled: h.labelled, distinct_photos: h.photos.size, strangers: h.strangers, unlabelled_copy_faces: h.unlabelled_copy_faces }));
    const strangerPeople = Object.values(holds).filter((h) => !Object.keys(h.labelled).length);
    const strangerFaces = [...faceKind.values()].filter((k) => k === 'stranger').length;
    const foundOf = {};
    for (const lb of labels) if (lb.cluster) (foundOf[lb.person] = foundOf[lb.person] || new Set()).add(lb.cluster);
    // what the runner did (placed on arrival, attached, batches, people formed, merged)
    const metrics = String((await L.api(s, 'GET', '/metrics')).data).split('\n')
      .filter((l) => l.startsWith('visage_people_'))
      .map((l) => l.split(' ')).reduce((o, [k, v]) => ({ ...o, [k.replace('visage_people_', '')]: Number(v) }), {});
    console.log(JSON.stringify({
      bench: 'people_serve', runner: metrics, seed: SEED, tick_ms: TICK_MS, copies_written: written.files, images: items.length, images_failed: failedImages,
      strangers_images: items.filter((it) => it.kind === 'stranger').length, strangers_faces_indexed: strangerFaces,
      strangers_faces_not_indexed_reasons: strangerNotIndexed,
      faces_labelled: n, faces_matched: matched, faces_matched_twice: [...claimed.values()].filter((c) => c > 1).length,
      people_found: snap ? snap.people.length : 0, people_with_labelled_faces: people.length,
      pair_precision: +P.toFixed(4), pair_recall: +R.toFixed(4),
      bcubed_p: +BP.toFixed(4), bcubed_r: +BR.toFixed(4), bcubed_f1: +(BP + BR > 0 ? 2 * BP * BR / (BP + BR) : 0).toFixed(4),
      unassigned: +(labels.filter((x) => !x.cluster).length / n).toFixed(4),
      unassigned_of_matched: labels.filter((x) => x.face && !x.cluster).length,
      unassigned_by_person: Object.fromEntries(Object.keys(tsize).sort().map((p) => [p, labels.filter((x) => x.person === p && !x.cluster).length + '/' + tsize[p]])),
      found_people_per_true_person: Object.fromEntries(Object.keys(tsize).sort().map((p) => [p, foundOf[p] ? foundOf[p].size : 0])),
      unmatched: labels.filter((x) => !x.face).map((x) => x.file + ' ' + x.person + ': ' + x.why),
      strangers_in_labelled_people: people.reduce((a, h) => a + h.strangers, 0),
      stranger_only_people: strangerPeople.length,
      people,
      ingest_s: +((tIngest - t0) / 1000).toFixed(1), settle_s: +settleS.toFixed(1), settled,
    }));
  } finally {
    if (s) await L.stopServer(s);
    if (process.env.PEOPLE_SERVE_KEEP) console.error('people_serve: kept ' + tmp);
    else fs.rmSync(tmp, { recursive: true, force: true });
  }
})().catch((e) => { console.error(e); process.exit(1); });
