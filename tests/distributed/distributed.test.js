'use strict';
// Distributed mode on real engines (DESIGN.md topology 2): a real
// redis-server and s3rver started here on loopback, one `visage api`
// owning the embedded index, three `visage worker` processes.
//  - a worker is SIGKILLed mid-batch: every image processed, each face once,
//    nothing pending;
//  - Redis restarted mid-ingest: workers reconnect, nothing lost;
//  - S3 answering 500 for a while (a fault proxy in front of s3rver): retried;
//    always 500: dead-lettered with a clear error, never acknowledged as done.
//  - a crawl started on the api process: its images land in S3, go through
//    the workers and come back as searchable faces with their page URL.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const L = require('../integration/lib');

const { waitFor, startRedis, startS3 } = L;

// An HTTP proxy to s3rver that answers 500 while `failing` is true.
function faultProxy(target) {
  const state = { failing: false, failed: 0 };
  const server = http.createServer((req, res) => {
    if (state.failing) { state.failed++; res.writeHead(500, { 'Content-Type': 'application/xml' });
      return res.end('<?xml version="1.0"?><Error><Code>InternalError</Code><Message>injected</Message></Error>'); }
    const up = http.request({ host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode, r.headers); r.pipe(res); });
    up.on('error', () => { res.writeHead(502); res.end(); });
    req.pipe(up);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: server.address().port, state })));
}

function kill(p, sig = 'SIGTERM') {
  if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  const done = new Promise((r) => p.once('exit', r));
  p.kill(sig);
  return done;
}

