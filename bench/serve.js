#!/usr/bin/env node
'use strict';
// bench/serve.js - `visage serve` speed on this machine, over HTTP on loopback:
//   ingest throughput (images/s, faces/s, both cores) of ~1 MP one-face JPEGs,
//   batch-ingest API acceptance rate (items/s), search-by-image and
//   search-by-vector latency (p50/p99), search by image during a saturating
//   ingest, server RSS. Prints JSON lines; asserts nothing.
//   node bench/serve.js [N_IMAGES]
// The N images are obama.jpg (910x1137) with N different byte strings appended
// after the JPEG end marker: distinct sha256, identical pixels, so every one
// goes through the whole pipeline (and is linked as a near-duplicate).
const fs = require('node:fs');
const path = require('node:path');
const L = require('../tests/integration/lib');

const N = parseInt(process.argv[2] || '200', 10);
const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
async function metric(s, name) {
  const m = await L.api(s, 'GET', '/metrics');
  const line = String(m.data).split('\n').find((l) => l.startsWith(name));
  return line ? Number(line.split(' ').pop()) : NaN;
}
function rssMb(pid) {
  const st = fs.readFileSync('/proc/' + pid + '/status', 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(st)[1]) / 1024;
}
function hwmMb(pid) {
  const st = fs.readFileSync('/proc/' + pid + '/status', 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(st)[1]) / 1024;
}

