'use strict';
// The server's front door under a hostile client, over real sockets on
// loopback: a slow-header flood from another address (127.0.0.3), bodies
// that are never authenticated, the body memory budget, rate limits,
// ingest backpressure, a query image declaring 7000x7000 px, the open
// mode's Host check, CORS, and a Content-Length that lies. Each test sets
// the limit it needs small through the environment and prints what it saw.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const zlib = require('node:zlib');
const L = require('./lib');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
const rssMb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync('/proc/' + pid + '/status', 'utf8'))[1]) / 1024;
const PHOTO = path.join(L.FACES, 'knn_examples/train/obama/obama.jpg');

// One HTTP request on a new connection (no keep-alive), from localAddress;
// resolves {status, headers, body, ms} as soon as the reply is complete,
// even if the server closed before the request body was all sent.
function raw(s, { method = 'GET', path: p = '/', headers = {}, body = null, from = '127.0.0.1', timeout = 20000 } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const req = http.request({ host: '127.0.0.1', port: s.port, method, path: p, headers, localAddress: from, agent: false, timeout });
    let done = false, res = null;
    const chunks = [];
    const finish = () => { if (!done) { done = true; resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString(), ms: Date.now() - t0 }); } };
    req.on('response', (r) => {
      res = r;
      r.on('data', (c) => chunks.push(c));
      r.on('end', finish);
      r.on('error', finish);
      r.on('close', finish);
    });
    req.on('timeout', () => { req.destroy(new Error('timeout after ' + timeout + ' ms')); });
    // the server may close while the body is still being sent (a refusal
    // from the head): the reply that came first is what counts
    req.on('error', (e) => setTimeout(() => { if (res) finish(); else if (!done) { done = true; reject(e); } }, 300));
    if (body) req.end(body); else req.end();
  });
}

// POST of body on a raw socket, in 1 MB writes, stopping as soon as a final
// reply arrives: {status, got}. With expect, the client sends
// "Expect: 100-continue" and the body only after "100 Continue" (as curl
// does for large bodies): a server that answers from the head is sent none
// of it. Without, the body is sent at once; a server that refuses from the
// head closes, and the client may see a reset instead of the reply.
function upload(s, p, body, from, expect) {
  return new Promise((resolve) => {
    const c = net.connect({ host: '127.0.0.1', port: s.port, localAddress: from });
    let got = '';
    const t0 = Date.now();
    let go = null;
    const done = () => resolve({ status: Number((/^HTTP\/1\.1 (\d+)/.exec(got) || [])[1]), got, ms: Date.now() - t0 });
    c.on('data', (d) => {
      got += d;
      if (/^HTTP\/1\.1 100 [^\r]*\r\n\r\n/.test(got)) { got = got.replace(/^HTTP\/1\.1 100 [^\r]*\r\n\r\n/, ''); if (go) go(); }
      else if (got.includes('\r\n\r\n')) { c.destroy(); if (go) go(); }
    });
    c.on('error', () => {});
    c.on('close', () => { if (go) go(); done(); });
    c.on('connect', async () => {
      c.write(`POST ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n` +
        (expect ? 'Expect: 100-continue\r\n' : '') + '\r\n');
      if (expect) await new Promise((r) => { go = r; });
      for (let off = 0; off < body.length && !got && !c.destroyed; off += 1 << 20) {
        await new Promise((r) => c.write(body.subarray(off, off + (1 << 20)), r));
      }
    });
  });
}

async function metric(s, name) {
  const m = await L.api(s, 'GET', '/metrics');
  const line = String(m.data).split('\n').find((l) => l.startsWith(name + ' '));
  return line ? Number(line.split(' ').pop()) : NaN;
}

// A valid 8-bit gray PNG of w x h zero pixels: tiny on disk, w*h in memory.
function bigPng(w, h) {
  const crc = (buf) => { let c = ~0; for (const b of buf) { c ^= b; for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1)); } return ~c >>> 0; };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const c = Buffer.alloc(4); c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13); ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 0;
  const idat = zlib.deflateSync(Buffer.alloc((w + 1) * h), { level: 9 });
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]);
}

