#!/usr/bin/env node
'use strict';
// bench/distributed.js - ingest throughput of the distributed topology
// (redis-server + s3rver + `visage api` owning the embedded index + 2
// `visage worker` processes of 1 thread) against the all-embedded
// `visage serve` (2 worker threads), same images, same run; and the batch
// ingest API's acceptance rate (pipelined XADD) with Redis and S3.
//   node bench/distributed.js [N_IMAGES]     prints JSON lines, asserts nothing
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const L = require('../tests/integration/lib');

const N = parseInt(process.argv[2] || '100', 10);
const jpg = fs.readFileSync(path.join(L.FACES, 'knn_examples/train/obama/obama.jpg'));
const items = (tag) => Array.from({ length: N }, (_, i) => ({ image_b64: Buffer.concat([jpg, Buffer.from(tag + i)]).toString('base64') }));

async function ingest(s, list) {
  const t0 = Date.now();
  const shas = [];
  for (let i = 0; i < list.length; i += 50) {
    const r = await L.api(s, 'POST', '/api/v1/ingest/batch', { json: { items: list.slice(i, i + 50) } });
    if (r.status !== 202 || r.data.rejected.length) throw new Error(JSON.stringify(r.data).slice(0, 300));
    r.data.accepted.forEach((a) => shas.push(a.image_sha256));
  }
  await L.waitDone(s, undefined, shas, 600000);
  return (Date.now() - t0) / 1000;
}

(async () => {
  const dir = L.tmpDir('bench-dist');
  const procs = [];
  try {
    // 1. all embedded
    const emb = await L.startServer(path.join(dir, 'emb'), { VISAGE_WORKERS: '2' });
    const tEmb = await ingest(emb, items('emb-'));
    await L.stopServer(emb);
    // 2. redis + s3rver + api + 2 workers
    fs.mkdirSync(path.join(dir, 'redis'));
    fs.mkdirSync(path.join(dir, 's3'));
    const redis = await L.startRedis(path.join(dir, 'redis'));
    procs.push(redis.proc);
    const s3 = await L.startS3(path.join(dir, 's3'));
    procs.push(s3.proc);
    const env = { VISAGE_QUEUE: 'redis://127.0.0.1:' + redis.port + '/0', VISAGE_STORE: 's3://bench',
      VISAGE_S3_ENDPOINT: 'http://127.0.0.1:' + s3.port, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER',
      VISAGE_MODELS: L.MODELS };
    const api = await L.startServer(path.join(dir, 'api'), { ...env, VISAGE_WORKERS: '0' }, 'api');
    for (let i = 0; i < 2; i++) procs.push(spawn(L.BIN, ['worker'], { env: { ...process.env, ...env, VISAGE_WORKERS: '1' }, stdio: 'ignore' }));
    const tDist = await ingest(api, items('dist-'));
    console.log(JSON.stringify({ bench: 'ingest_embedded', images: N, seconds: tEmb, images_per_s: +(N / tEmb).toFixed(1) }));
    console.log(JSON.stringify({ bench: 'ingest_distributed', images: N, seconds: tDist, images_per_s: +(N / tDist).toFixed(1),
      setup: 'redis-server + s3rver + visage api (embedded index) + 2 visage worker x 1 thread, one machine',
      ratio_to_embedded: +(tEmb / tDist).toFixed(2) }));
    // 3. acceptance rate of the batch API with Redis + S3 (pipelined XADD)
    const small = fs.readFileSync(path.join(L.FACES, 'obama_small.jpg'));
    for (const p of procs.slice(2)) p.kill('SIGSTOP'); // workers paused: measure acceptance alone
    const M = 2000, per = 500;
    const bodies = [];
    for (let b = 0; b < M / per; b++) {
      bodies.push(JSON.stringify({ items: Array.from({ length: per }, (_, i) => ({ image_b64: Buffer.concat([small, Buffer.from('x' + b + '-' + i)]).toString('base64') })) }));
    }
    const a0 = Date.now();
    for (const body of bodies) {
      const r = await L.api(api, 'POST', '/api/v1/ingest/batch', { body, headers: { 'Content-Type': 'application/json' } });
      if (r.status !== 202) throw new Error('batch ' + r.status);
    }
    const sec = (Date.now() - a0) / 1000;
    console.log(JSON.stringify({ bench: 'batch_accept_redis_s3', items: M, batch: per, seconds: sec, items_per_s: +(M / sec).toFixed(0),
      note: 'each item: base64 decode, header probe, sha256, S3 PUT to s3rver, catalog, then one pipelined XADD per batch' }));
    for (const p of procs.slice(2)) p.kill('SIGCONT');
    await L.stopServer(api);
  } finally {
    for (const p of procs) { try { p.kill('SIGKILL'); } catch (e) { /* gone */ } }
    fs.rmSync(dir, { recursive: true, force: true });
  }
})().catch((e) => { console.error(e); process.exit(1); });
