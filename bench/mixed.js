#!/usr/bin/env node
'use strict';
// bench/mixed.js - `visage serve` under a mixed load, over HTTP on loopback:
// 8 keep-alive connections for DURATION seconds, each request picked at
// random: 40 % ingest of a new photo (JSON base64; distinct bytes of the
// shared photos, so each one runs the whole pipeline), 30 % search by image,
// 30 % search by face id. A tenant exists, so every request carries its key.
// A client that gets 429/503 waits the Retry-After it is given (at most 2 s),
// as a polite client would. Prints throughput, p50/p99 per kind, status
// counts, images processed, and server RSS every 10 s; asserts nothing.
//   node bench/mixed.js [SECONDS] [CONNECTIONS]      (VISAGE_BIN=... to pick the binary)
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const L = require('../tests/integration/lib');

const SECONDS = parseInt(process.argv[2] || '180', 10);
const CONNS = parseInt(process.argv[3] || '8', 10);
const pct = (a, p) => { if (!a.length) return NaN; const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
const rssMb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync('/proc/' + pid + '/status', 'utf8'))[1]) / 1024;

// One request on the shared keep-alive agent: {status, body, retryAfter}.
function request(agent, base, key, method, p, json) {
  const body = json === undefined ? null : Buffer.from(JSON.stringify(json));
  const u = new URL(base + p);
  return new Promise((resolve) => {
    const req = http.request({ agent, host: u.hostname, port: u.port, path: u.pathname, method,
      headers: { Authorization: 'Bearer ' + key, ...(body ? { 'Content-Type': 'application/json', 'Content-Length': body.length } : {}) } },
    (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString(), retryAfter: Number(res.headers['retry-after'] || 0) }));
    });
    req.setTimeout(60000, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: e.message === 'timeout' ? 'timeout' : 'conn_error', body: '', retryAfter: 0 }));
    if (body) req.write(body);
    req.end();
  });
}

async function metric(s, name) {
  const m = await L.api(s, 'GET', '/metrics');
  const line = String(m.data).split('\n').find((l) => l.startsWith(name));
  return line ? Number(line.split(' ').pop()) : NaN;
}

(async () => {
  const dir = L.tmpDir('bench-mixed');
  const key = L.createTenant(dir, 'bench');
  const s = await L.startServer(dir);
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNS });
  try {
    const photos = [];
    const train = path.join(L.FACES, 'knn_examples', 'train');
    for (const who of fs.readdirSync(train))
      for (const f of fs.readdirSync(path.join(train, who))) if (/\.jpe?g$/i.test(f)) photos.push(fs.readFileSync(path.join(train, who, f)));
    const query = fs.readFileSync(path.join(L.FACES, 'knn_examples', 'test', 'obama1.jpg')).toString('base64');
    // seed: one of each photo, processed, so searches have something to find
    let seq = 0;
    const fresh = () => { const p = photos[seq % photos.length]; return Buffer.concat([p, Buffer.from('mixed-' + seq++)]).toString('base64'); };
    for (let i = 0; i < photos.length; i++) await request(agent, s.base, key, 'POST', '/api/v1/ingest', { image_b64: fresh() });
    const t0w = Date.now();
    while ((await metric(s, 'visage_queue_ready')) > 0 || (await metric(s, 'visage_queue_in_flight')) > 0) {
      if (Date.now() - t0w > 300000) throw new Error('seed ingest did not finish');
      await new Promise((r) => setTimeout(r, 200));
    }
    const processed0 = await metric(s, 'visage_images_total{result="processed"}');
    const sr = await request(agent, s.base, key, 'POST', '/api/v1/search', { image_b64: query, top_k: 5 });
    const faceId = JSON.parse(sr.body).results[0].face_id;

    const lat = { ingest: [], search_image: [], search_face: [] };
    const status = {};
    const rss = [];
    let stop = false;
    const t0 = Date.now();
    const sampler = setInterval(() => rss.push({ t: Math.round((Date.now() - t0) / 1000), rss_mb: Math.round(rssMb(s.proc.pid)) }), 10000);
    const loop = async () => {
      while (!stop) {
        const x = Math.random();
        const kind = x < 0.4 ? 'ingest' : x < 0.7 ? 'search_image' : 'search_face';
        const body = kind === 'ingest' ? { image_b64: fresh() } : kind === 'search_image' ? { image_b64: query, top_k: 10 } : { face_id: faceId, top_k: 10 };
        const t = process.hrtime.bigint();
        const r = await request(agent, s.base, key, 'POST', kind === 'ingest' ? '/api/v1/ingest' : '/api/v1/search', body);
        const ms = Number(process.hrtime.bigint() - t) / 1e6;
        const k = kind + ' ' + r.status;
        status[k] = (status[k] || 0) + 1;
        if (r.status === 200 || r.status === 202) lat[kind].push(ms);
        if (r.status === 429 || r.status === 503) await new Promise((res) => setTimeout(res, Math.min(2000, (r.retryAfter || 1) * 1000)));
      }
    };
    const loops = [];
    for (let i = 0; i < CONNS; i++) loops.push(loop());
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    stop = true;
    await Promise.all(loops);
    clearInterval(sampler);
    const secs = (Date.now() - t0) / 1000;
    const processed = (await metric(s, 'visage_images_total{result="processed"}')) - processed0;
    const queued = await metric(s, 'visage_queue_ready');
    const errors = Object.entries(status).filter(([k]) => !/ (200|202)$/.test(k)).reduce((a, [, v]) => a + v, 0);
    for (const kind of Object.keys(lat))
      console.log(JSON.stringify({ bench: 'mixed', kind, ok: lat[kind].length, per_s: +(lat[kind].length / secs).toFixed(1),
        p50_ms: +pct(lat[kind], 0.5).toFixed(1), p99_ms: +pct(lat[kind], 0.99).toFixed(1) }));
    console.log(JSON.stringify({ bench: 'mixed_summary', seconds: +secs.toFixed(0), connections: CONNS, requests_ok: Object.values(lat).reduce((a, v) => a + v.length, 0),
      requests_per_s: +(Object.values(lat).reduce((a, v) => a + v.length, 0) / secs).toFixed(1), errors, status,
      images_processed_during: processed, images_per_s: +(processed / secs).toFixed(2), queue_ready_at_end: queued }));
    console.log(JSON.stringify({ bench: 'mixed_rss', samples: rss, peak_mb: Math.round(Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync('/proc/' + s.proc.pid + '/status', 'utf8'))[1]) / 1024) }));
  } finally {
    agent.destroy();
    await L.stopServer(s);
    fs.rmSync(dir, { recursive: true, force: true });
  }
})().catch((e) => { console.error(e); process.exit(1); });