describe('distributed: redis + s3 + api + 3 workers', () => {
  const dir = L.tmpDir('dist');
  let redis, s3, proxy, api;
  const workers = [];
  let env;

  function startWorker() {
    const w = spawn(L.BIN, ['worker'], { env: { ...env, VISAGE_WORKERS: '1' }, stdio: ['ignore', 'ignore', 'pipe'] });
    w.log = [];
    w.stderr.on('data', (d) => w.log.push(String(d)));
    workers.push(w);
    return w;
  }

  before(async () => {
    fs.mkdirSync(path.join(dir, 'redis'));
    fs.mkdirSync(path.join(dir, 's3'));
    redis = await startRedis(path.join(dir, 'redis'));
    s3 = await startS3(path.join(dir, 's3'));
    proxy = await faultProxy(s3.port);
    env = { VISAGE_QUEUE: 'redis://127.0.0.1:' + redis.port + '/0', VISAGE_STORE: 's3://visage',
      VISAGE_S3_ENDPOINT: 'http://127.0.0.1:' + proxy.port, AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REGION: 'us-east-1', VISAGE_VISIBILITY_MS: '3000', VISAGE_MODELS: L.MODELS };
    api = await L.startServer(path.join(dir, 'api'), { ...env, VISAGE_WORKERS: '0', VISAGE_FETCH_ALLOW: '127.0.0.1/32' }, 'api');
    for (let i = 0; i < 3; i++) startWorker();
  });
  after(async () => {
    for (const w of workers) await kill(w, 'SIGKILL');
    await L.stopServer(api);
    await kill(redis && redis.proc);
    await kill(s3 && s3.proc);
    if (proxy) proxy.server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function metric(name) {
    const m = await L.api(api, 'GET', '/metrics');
    const line = String(m.data).split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'));
    return line ? Number(line.split(' ').pop()) : NaN;
  }

  it('reports every backend ready', async () => {
    const r = await L.api(api, 'GET', '/readyz');
    assert.equal(r.status, 200, JSON.stringify(r.data));
    assert.deepEqual(r.data.backends, { store: 'ok', queue: 'ok', index: 'ok' });
  });

  it('processes a batch exactly once although a worker is SIGKILLed mid-way', async () => {
    const photos = L.walk(L.FACES);
    const r = await L.api(api, 'POST', '/api/v1/ingest/batch', { json: { items: photos.map((f) => ({ image_b64: L.b64(f) })) } });
    assert.equal(r.status, 202);
    assert.equal(r.data.rejected.length, 0, JSON.stringify(r.data.rejected));
    const shas = r.data.accepted.map((a) => a.image_sha256);
    // kill one worker as soon as anything is done
    await waitFor(async () => (await L.api(api, 'GET', '/api/v1/images/' + shas[0])).data.status !== 'queued' ||
      (await metric('visage_queue_ready')) < shas.length - 2, 60000, 'first images');
    await kill(workers[0], 'SIGKILL');
    const records = await L.waitDone(api, undefined, shas, 300000);
    const ids = [];
    for (const sha of shas) {
      assert.equal(records[sha].status, 'done', JSON.stringify(records[sha]));
      for (const f of records[sha].faces_indexed) ids.push(f.face_id);
    }
    assert.equal(new Set(ids).size, ids.length);
    const all = await L.api(api, 'POST', '/api/v1/search', { json: { face_id: ids[0], top_k: 1000, threshold: -1 } });
    assert.equal(all.data.results.length + 1, ids.length, 'every face indexed once');
    const crop = await fetch(all.data.results[0].crop_url);
    assert.equal(crop.status, 200, 'crop served from S3 through a presigned URL');
    await waitFor(async () => (await metric('visage_queue_in_flight')) === 0 && (await metric('visage_queue_ready')) === 0,
      30000, 'queue drained');
  });

  it('survives a Redis restart mid-ingest without losing anything', async () => {
    const photos = L.walk(L.FACES).slice(0, 8);
    const items = photos.map((f, i) => ({ image_b64: Buffer.concat([fs.readFileSync(f), Buffer.from('redis-' + i)]).toString('base64') }));
    const r = await L.api(api, 'POST', '/api/v1/ingest/batch', { json: { items } });
    assert.equal(r.status, 202);
    await kill(redis.proc, 'SIGKILL');
    await new Promise((res) => setTimeout(res, 1500));
    redis = await startRedis(path.join(dir, 'redis'), redis.port); // same port, AOF replays the stream
    const records = await L.waitDone(api, undefined, r.data.accepted.map((a) => a.image_sha256), 300000);
    for (const rec of Object.values(records)) assert.equal(rec.status, 'done');
  });

  it('retries while S3 fails, then dead-letters with a clear error when it keeps failing', async () => {
    const f = path.join(L.FACES, 'knn_examples/train/rose_leslie/img1.jpg');
    // a short outage: accepted once S3 is back (the API write itself retries)
    proxy.state.failing = true;
    setTimeout(() => { proxy.state.failing = false; }, 300);
    const ok = await L.api(api, 'POST', '/api/v1/ingest', { json: { image_b64: Buffer.concat([fs.readFileSync(f), Buffer.from('s3-a')]).toString('base64') } });
    assert.equal(ok.status, 202, JSON.stringify(ok.data));
    assert.ok(proxy.state.failed > 0, 'the outage was hit');
    const rec = await L.waitDone(api, undefined, [ok.data.image_sha256], 120000);
    assert.equal(rec[ok.data.image_sha256].status, 'done');
    // a long outage after acceptance: workers retry, then the message is dead
    const r2 = await L.api(api, 'POST', '/api/v1/ingest', { json: { image_b64: Buffer.concat([fs.readFileSync(f), Buffer.from('s3-b')]).toString('base64') } });
    assert.equal(r2.status, 202);
    proxy.state.failing = true;
    try {
      await waitFor(async () => (await L.api(api, 'GET', '/api/v1/dead-letters')).data.dead_letters.length > 0, 240000, 'dead letter');
    } finally { proxy.state.failing = false; }
    const dead = (await L.api(api, 'GET', '/api/v1/dead-letters')).data.dead_letters;
    assert.equal(dead[0].message.image_sha256, r2.data.image_sha256);
    assert.match(dead[0].last_error, /500|InternalError/);
    const img = await L.api(api, 'GET', '/api/v1/images/' + r2.data.image_sha256);
    assert.notEqual(img.data.status, 'done', 'never reported done');
  });

  it('crawls a site from the api process into S3 and the workers', async () => {
    const photos = ['knn_examples/train/kit_harington/john1.jpeg', 'knn_examples/train/rose_leslie/img2.jpg']
      .map((p) => Buffer.concat([fs.readFileSync(path.join(L.FACES, p)), Buffer.from('crawl-dist')]));
    const requested = [];
    const site = http.createServer((req, res) => {
      requested.push(req.url);
      if (req.url === '/') {
        res.writeHead(200, { 'Content-Type': 'text/html' });
        return res.end('<html><body><img src="/a.jpg"><img src="b.jpg"><a href="/private/p.html">p</a></body></html>');
      }
      if (req.url === '/robots.txt') { res.writeHead(200); return res.end('User-agent: *\nDisallow: /private/\n'); }
      const i = ['/a.jpg', '/b.jpg'].indexOf(req.url);
      if (i < 0) { res.writeHead(404); return res.end(); }
      res.writeHead(200, { 'Content-Type': 'image/jpeg' });
      res.end(photos[i]);
    });
    await new Promise((r) => site.listen(0, '127.0.0.1', r));
    const base = 'http://127.0.0.1:' + site.address().port;
    try {
      const r = await L.api(api, 'POST', '/api/v1/crawl', { json: { url: base + '/', depth: 1, delay_s: 0.05 } });
      assert.equal(r.status, 202, JSON.stringify(r.data));
      let job;
      await waitFor(async () => {
        job = (await L.api(api, 'GET', '/api/v1/crawl/' + r.data.id)).data;
        return job.state === 'failed' || (job.state === 'done' && job.images_processed === job.images_saved);
      }, 120000, 'crawl done and processed');
      assert.equal(job.state, 'done', JSON.stringify(job));
      assert.equal(job.images_saved, 2);
      assert.equal(job.robots_blocked, 1);
      assert.equal(job.faces_found, 2);
      assert.ok(!requested.some((u) => u.startsWith('/private/')), 'disallowed path never requested');
      // the same photo was ingested by the earlier tests too: the crawled copy is among the best matches
      const q = await L.api(api, 'POST', '/api/v1/search', { json: { image_b64: photos[0].toString('base64'), top_k: 10 } });
      assert.equal(q.status, 200);
      const hit = q.data.results.find((h) => h.source_url === base + '/a.jpg');
      assert.ok(hit && hit.same_person, JSON.stringify(q.data.results.map((h) => [h.score, h.source_url])));
      assert.equal(hit.page_url, base + '/');
      assert.equal(hit.site, '127.0.0.1');
    } finally {
      site.close();
    }
  });

  // every S3 object file s3rver keeps whose path names sha
  const s3Files = (sha) => {
    const out = [];
    const walk = (d) => fs.readdirSync(d, { withFileTypes: true }).forEach((e) => {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p); else if (p.includes(sha)) out.push(p);
    });
    walk(path.join(dir, 's3'));
    return out;
  };

  it('erases a person from S3 and the index, and the index owner erases their new photos on arrival', async () => {
    const b64 = (p, tag) => Buffer.concat([fs.readFileSync(path.join(L.FACES, p)), Buffer.from(tag)]).toString('base64');
    const r = await L.api(api, 'POST', '/api/v1/erase', { json: { image_b64: L.b64(path.join(L.FACES, 'obama_small.jpg')), block: true } });
    assert.equal(r.status, 200, JSON.stringify(r.data));
    // the 11 shared photos of Obama, and copies the earlier tests ingested
    assert.ok(r.data.images.length >= 11, JSON.stringify(r.data.images.map((i) => i.score)));
    assert.equal(r.data.images_erased, r.data.images.length);
    for (const i of r.data.images) assert.deepEqual(s3Files(i.image_sha256), [], 'nothing of ' + i.image_sha256 + ' left in S3');
    const q = await L.api(api, 'POST', '/api/v1/search', { json: { image_b64: L.b64(path.join(L.FACES, 'knn_examples/test/obama1.jpg')), top_k: 20 } });
    assert.ok(q.data.results.every((x) => !x.same_person));
    const blocked = await L.api(api, 'POST', '/api/v1/ingest', { json: { image_b64: b64('obama-1080p.jpg', 'dist-v1') } });
    const other = await L.api(api, 'POST', '/api/v1/ingest', { json: { image_b64: b64('knn_examples/train/biden/biden2.jpg', 'dist-v1') } });
    await L.waitDone(api, undefined, [other.data.image_sha256], 120000);
    assert.ok(s3Files(other.data.image_sha256).length >= 3, 'raw, thumbnail, crop of a kept photo are in S3');
    await waitFor(async () => {
      const g = await L.api(api, 'GET', '/api/v1/images/' + blocked.data.image_sha256);
      return g.status === 404 && /erased/.test(g.data.error.message);
    }, 120000, 'the blocked photo erased on arrival');
    assert.deepEqual(s3Files(blocked.data.image_sha256), [], 'the crops a worker saved for it are gone too');
  });
});