describe('front door: slow-header flood', () => {
  let s, dir;
  before(async () => { dir = L.tmpDir('front-flood'); s = await L.startServer(dir, { VISAGE_HEAD_TIMEOUT: '2' }); });
  after(async () => { await L.stopServer(s); fs.rmSync(dir, { recursive: true, force: true }); });

  it('600 trickling connections from one address neither starve /healthz nor outlive the head deadline', async () => {
    const N = 600, opened = [], closedAfter = [];
    const socks = [];
    for (let i = 0; i < N; i++) {
      const t0 = Date.now();
      const c = net.connect({ host: '127.0.0.1', port: s.port, localAddress: '127.0.0.3' });
      c.on('error', () => {});
      c.on('connect', () => { opened.push(i); c.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n'); });
      c.on('close', () => { closedAfter[i] = Date.now() - t0; });
      socks.push(c);
    }
    // one header line every second, never the blank line that ends the head
    const trickle = setInterval(() => { for (const c of socks) if (!c.destroyed) c.write('X-Slow: 1\r\n'); }, 1000);
    const lat = [];
    const fails = [];
    const tEnd = Date.now() + 6000;
    try {
      await sleep(300);
      while (Date.now() < tEnd) {
        try {
          const r = await raw(s, { path: '/healthz', timeout: 5000 });
          if (r.status !== 200) fails.push(r.status); else lat.push(r.ms);
        } catch (e) { fails.push(e.message); }
        await sleep(50);
      }
    } finally { clearInterval(trickle); }
    await sleep(1500);
    const open = socks.filter((c) => !c.destroyed).length;
    socks.forEach((c) => c.destroy());
    const cut = closedAfter.filter((x) => x !== undefined);
    console.log(`flood: ${N} connections from 127.0.0.3, ${opened.length} connected, ${open} still open after ${((Date.now() - tEnd) / 1000 + 6).toFixed(1)} s; ` +
      `closed after p50 ${pct(cut, 0.5)} ms max ${Math.max(...cut)} ms; healthz from 127.0.0.1: ${lat.length} ok, ${fails.length} failed, ` +
      `p50 ${pct(lat, 0.5)} ms p99 ${pct(lat, 0.99)} ms`);
    assert.deepEqual(fails, [], 'every /healthz of the normal client answers 200');
    assert.ok(lat.length >= 20, 'healthz answered repeatedly');
    assert.ok(pct(lat, 0.99) < 1000, 'healthz p99 under 1 s while flooded: ' + pct(lat, 0.99));
    assert.equal(open, 0, 'every flood connection is closed by the 2 s head deadline (or refused at once)');
    const m = await metric(s, 'visage_http_refused_total{reason="head_timeout"}');
    assert.ok(m >= 1, 'head timeouts counted in /metrics: ' + m);
  });
});

describe('front door: bodies and authentication', () => {
  let s, dir;
  before(async () => { dir = L.tmpDir('front-auth'); L.createTenant(dir, 'alpha'); s = await L.startServer(dir); });
  after(async () => { await L.stopServer(s); fs.rmSync(dir, { recursive: true, force: true }); });

  it('80 unauthenticated 30 MB uploads get 401 (or a reset) without the server buffering them', async () => {
    const body = Buffer.alloc(30 << 20, 0x41);
    const base = rssMb(s.proc.pid);
    let peak = base;
    const sampler = setInterval(() => { try { peak = Math.max(peak, rssMb(s.proc.pid)); } catch (e) { /* gone */ } }, 20);
    const t0 = Date.now();
    // 40 that wait for "100 Continue", 40 that send their body at once
    const rs = await Promise.all(Array.from({ length: 80 }, (_, i) => upload(s, '/api/v1/ingest', body, i < 40 ? '127.0.0.2' : '127.0.0.9', i < 40)));
    clearInterval(sampler);
    peak = Math.max(peak, rssMb(s.proc.pid));
    const count = (a) => JSON.stringify(a.reduce((m, r) => { m[r.status || 'reset'] = (m[r.status || 'reset'] || 0) + 1; return m; }, {}));
    console.log(`unauthenticated uploads, 80 x 30 MB: with Expect ${count(rs.slice(0, 40))}, sending at once ${count(rs.slice(40))} ` +
      `(slowest closed after ${Math.max(...rs.map((r) => r.ms))} ms); ${Date.now() - t0} ms in all; ` +
      `server RSS ${base.toFixed(0)} MB before, peak ${peak.toFixed(0)} MB`);
    for (const r of rs.slice(0, 40)) assert.equal(r.status, 401, r.got);
    for (const r of rs.slice(40)) assert.ok(!r.status || r.status === 401, r.got);
    assert.ok(rs.every((r) => r.ms < 10000), 'no connection held');
    // the server itself takes ~370 MB with the default detectors loaded, so
    // the bound is on growth: 80 buffered bodies would be 2.4 GB
    assert.ok(peak - base < 100, 'the bodies were not buffered: RSS grew ' + (peak - base).toFixed(0) + ' MB');
  });

  it('a body over the size limit is refused from its Content-Length at once', async () => {
    const r = await new Promise((resolve) => {
      const t0 = Date.now();
      const c = net.connect({ host: '127.0.0.1', port: s.port }, () =>
        c.write('POST /api/v1/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000000\r\n\r\nab'));
      let got = '';
      c.on('data', (d) => { got += d; });
      c.on('error', () => {});
      c.on('close', () => resolve({ got, ms: Date.now() - t0 }));
      setTimeout(() => c.destroy(), 15000);
    });
    console.log(`Content-Length 100000000 with 2 bytes: "${r.got.split('\r\n')[0]}", closed after ${r.ms} ms`);
    assert.match(r.got, /^HTTP\/1\.1 (401|413)/);
    assert.ok(r.ms < 5000, 'closed at once, not after the idle timeout: ' + r.ms + ' ms');
  });

  it('wrong keys are rate-limited per address after a small burst (429 + Retry-After, counted)', async () => {
    const st = {};
    let retry = null;
    for (let i = 0; i < 1000; i += 20) {
      const rs = await Promise.all(Array.from({ length: 20 }, (_, j) => raw(s, {
        path: '/api/v1/crawl', from: '127.0.0.4', headers: { Authorization: 'Bearer vsk_' + String(i + j).padStart(48, '0') } })));
      for (const r of rs) { st[r.status] = (st[r.status] || 0) + 1; if (r.status === 429) retry = r.headers['retry-after']; }
    }
    const counted = await metric(s, 'visage_http_refused_total{reason="auth_fail"}');
    console.log(`1000 wrong-key requests: ${JSON.stringify(st)}, Retry-After ${retry} s, counted ${counted}`);
    assert.ok((st[401] || 0) <= 25, 'only a small burst of 401s');
    assert.ok((st[429] || 0) >= 975, '429 after the burst');
    assert.ok(Number(retry) >= 1, 'Retry-After given');
    assert.equal(counted, st[429]);
    // another address is not affected
    const other = await raw(s, { path: '/api/v1/crawl', from: '127.0.0.5', headers: { Authorization: 'Bearer vsk_' + '1'.repeat(48) } });
    assert.equal(other.status, 401);
  });
});

describe('front door: body memory budget (open mode)', () => {
  let s, dir;
  before(async () => { dir = L.tmpDir('front-budget'); s = await L.startServer(dir, { VISAGE_BODY_MEMORY_MB: '50' }); });
  after(async () => { await L.stopServer(s); fs.rmSync(dir, { recursive: true, force: true }); });

  it('uploads past the budget get 503 + Retry-After before their body is read; the others go on', async () => {
    const size = 20 << 20;
    const socks = [];
    const replies = [];
    for (let i = 0; i < 5; i++) {
      const c = net.connect({ host: '127.0.0.1', port: s.port });
      const rec = { got: '', closed: false };
      c.on('data', (d) => { rec.got += d; });
      c.on('error', () => {});
      c.on('close', () => { rec.closed = true; });
      await new Promise((r) => c.on('connect', r));
      c.write(`POST /api/v1/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${size}\r\n\r\n`);
      socks.push(c);
      replies.push(rec);
      await sleep(100);
    }
    await sleep(500);
    const early = replies.filter((r) => r.got).map((r) => r.got.split('\r\n')[0]);
    const retry = replies.map((r) => /Retry-After: (\d+)/i.exec(r.got)).filter(Boolean).map((m) => m[1]);
    // the two within the budget still wait for their body: send it
    const chunk = Buffer.alloc(size, 0x20);
    socks.forEach((c, i) => { if (!replies[i].got) c.write(chunk); });
    await L.waitFor(() => replies.every((r) => r.got.includes('\r\n\r\n')), 20000, 'all replies');
    const late = replies.map((r) => r.got.split('\r\n')[0]);
    socks.forEach((c) => c.destroy());
    console.log(`body budget 50 MB, 5 x 20 MB: answered before the body: ${JSON.stringify(early)} (Retry-After ${retry}); all: ${JSON.stringify(late)}`);
    assert.equal(early.length, 3, 'three uploads refused from their head');
    early.forEach((l) => assert.match(l, / 503 /));
    assert.equal(retry.length, 3);
    assert.equal(late.filter((l) => / 503 /.test(l)).length, 3, 'the two within the budget were read and routed');
    assert.equal(await metric(s, 'visage_http_refused_total{reason="body_memory"}'), 3);
  });
});

describe('front door: rate limits', () => {
  let s, dir, key;
  before(async () => {
    dir = L.tmpDir('front-rate');
    key = L.createTenant(dir, 'alpha');
    s = await L.startServer(dir, { VISAGE_RATE_LIMIT: '5/s:5', VISAGE_RATE_LIMIT_IP: '40/s:40' });
  });
  after(async () => { await L.stopServer(s); fs.rmSync(dir, { recursive: true, force: true }); });

  it('an API key over its rate gets 429 + Retry-After, counted in /metrics', async () => {
    const rs = await Promise.all(Array.from({ length: 20 }, () => raw(s, { path: '/api/v1/crawl', from: '127.0.0.6', headers: { Authorization: 'Bearer ' + key } })));
    const st = rs.map((r) => r.status);
    const limited = rs.filter((r) => r.status === 429);
    const counted = await metric(s, 'visage_http_refused_total{reason="rate_key"}');
    console.log(`20 requests with one key at limit 5/s burst 5: ${st.filter((x) => x === 200).length} x 200, ${limited.length} x 429, counted ${counted}`);
    assert.ok(st.filter((x) => x === 200).length >= 5 && st.filter((x) => x === 200).length <= 7);
    assert.ok(limited.length >= 13);
    assert.ok(limited.every((r) => Number(r.headers['retry-after']) >= 1));
    assert.match(limited[0].body, /rate_limited/);
    assert.equal(counted, limited.length);
    assert.equal(await metric(s, 'visage_http_rate_limited_total'), limited.length);
    await sleep(1200);
    const again = await raw(s, { path: '/api/v1/crawl', from: '127.0.0.6', headers: { Authorization: 'Bearer ' + key } });
    assert.equal(again.status, 200, 'tokens come back with time');
  });

  it('one address over its rate gets 429, another address does not', async () => {
    const rs = [];
    for (let i = 0; i < 80; i += 20) rs.push(...await Promise.all(Array.from({ length: 20 }, () => raw(s, { path: '/healthz', from: '127.0.0.7' }))));
    const n429 = rs.filter((r) => r.status === 429).length;
    const other = await raw(s, { path: '/healthz', from: '127.0.0.8' });
    console.log(`80 requests from one address at 40/s burst 40: ${n429} x 429`);
    assert.ok(n429 >= 30, 'refused past the burst: ' + n429);
    assert.equal(other.status, 200);
  });
});

describe('front door: ingest backpressure', () => {
  let s, dir;
  before(async () => { dir = L.tmpDir('front-queue'); s = await L.startServer(dir, { VISAGE_WORKERS: '0', VISAGE_QUEUE_MAX: '5' }); });
  after(async () => { await L.stopServer(s); fs.rmSync(dir, { recursive: true, force: true }); });

  it('ingest answers 202 up to the queue bound, then 503 + Retry-After; crawl too', async () => {
    const jpg = fs.readFileSync(PHOTO);
    const st = [];
    let refused = null;
    for (let i = 0; i < 9; i++) {
      const r = await L.api(s, 'POST', '/api/v1/ingest', { json: { image_b64: Buffer.concat([jpg, Buffer.from('bp-' + i)]).toString('base64') } });
      st.push(r.status);
      if (r.status === 503) refused = r;
      await sleep(300); // past the server's 250 ms cache of the queue depth
    }
    const crawl = await L.api(s, 'POST', '/api/v1/crawl', { json: { url: 'http://127.0.0.1:9/' } });
    console.log(`ingest with VISAGE_QUEUE_MAX=5 and no workers: ${st.join(' ')}; crawl ${crawl.status}`);
    assert.deepEqual(st, [202, 202, 202, 202, 202, 202, 503, 503, 503]);
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    assert.match(refused.data.error.message, /queue holds 6 messages \(bound 5\)/);
    assert.equal(crawl.status, 503);
    assert.equal(await metric(s, 'visage_http_refused_total{reason="queue_full"}'), 4);
  });
});

describe('front door: query images, Host, CORS, deadlines (open mode)', () => {
  let s, dir;
  const GOOD = 'http://good.example:3000';
  before(async () => {
    dir = L.tmpDir('front-open');
    s = await L.startServer(dir, { VISAGE_CORS_ORIGINS: GOOD + ', https://other.example', VISAGE_BODY_TIMEOUT: '2' });
  });
  after(async () => { await L.stopServer(s); fs.rmSync(dir, { recursive: true, force: true }); });

  it('a small PNG declaring 7000x7000 px sent to search is refused fast with 413', async () => {
    const png = bigPng(7000, 7000);
    const t0 = Date.now();
    const r = await L.api(s, 'POST', '/api/v1/search', { json: { image_b64: png.toString('base64') } });
    const ms = Date.now() - t0;
    console.log(`${png.length} B PNG of 7000x7000 to search: ${r.status} in ${ms} ms: ${JSON.stringify(r.data)}`);
    assert.equal(r.status, 413);
    assert.match(r.data.error.message, /7000x7000 = 49000000 pixels, over the limit of 12000000/);
    assert.ok(ms < 5000, 'refused before decoding: ' + ms + ' ms');
    const id = await L.api(s, 'POST', '/api/v1/identities/identify', { json: { image_b64: png.toString('base64') } });
    assert.equal(id.status, 413, 'identify by image too');
    assert.equal(await metric(s, 'visage_http_refused_total{reason="query_pixels"}'), 2);
  });

  it('open mode refuses a non-loopback Host (DNS rebinding) and accepts loopback ones', async () => {
    const bad = await raw(s, { path: '/api/v1/crawl', headers: { Host: 'attacker.example' } });
    assert.equal(bad.status, 421);
    assert.match(bad.body, /attacker\.example.*loopback/);
    const bad2 = await raw(s, { path: '/healthz', headers: { Host: 'attacker.example:' + s.port } });
    assert.equal(bad2.status, 421);
    for (const h of ['127.0.0.1:' + s.port, 'localhost:' + s.port, '[::1]:' + s.port, '127.9.9.9', 'LOCALHOST'])
      assert.equal((await raw(s, { path: '/api/v1/crawl', headers: { Host: h } })).status, 200, h);
  });

  it('a cross-origin text/plain POST is refused (crawl, batch, multipart ingest); same origin is not', async () => {
    const evil = { Origin: 'http://evil.example', 'Content-Type': 'text/plain' };
    const crawl = await raw(s, { method: 'POST', path: '/api/v1/crawl', headers: evil, body: JSON.stringify({ url: 'http://127.0.0.1:9/' }) });
    const batch = await raw(s, { method: 'POST', path: '/api/v1/ingest/batch', headers: evil,
      body: JSON.stringify({ items: [{ image_b64: L.b64(PHOTO) }] }) });
    const form = new FormData();
    form.append('image', new Blob([fs.readFileSync(PHOTO)]), 'a.jpg');
    const mp = await fetch(s.base + '/api/v1/ingest', { method: 'POST', headers: { Origin: 'http://evil.example' }, body: form });
    console.log(`cross-origin POSTs: crawl ${crawl.status}, batch ${batch.status}, multipart ingest ${mp.status}`);
    assert.equal(crawl.status, 403);
    assert.match(crawl.body, /forbidden_origin/);
    assert.equal(batch.status, 403);
    assert.equal(mp.status, 403);
    assert.equal(crawl.headers['access-control-allow-origin'], undefined);
    const jobs = await L.api(s, 'GET', '/api/v1/crawl');
    assert.equal(jobs.data.jobs.length, 0, 'no crawl job was created');
    // the web UI's own origin (same host) goes through
    const same = await raw(s, { method: 'POST', path: '/api/v1/search', headers: { Origin: s.base, 'Content-Type': 'application/json' }, body: '{"face_id":"nope"}' });
    assert.equal(same.status, 404);
    // a preflight from a foreign origin gets no CORS grant
    const pre = await raw(s, { method: 'OPTIONS', path: '/api/v1/search', headers: { Origin: 'http://evil.example', 'Access-Control-Request-Method': 'POST' } });
    assert.equal(pre.status, 403);
  });

  it('an allowed origin (VISAGE_CORS_ORIGINS) gets its preflight answered and the CORS headers', async () => {
    const pre = await raw(s, { method: 'OPTIONS', path: '/api/v1/search',
      headers: { Origin: GOOD, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization, content-type' } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers['access-control-allow-origin'], GOOD);
    assert.match(pre.headers['access-control-allow-methods'], /POST/);
    assert.match(pre.headers['access-control-allow-headers'], /Authorization/);
    assert.equal(pre.headers['access-control-allow-credentials'], undefined);
    const get = await raw(s, { path: '/api/v1/crawl', headers: { Origin: GOOD } });
    assert.equal(get.status, 200);
    assert.equal(get.headers['access-control-allow-origin'], GOOD);
    assert.match(get.headers.vary, /Origin/);
    const other = await raw(s, { path: '/api/v1/crawl', headers: { Origin: 'https://other.example' } });
    assert.equal(other.headers['access-control-allow-origin'], 'https://other.example');
  });

  it('a Content-Length that lies does not hold the connection past the body deadline', async () => {
    const r = await new Promise((resolve) => {
      const t0 = Date.now();
      const c = net.connect({ host: '127.0.0.1', port: s.port }, () =>
        c.write('POST /api/v1/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\nab'));
      c.on('error', () => {});
      c.on('close', () => resolve(Date.now() - t0));
      setTimeout(() => { c.destroy(); }, 20000);
    });
    const counted = await metric(s, 'visage_http_refused_total{reason="body_timeout"}');
    console.log(`Content-Length 1000000 with a 2-byte body: closed after ${r} ms (body deadline 2 s), counted ${counted}`);
    assert.ok(r >= 1500 && r < 6000, 'closed by the 2 s body deadline: ' + r + ' ms');
    assert.equal(counted, 1);
  });
});