(async () => {
  const dir = L.tmpDir('bench');
  const s = await L.startServer(dir);
  try {
    const jpg = fs.readFileSync(path.join(L.FACES, 'knn_examples/train/obama/obama.jpg'));
    const items = [];
    for (let i = 0; i < N; i++) items.push({ image_b64: Buffer.concat([jpg, Buffer.from('visage-bench-' + i)]).toString('base64') });
    // 1. ingest throughput: accept all, then time until processed
    const t0 = Date.now();
    for (let i = 0; i < N; i += 50) {
      const r = await L.api(s, 'POST', '/api/v1/ingest/batch', { json: { items: items.slice(i, i + 50) } });
      if (r.status !== 202 || r.data.rejected.length) throw new Error(JSON.stringify(r.data).slice(0, 300));
    }
    const tAccepted = Date.now();
    const doneAtAccept = await metric(s, 'visage_images_total{result="processed"}');
    let done = 0;
    while (done < N) {
      done = await metric(s, 'visage_images_total{result="processed"}');
      await new Promise((r) => setTimeout(r, 50));
    }
    const t1 = Date.now();
    const faces = await metric(s, 'visage_faces_indexed_total');
    console.log(JSON.stringify({ bench: 'ingest', images: N, megapixels_each: 1.03, seconds: (t1 - t0) / 1000,
      images_per_s: +(N / ((t1 - t0) / 1000)).toFixed(1), faces_per_s: +(faces / ((t1 - t0) / 1000)).toFixed(1),
      accept_seconds: (tAccepted - t0) / 1000,
      // the workers alone, once every photo was accepted (the HTTP uploads no longer share the cores)
      drain_images_per_s: +((N - doneAtAccept) / ((t1 - tAccepted) / 1000)).toFixed(1),
      workers: require('node:os').cpus().length, server_rss_mb: +rssMb(s.proc.pid).toFixed(0) }));
    // 2. batch acceptance rate, measured on a second server with no workers
    //    (acceptance alone; the first server keeps its index for the searches)
    const accDir = L.tmpDir('bench-accept');
    const acc = await L.startServer(accDir, { VISAGE_WORKERS: '0' });
    try {
      const small = fs.readFileSync(path.join(L.FACES, 'obama_small.jpg'));
      const M = 2000, per = 500;
      // (a) inline base64 items (16 KB JPEGs)
      const batches = [];
      for (let b = 0; b < M / per; b++) {
        const it = [];
        for (let i = 0; i < per; i++) it.push({ image_b64: Buffer.concat([small, Buffer.from('acc-' + b + '-' + i)]).toString('base64') });
        batches.push(JSON.stringify({ items: it }));
      }
      // (b) bucket+key items: objects already in the tenant's store (file:// layout)
      const up = path.join(accDir, 'blobs', 'raw-images', 'default');
      fs.mkdirSync(up, { recursive: true });
      const kb = [];
      for (let b = 0; b < M / per; b++) {
        const it = [];
        for (let i = 0; i < per; i++) {
          const name = 'k-' + b + '-' + i + '.jpg';
          fs.writeFileSync(path.join(up, name), Buffer.concat([small, Buffer.from(name)]));
          it.push({ bucket: 'raw-images', key: 'default/' + name });
        }
        kb.push(JSON.stringify({ items: it }));
      }
      for (const [label, list] of [['base64', batches], ['bucket_key', kb]]) {
        const a0 = Date.now();
        for (const body of list) {
          const r = await L.api(acc, 'POST', '/api/v1/ingest/batch', { body, headers: { 'Content-Type': 'application/json' } });
          if (r.status !== 202 || r.data.rejected.length) throw new Error('batch ' + r.status + JSON.stringify(r.data).slice(0, 200));
        }
        const a1 = Date.now();
        console.log(JSON.stringify({ bench: 'batch_accept', items: M, batch: per, item_kind: label, seconds: (a1 - a0) / 1000,
          items_per_s: +(M / ((a1 - a0) / 1000)).toFixed(0) }));
      }
    } finally {
      await L.stopServer(acc);
      fs.rmSync(accDir, { recursive: true, force: true });
    }
    // let the workers drain the acceptance batch before timing searches
    while ((await metric(s, 'visage_queue_ready')) > 0 || (await metric(s, 'visage_queue_in_flight')) > 0) await new Promise((r) => setTimeout(r, 200));
    // 3. search by image (multipart, like the web UI) and by vector
    const q = fs.readFileSync(path.join(L.FACES, 'knn_examples/test/obama1.jpg'));
    const lat = [];
    let vec = null;
    for (let i = 0; i < 40; i++) {
      const f = new FormData();
      f.append('image', new Blob([q]), 'q.jpg');
      f.append('top_k', '10');
      const t = process.hrtime.bigint();
      const r = await fetch(s.base + '/api/v1/search', { method: 'POST', body: f });
      const j = await r.json();
      lat.push(Number(process.hrtime.bigint() - t) / 1e6);
      if (!vec) vec = j.results[0].face_id;
    }
    const vlat = [];
    for (let i = 0; i < 200; i++) {
      const t = process.hrtime.bigint();
      await L.api(s, 'POST', '/api/v1/search', { json: { face_id: vec, top_k: 10 } });
      vlat.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    const points = N;
    console.log(JSON.stringify({ bench: 'search_by_image', requests: lat.length, p50_ms: +pct(lat, 0.5).toFixed(1), p99_ms: +pct(lat, 0.99).toFixed(1) }));
    // 4. search by image while the workers are saturated: N more photos
    //    queued at once, then the same searches one after another as long as
    //    the queue is not empty (at most 60)
    const more = [];
    for (let i = 0; i < N; i++) more.push({ image_b64: Buffer.concat([jpg, Buffer.from('visage-bench-busy-' + i)]).toString('base64') });
    for (let i = 0; i < N; i += 50) await L.api(s, 'POST', '/api/v1/ingest/batch', { json: { items: more.slice(i, i + 50) } });
    const busy = [];
    const p0 = await metric(s, 'visage_images_total{result="processed"}'), b0 = Date.now();
    while (busy.length < 60 && (await metric(s, 'visage_queue_ready')) > 0) {
      const f = new FormData();
      f.append('image', new Blob([q]), 'q.jpg');
      f.append('top_k', '10');
      const t = process.hrtime.bigint();
      await (await fetch(s.base + '/api/v1/search', { method: 'POST', body: f })).json();
      busy.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    const p1 = await metric(s, 'visage_images_total{result="processed"}'), b1 = Date.now();
    console.log(JSON.stringify({ bench: 'search_by_image_during_ingest', requests: busy.length, p50_ms: +pct(busy, 0.5).toFixed(1),
      p99_ms: +pct(busy, 0.99).toFixed(1), ingest_images_per_s_meanwhile: +((p1 - p0) / ((b1 - b0) / 1000)).toFixed(1) }));
    while ((await metric(s, 'visage_queue_ready')) > 0 || (await metric(s, 'visage_queue_in_flight')) > 0) await new Promise((r) => setTimeout(r, 200));
    console.log(JSON.stringify({ bench: 'search_by_face_id_http', faces_in_tenant: points, requests: vlat.length,
      p50_ms: +pct(vlat, 0.5).toFixed(2), p99_ms: +pct(vlat, 0.99).toFixed(2) }));
    console.log(JSON.stringify({ bench: 'server_memory', faces: points, rss_mb: +rssMb(s.proc.pid).toFixed(0), peak_rss_mb: +hwmMb(s.proc.pid).toFixed(0) }));
  } finally {
    await L.stopServer(s);
    fs.rmSync(dir, { recursive: true, force: true });
  }
})().catch((e) => { console.error(e); process.exit(1); });
