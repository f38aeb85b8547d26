'use strict';
// The crawler (issue 5) end to end against a local test site (site.js) on
// loopback only (127.0.0.1, and 127.0.0.2 as an out-of-scope second host):
//   (a) `visage crawl` of the feature-tour site: exact counts, what was and
//       was never requested, then `visage serve` on the same data dir shows
//       every stored image with its URLs and search finds the faces;
//   (b) politeness: --delay between request starts to a host;
//   (c) a robots.txt Crawl-delay larger than --delay wins;
//   (d) POST/GET /api/v1/crawl: tenancy, URL-ingest address rules;
//   (e) a server SIGKILLed mid-crawl resumes the job after a restart.
// Lines marked CONTRACT check a detail of the crawl contract that the
// implementation must provide (see the report that came with this file).
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { spawn } = require('node:child_process');
const L = require('./lib');
const { startSite, FULL, UA } = require('./site');

const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const children = new Set();

// Runs `visage crawl ARGS...`; resolves with exit code, output and the parsed job.
function runCrawl(args, { env = {}, timeoutMs = 60000 } = {}) {
  return new Promise((resolve) => {
    const p = spawn(L.BIN, ['crawl', ...args], { env: { ...process.env, VISAGE_MODELS: L.MODELS, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(p);
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { stderr += '\n[test: killed after ' + timeoutMs + ' ms]'; p.kill('SIGKILL'); }, timeoutMs);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(p);
      const lines = stdout.split('\n').filter((l) => l.trim());
      let job = null;
      try { job = JSON.parse(lines[lines.length - 1]); } catch (e) { /* reported by the caller */ }
      resolve({ code, signal, stdout, stderr, lines, job });
    });
  });
}

const describeRun = (r) => 'exit ' + r.code + (r.signal ? ' (' + r.signal + ')' : '') + '\nstdout: ' + r.stdout.slice(0, 2000) +
  '\nstderr: ' + r.stderr.slice(0, 2000);

// Request start gaps (ms) between consecutive requests in a log.
const gaps = (entries) => entries.slice(1).map((e, i) => e.t - entries[i].t);

// Requests per path (path with query) of log entries.
function perPath(entries) {
  const m = new Map();
  for (const e of entries) m.set(e.path, (m.get(e.path) || 0) + 1);
  return m;
}

// The job fields of the contract, with their types.
const JOB_INTS = ['depth', 'max_pages', 'max_images', 'delay_ms', 'requests', 'pages_fetched', 'images_fetched', 'images_saved',
  'images_duplicate', 'images_skipped', 'robots_blocked', 'out_of_scope', 'redirects', 'errors', 'bytes', 'images_processed',
  'faces_found', 'created_at', 'started_at', 'finished_at'];
function checkJobShape(job) {
  assert.match(job.id, /^crawl_[0-9a-f]{24}$/);
  for (const k of ['tenant', 'state', 'seed_url', 'error']) assert.equal(typeof job[k], 'string', k);
  assert.equal(typeof job.require_face, 'boolean');
  for (const k of JOB_INTS) assert.ok(Number.isInteger(job[k]), k + ' is an integer: ' + job[k]);
  assert.ok(['queued', 'running', 'done', 'failed'].includes(job.state), job.state);
}

// Polls GET /api/v1/crawl/{id} until until(job) holds; fails at once on a failed job.
async function pollJob(s, id, key, until, ms, what) {
  const deadline = Date.now() + ms;
  let last = null;
  for (;;) {
    const r = await L.api(s, 'GET', '/api/v1/crawl/' + id, { key });
    if (r.status === 200) {
      last = r.data;
      if (last.state === 'failed') throw new Error(what + ': the job failed: ' + JSON.stringify(last));
      if (until(last)) return last;
    }
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what + '; last answer ' + r.status + ' ' + JSON.stringify(r.data));
    await sleep(150);
  }
}

after(() => { for (const p of children) p.kill('SIGKILL'); });

describe('visage crawl: the test site, from the command line', () => {
  let site, dir, run, t0;
  before(async () => {
    site = await startSite({ slowMs: 15000 });
    dir = L.tmpDir('crawl');
    t0 = Date.now();
    run = await runCrawl([site.base + '/', '--data', dir, '--depth', '3', '--delay', '0.02', '--timeout', '2'], { timeoutMs: 90000 });
  }, { timeout: 100000 });
  after(async () => {
    if (site) await site.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('exits 0 and prints one JSON line: the done job with the exact counts', () => {
    assert.equal(run.code, 0, describeRun(run));
    assert.equal(run.lines.length, 1, 'one line on stdout: ' + run.stdout);
    const job = run.job;
    checkJobShape(job);
    assert.equal(job.state, 'done');
    assert.equal(job.error, '');
    assert.equal(job.tenant, 'default');
    assert.equal(job.seed_url, site.base + '/');
    assert.equal(job.depth, 3);
    assert.equal(job.delay_ms, 20);
    assert.equal(job.require_face, false);
    const want = FULL.counts;
    const got = {};
    for (const k of ['pages_fetched', 'images_saved', 'images_duplicate', 'images_skipped', 'redirects']) got[k] = job[k];
    assert.deepEqual(got, { pages_fetched: want.pages_fetched, images_saved: want.images_saved,
      images_duplicate: want.images_duplicate, images_skipped: want.images_skipped, redirects: want.redirects }, JSON.stringify(job));
    assert.ok(job.robots_blocked >= want.robots_blocked, 'robots_blocked ' + job.robots_blocked);
    assert.ok(job.out_of_scope >= want.out_of_scope, 'out_of_scope ' + job.out_of_scope);
    // 404 and timeout; the redirect loop may count as one more (CONTRACT leaves it open)
    assert.ok(job.errors >= want.errors && job.errors <= want.errors + 1, 'errors ' + job.errors);
    assert.ok(job.images_fetched >= job.images_saved + job.images_duplicate, 'images_fetched ' + job.images_fetched);
    // the CLI waits for the face pipeline
    assert.equal(job.images_processed, job.images_saved);
    assert.ok(job.faces_found >= job.images_saved, 'every stored photo has a face: ' + job.faces_found);
    // requests: every request the site saw (robots.txt included) and no other
    assert.equal(job.requests, site.main().length, 'requests = what the site saw');
    // body bytes: the stored images (~2.6 MB) and at most --max-image-mb of /big.jpg, never its 30 MB
    const stored = Object.keys(FULL.images).reduce((a, p) => a + site.files[p].length, 0);
    assert.ok(job.bytes > stored && job.bytes < 30 * 1024 * 1024, 'bytes ' + job.bytes);
    assert.ok(job.created_at <= job.started_at && job.started_at <= job.finished_at, 'times in order');
    assert.ok(job.started_at >= t0 - 1000 && job.finished_at <= Date.now() + 1000, 'times are wall-clock ms');
  });

  it('reports each failed URL on stderr, and no progress line when stderr is not a terminal', () => {
    const lines = run.stderr.split('\n');
    for (const p of FULL.errors) {
      assert.ok(lines.some((l) => l.startsWith('visage: crawl: ') && l.includes(site.base + p)),
        'a "visage: crawl: <reason> <url>" line for ' + p + ':\n' + run.stderr);
    }
    assert.ok(!run.stderr.includes('\r'), 'no progress line on a pipe');
  });

  it('requests robots.txt first, each URL at most once, and only what is in scope, allowed and within depth', () => {
    const main = site.main();
    assert.equal(main[0] && main[0].path, '/robots.txt', 'robots.txt first: ' + main.map((e) => e.path).join(' '));
    assert.deepEqual(site.others(), [], 'nothing at all was requested from the other host (127.0.0.2)');
    const counts = perPath(main);
    const twice = [...counts].filter(([, n]) => n > 1);
    assert.deepEqual(twice, [], 'each URL requested once');
    for (const p of FULL.neverRequested) assert.ok(!counts.has(p), p + ' must never be requested');
    assert.ok(![...counts.keys()].some((p) => p.startsWith('/private/')), 'nothing under /private/ (robots.txt)');
    assert.ok(!counts.has('/a/b/c/d/'), 'the page at depth 4 is not fetched with --depth 3');
    // exactly the expected set, nothing more
    assert.deepEqual([...counts.keys()].sort(), [...FULL.requested].sort());
    for (const e of main) assert.equal(e.method, 'GET', e.path);
  });

  it('sends its User-Agent and Accept-Encoding, and reads the gzip-compressed page', () => {
    for (const e of site.main()) assert.equal(e.ua, UA, 'User-Agent of ' + e.path);
    const gz = site.main().find((e) => e.path === '/gz/');
    assert.ok(gz, '/gz/ requested');
    assert.match(gz.acceptEncoding, /\bgzip\b/);
    assert.equal(gz.encoding, 'gzip', 'the page was sent compressed');
    assert.ok(site.main().some((e) => e.path === '/img/gz.jpg'), 'the image on the compressed page was found');
  });

  it('aborts the 30 MB image and the non-image mid-transfer, and gives up on the slow one at --timeout', () => {
    const big = site.stats.big;
    assert.ok(big, '/big.jpg requested');
    assert.equal(big.finished, false, 'the crawler did not read the whole 30 MB');
    assert.equal(big.aborted, true, 'the crawler closed the connection');
    assert.ok(big.sent < 30 * 1024 * 1024, 'sent ' + big.sent);
    assert.ok(site.stats.slow.aborted, '/slow.jpg closed by the crawler');
    const slowReq = site.main().find((e) => e.path === '/slow.jpg');
    const held = site.stats.slow.closedAt - slowReq.t;
    assert.ok(held >= 1800 && held < 6000, '/slow.jpg given up after about --timeout 2 s: ' + held + ' ms');
    const fake = site.main().find((e) => e.path === '/fake.jpg');
    assert.ok(fake, '/fake.jpg requested');
  });

  it('stores every image with its site, image URL and page URL; serve shows them and search finds the faces', async () => {
    assert.equal(run.code, 0, 'crawl ran');
    const s = await L.startServer(dir);
    try {
      for (const [p, v] of Object.entries(FULL.images)) {
        const sha = sha256(site.files[p]);
        const r = await L.api(s, 'GET', '/api/v1/images/' + sha);
        assert.equal(r.status, 200, p + ' (' + v.via + ') is stored: ' + JSON.stringify(r.data));
        L.checkOpenapi('GET', '/api/v1/images/{sha256}', 200, r.data);
        assert.equal(r.data.status, 'done', p);
        assert.equal(r.data.source_url, site.base + p, 'source_url of ' + p);
        assert.equal(r.data.page_url, site.base + v.page, 'page_url of ' + p);
        assert.equal(r.data.site, '127.0.0.1', 'site of ' + p);
        assert.ok(r.data.faces_found >= 1, p + ' has a face');
      }
      // the duplicate pair: one record, from whichever URL came first
      const dupSha = sha256(site.files[FULL.duplicate.paths[0]]);
      const d = await L.api(s, 'GET', '/api/v1/images/' + dupSha);
      assert.equal(d.status, 200);
      assert.ok(FULL.duplicate.paths.map((p) => site.base + p).includes(d.data.source_url), d.data.source_url);
      assert.equal(d.data.page_url, site.base + '/');
      assert.equal(d.data.faces_found, 2);
      // never fetched, so never stored
      for (const p of ['/img/small.jpg', '/img/pic-small.jpg', '/a/b/c/d/d.jpg', '/private/secret.jpg']) {
        const r = await L.api(s, 'GET', '/api/v1/images/' + sha256(site.files[p]));
        assert.equal(r.status, 404, p + ' not stored');
      }
      // CONTRACT: the job is in crawl.db, readable through the API of the same data dir
      const j = await L.api(s, 'GET', '/api/v1/crawl/' + run.job.id);
      assert.equal(j.status, 200, JSON.stringify(j.data));
      L.checkOpenapi('GET', '/api/v1/crawl/{id}', 200, j.data);
      assert.equal(j.data.state, 'done');
      assert.equal(j.data.images_saved, run.job.images_saved);
      // search by the photo behind the srcset's large candidate: that face, with its URLs
      const q = path.join(L.FACES, FULL.images['/img/large.jpg'].file);
      const r = await L.api(s, 'POST', '/api/v1/search', { json: { image_b64: L.b64(q), top_k: 5, filters: { site: '127.0.0.1' } } });
      assert.equal(r.status, 200, JSON.stringify(r.data));
      L.checkOpenapi('POST', '/api/v1/search', 200, r.data);
      const top = r.data.results[0];
      assert.ok(top, 'a result');
      assert.equal(top.image_sha256, sha256(fs.readFileSync(q)));
      assert.equal(top.source_url, site.base + '/img/large.jpg');
      assert.equal(top.page_url, site.base + '/');
      assert.equal(top.site, '127.0.0.1');
      assert.ok(top.same_person);
    } finally {
      await L.stopServer(s);
    }
  });
});

// A w x h grey-gradient PNG, built by hand (no face in it).
function gradientPng(w, h) {
  const zlib = require('node:zlib');
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => { let c = 0xffffffff; for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8); return (c ^ 0xffffffff) >>> 0; };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const c = Buffer.alloc(4); c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr[8] = 8; ihdr[9] = 0; // 8-bit grey
  const raw = Buffer.alloc((w + 1) * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw[y * (w + 1) + 1 + x] = (x * 255 / w) | 0;
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

describe('visage crawl --require-face', () => {
  it('stores the photo with a face and skips the image without one', async () => {
    const face = fs.readFileSync(path.join(L.FACES, 'knn_examples/train/rose_leslie/img1.jpg'));
    const noface = gradientPng(320, 240);
    const srv = http.createServer((req, res) => {
      if (req.url === '/') { res.writeHead(200, { 'Content-Type': 'text/html' }); return res.end('<img src="/face.jpg"><img src="/plain.png">'); }
      if (req.url === '/face.jpg') { res.writeHead(200, { 'Content-Type': 'image/jpeg' }); return res.end(face); }
      if (req.url === '/plain.png') { res.writeHead(200, { 'Content-Type': 'image/png' }); return res.end(noface); }
      res.writeHead(404); res.end();
    });
    await new Promise((r) => srv.listen(0, '127.0.0.1', r));
    const dir = L.tmpDir('crawl-face');
    try {
      const r = await runCrawl(['http://127.0.0.1:' + srv.address().port + '/', '--data', dir, '--depth', '0',
        '--delay', '0', '--require-face']);
      assert.equal(r.code, 0, describeRun(r));
      assert.equal(r.job.require_face, true);
      assert.equal(r.job.images_fetched, 2);
      assert.equal(r.job.images_saved, 1, describeRun(r));
      assert.equal(r.job.images_skipped, 1);
      assert.equal(r.job.faces_found, 1);
      const raw = fs.readdirSync(path.join(dir, 'blobs', 'raw-images', 'default'));
      assert.deepEqual(raw, [sha256(face) + '.jpg'], 'only the photo with a face is stored');
    } finally {
      srv.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('visage crawl: politeness', () => {
  const dirs = [];
  const sites = [];
  after(async () => {
    for (const s of sites) await s.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  it('waits --delay between request starts to a host, and stops at --max-pages', async () => {
    const site = await startSite({ flat: { pages: 5, images: 0 } });
    sites.push(site);
    const dir = L.tmpDir('crawl-delay');
    dirs.push(dir);
    const ua = 'visagetest/2.0 (+http://127.0.0.1/)';
    const r = await runCrawl([site.base + '/', '--data', dir, '--depth', '1', '--max-pages', '3', '--delay', '0.3', '--user-agent', ua],
      { timeoutMs: 30000 });
    assert.equal(r.code, 0, describeRun(r));
    assert.equal(r.job.pages_fetched, 3);
    assert.equal(r.job.max_pages, 3);
    assert.equal(r.job.delay_ms, 300);
    const main = site.main();
    assert.deepEqual(main.map((e) => e.path).slice(0, 2), ['/robots.txt', '/']);
    assert.equal(main.filter((e) => e.path !== '/robots.txt').length, 3, 'three pages requested: ' + main.map((e) => e.path).join(' '));
    const g = gaps(main);
    assert.ok(g.every((x) => x >= 280), 'gaps >= 0.28 s: ' + g.map((x) => x.toFixed(0)).join(', '));
    for (const e of main) assert.equal(e.ua, ua, '--user-agent is sent');
  });

  it('honours a robots.txt Crawl-delay larger than --delay (fractional seconds)', async () => {
    const site = await startSite({ flat: { pages: 5, images: 0 }, crawlDelay: 0.5 });
    sites.push(site);
    const dir = L.tmpDir('crawl-cd');
    dirs.push(dir);
    const r = await runCrawl([site.base + '/', '--data', dir, '--depth', '1', '--max-pages', '3', '--delay', '0.02'], { timeoutMs: 30000 });
    assert.equal(r.code, 0, describeRun(r));
    assert.equal(r.job.pages_fetched, 3);
    const main = site.main();
    assert.equal(main.length, 4, main.map((e) => e.path).join(' '));
    const g = gaps(main);
    assert.ok(g.every((x) => x >= 480), 'gaps >= 0.48 s: ' + g.map((x) => x.toFixed(0)).join(', '));
  });
});

describe('POST /api/v1/crawl', () => {
  let site, dir, s, keyA, keyB;
  before(async () => {
    site = await startSite({ flat: { pages: 3, images: 1 } });
    dir = L.tmpDir('crawl-api');
    keyA = L.createTenant(dir, 'alpha');
    keyB = L.createTenant(dir, 'beta');
    s = await L.startServer(dir, { VISAGE_FETCH_ALLOW: '127.0.0.1/32' });
  });
  after(async () => {
    await L.stopServer(s);
    if (site) await site.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('runs a crawl job for the caller\'s tenant, visible to that tenant only', async () => {
    const noKey = await L.api(s, 'POST', '/api/v1/crawl', { json: { url: site.base + '/' } });
    assert.equal(noKey.status, 401);
    const bad = await L.api(s, 'POST', '/api/v1/crawl', { key: keyA, json: { depth: 1 } });
    assert.equal(bad.status, 400, 'a url is required');
    L.checkOpenapi('POST', '/api/v1/crawl', 400, bad.data);
    const c = await L.api(s, 'POST', '/api/v1/crawl', { key: keyA,
      json: { url: site.base + '/', depth: 1, max_pages: 10, max_images: 100, delay_s: 0.02, timeout_s: 5, max_image_mb: 4 } });
    assert.equal(c.status, 202, JSON.stringify(c.data));
    L.checkOpenapi('POST', '/api/v1/crawl', 202, c.data);
    checkJobShape(c.data);
    assert.equal(c.data.state, 'queued');
    assert.equal(c.data.tenant, 'alpha');
    assert.equal(c.data.seed_url, site.base + '/');
    assert.equal(c.data.depth, 1);
    assert.equal(c.data.max_pages, 10);
    assert.equal(c.data.delay_ms, 20);
    const job = await pollJob(s, c.data.id, keyA, (j) => j.state === 'done' && j.images_processed === j.images_saved, 60000, 'crawl job done');
    const g = await L.api(s, 'GET', '/api/v1/crawl/' + c.data.id, { key: keyA });
    L.checkOpenapi('GET', '/api/v1/crawl/{id}', 200, g.data);
    checkJobShape(job);
    assert.equal(job.pages_fetched, 4);
    assert.equal(job.images_saved, 3);
    assert.equal(job.images_processed, 3);
    assert.equal(job.errors, 0);
    assert.equal(job.robots_blocked, 0);
    assert.equal(job.requests, site.main().length);
    assert.ok(job.faces_found >= 3);
    assert.ok(job.finished_at >= job.started_at && job.started_at >= job.created_at);
    for (const [p, v] of Object.entries(site.expect.images)) {
      const sha = sha256(v.bytes);
      const r = await L.api(s, 'GET', '/api/v1/images/' + sha, { key: keyA });
      assert.equal(r.status, 200, p);
      assert.equal(r.data.source_url, site.base + p);
      assert.equal(r.data.page_url, site.base + v.page);
      const other = await L.api(s, 'GET', '/api/v1/images/' + sha, { key: keyB });
      assert.equal(other.status, 404, 'beta does not see alpha\'s crawled image');
    }
    const m = String((await L.api(s, 'GET', '/metrics')).data);
    const metric = (name) => Number((m.split('\n').find((l) => l.startsWith(name + ' ')) || ' NaN').split(' ').pop());
    assert.ok(metric('visage_crawl_jobs{state="done"}') >= 1, m);
    assert.ok(metric('visage_crawl_pages_total') >= 4);
    assert.ok(metric('visage_crawl_images_total{result="saved"}') >= 3);
    // erasure of one crawled image also removes it from the job's records
    const [firstPath, first] = Object.entries(site.expect.images)[0];
    const del = await L.api(s, 'DELETE', '/api/v1/images/' + sha256(first.bytes), { key: keyA });
    assert.equal(del.status, 200, firstPath);
    const after = (await L.api(s, 'GET', '/api/v1/crawl/' + c.data.id, { key: keyA })).data;
    assert.equal(after.images_erased, 1, 'the job tells that one of its images was erased since');
    assert.equal(after.images_processed, job.images_processed, 'an erased image still counts as processed');
    assert.equal(job.images_erased, 0);
    // a second crawl of the site does not bring the erased image back
    const again = await L.api(s, 'POST', '/api/v1/crawl', { key: keyA, json: { url: site.base + '/', depth: 1, delay_s: 0.02 } });
    const j2 = await pollJob(s, again.data.id, keyA, (j) => j.state === 'done', 60000, 'second crawl done');
    assert.equal(j2.images_saved, 0, JSON.stringify(j2));
    assert.equal(j2.images_skipped, 1, 'the erased image is skipped');
    assert.equal(j2.images_duplicate, job.images_saved - 1);
    assert.equal((await L.api(s, 'GET', '/api/v1/images/' + sha256(first.bytes), { key: keyA })).status, 404);
    const b = await L.api(s, 'GET', '/api/v1/crawl/' + c.data.id, { key: keyB });
    assert.equal(b.status, 404, 'another tenant\'s job is not found');
    L.checkOpenapi('GET', '/api/v1/crawl/{id}', 404, b.data);
    const u = await L.api(s, 'GET', '/api/v1/crawl/crawl_' + '0'.repeat(24), { key: keyA });
    assert.equal(u.status, 404);
  });

  it('runs jobs side by side, lists them per tenant, and cancels queued and running ones', async () => {
    // a slow, polite crawl (1 s between requests, 10 pages) and a quick one: the quick one
    // must not wait behind the slow one
    const slow = await startSite({ flat: { pages: 10, images: 0 } });
    try {
      const a = await L.api(s, 'POST', '/api/v1/crawl', { key: keyA, json: { url: slow.base + '/', depth: 1, delay_s: 1 } });
      assert.equal(a.status, 202);
      const b = await L.api(s, 'POST', '/api/v1/crawl', { key: keyB, json: { url: site.base + '/', depth: 1, delay_s: 0.02 } });
      assert.equal(b.status, 202);
      const jb = await pollJob(s, b.data.id, keyB, (j) => j.state === 'done', 30000, 'quick job done');
      assert.equal(jb.pages_fetched, 4);
      const ja = (await L.api(s, 'GET', '/api/v1/crawl/' + a.data.id, { key: keyA })).data;
      assert.equal(ja.state, 'running', 'the slow job still runs: the quick one did not wait for it');

      const list = await L.api(s, 'GET', '/api/v1/crawl', { key: keyB });
      assert.equal(list.status, 200);
      L.checkOpenapi('GET', '/api/v1/crawl', 200, list.data);
      assert.ok(list.data.jobs.length >= 1);
      assert.equal(list.data.jobs[0].id, b.data.id, 'newest first');
      assert.ok(list.data.jobs.every((j) => j.tenant === 'beta'), 'only the caller\'s jobs');
      assert.equal((await L.api(s, 'GET', '/api/v1/crawl?limit=0', { key: keyB })).status, 400);

      // another tenant cannot cancel it; its owner can, and it stops within a moment
      assert.equal((await L.api(s, 'DELETE', '/api/v1/crawl/' + a.data.id, { key: keyB })).status, 404);
      const requestsBefore = slow.main().length;
      const del = await L.api(s, 'DELETE', '/api/v1/crawl/' + a.data.id, { key: keyA });
      assert.equal(del.status, 202, JSON.stringify(del.data));
      L.checkOpenapi('DELETE', '/api/v1/crawl/{id}', 202, del.data);
      const jc = await pollJob(s, a.data.id, keyA, (j) => j.state !== 'running', 5000, 'cancelled');
      assert.equal(jc.state, 'cancelled');
      assert.ok(jc.pages_fetched < 10, 'stopped before the end');
      await sleep(1500);
      assert.ok(slow.main().length <= requestsBefore + 1, 'no requests after the cancel');
      const again = await L.api(s, 'DELETE', '/api/v1/crawl/' + a.data.id, { key: keyA });
      assert.equal(again.status, 409, 'an ended job is not cancelled again');
      L.checkOpenapi('DELETE', '/api/v1/crawl/{id}', 409, again.data);
    } finally {
      await slow.close();
    }
  });

  it('visage crawl --server starts the job on the server and follows it until its images are processed', async () => {
    const small = await startSite({ flat: { pages: 1, images: 2, tag: 'remote' } });
    try {
      const r = await runCrawl([small.base + '/', '--server', s.base, '--key', keyA, '--depth', '1', '--delay', '0.02']);
      assert.equal(r.code, 0, describeRun(r));
      checkJobShape(r.job);
      assert.equal(r.job.tenant, 'alpha');
      assert.equal(r.job.state, 'done');
      assert.equal(r.job.images_saved, 2);
      assert.equal(r.job.images_processed, 2, 'returned only once the images were processed');
      const bad = await runCrawl([small.base + '/', '--server', s.base, '--key', 'vsk_wrong']);
      assert.equal(bad.code, 1, describeRun(bad));
      assert.match(bad.stderr, /401/);
    } finally {
      await small.close();
    }
  });

  it('refuses a loopback seed unless VISAGE_FETCH_ALLOW covers it, before any request', async () => {
    const site2 = await startSite({ flat: { pages: 1, images: 0 } });
    const dir2 = L.tmpDir('crawl-api-deny');
    const s2 = await L.startServer(dir2, { VISAGE_FETCH_ALLOW: '' });
    try {
      const r = await L.api(s2, 'POST', '/api/v1/crawl', { json: { url: site2.base + '/', depth: 0, delay_s: 0 } });
      assert.equal(r.status, 400, JSON.stringify(r.data));
      L.checkOpenapi('POST', '/api/v1/crawl', 400, r.data);
      assert.match(r.data.error.message, /address not allowed/);
      await sleep(500);
      assert.deepEqual(site2.log, [], 'the site saw no request');
    } finally {
      await L.stopServer(s2);
      await site2.close();
      fs.rmSync(dir2, { recursive: true, force: true });
    }
  });
});

describe('crawl resume', () => {
  let site, dir, s;
  after(async () => {
    await L.stopServer(s, 'SIGKILL');
    if (site) await site.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('finishes a job after the server is SIGKILLed mid-crawl, without fetching pages again', async () => {
    // 9 pages ("/" and 8), one image on each of the first 4: robots.txt + 13 requests, 0.3 s apart.
    // The crawl takes pages first (FIFO), so a kill after 11 requests lands among the images.
    site = await startSite({ flat: { pages: 8, images: (i) => (i <= 4 ? 1 : 0) } });
    dir = L.tmpDir('crawl-resume');
    const env = { VISAGE_FETCH_ALLOW: '127.0.0.1/32', VISAGE_VISIBILITY_MS: '3000' };
    s = await L.startServer(dir, env);
    const c = await L.api(s, 'POST', '/api/v1/crawl', { json: { url: site.base + '/', depth: 1, max_pages: 50, delay_s: 0.3 } });
    assert.equal(c.status, 202, JSON.stringify(c.data));
    const expected = [...site.expect.pages, ...Object.keys(site.expect.images)];
    assert.equal(expected.length, 13);
    await L.waitFor(() => site.main().length >= 11, 20000, 'the crawl to reach the images');
    s.proc.kill('SIGKILL');
    await new Promise((r) => (s.proc.exitCode !== null || s.proc.signalCode !== null ? r() : s.proc.once('exit', r)));
    const nBefore = site.main().length;
    assert.ok(nBefore < expected.length + 1, 'killed mid-crawl (' + nBefore + ' requests so far)');
    s = await L.startServer(dir, env);
    // images_processed counts the job's images processed by the pipeline (from the catalog), so it
    // reaches 4 even when images_saved is wrong; an image queued at the kill comes back after
    // VISAGE_VISIBILITY_MS
    const job = await pollJob(s, c.data.id, undefined, (j) => j.state === 'done' && j.images_processed >= 4, 60000,
      'resumed crawl done with its 4 images processed');
    const main = site.main();
    const afterKill = main.slice(nBefore);
    assert.equal(afterKill[0] && afterKill[0].path, '/robots.txt', 'robots.txt first after the restart too');
    const counts = perPath(main.filter((e) => e.path !== '/robots.txt'));
    for (const p of expected) assert.ok(counts.get(p) >= 1, p + ' fetched');
    assert.deepEqual([...counts.keys()].sort(), [...expected].sort(), 'nothing else fetched');
    const repeats = [...counts.values()].reduce((a, n) => a + n - 1, 0);
    assert.ok(repeats <= 2, 'at most the URLs in flight at the kill fetched again: ' + JSON.stringify([...counts]));
    for (const [p, v] of Object.entries(site.expect.images)) {
      const r = await L.api(s, 'GET', '/api/v1/images/' + sha256(v.bytes));
      assert.equal(r.status, 200, p + ' stored (requests: ' + main.map((e) => e.path).join(' ') + ', killed after ' + nBefore + ')');
      assert.equal(r.data.status, 'done', p);
      assert.equal(r.data.source_url, site.base + p);
    }
    // CONTRACT: counts are kept with the frontier, so they survive the kill:
    // each distinct image saved once (a re-fetch is a duplicate), every page counted
    const pageRepeats = site.expect.pages.reduce((a, p) => a + counts.get(p) - 1, 0);
    assert.ok(job.pages_fetched >= 9 && job.pages_fetched <= 9 + pageRepeats, 'pages_fetched ' + job.pages_fetched + ': ' + JSON.stringify(job) + ' requests: ' + main.map((e) => e.path).join(' ') + ' (killed after ' + nBefore + ')');
    assert.equal(job.images_saved, 4, JSON.stringify(job));
    // every request of both runs (robots.txt twice), less at most the ones in flight at the kill
    assert.ok(job.requests <= main.length && job.requests >= main.length - 2, 'requests ' + job.requests + ' of ' + main.length);
    assert.ok(job.images_duplicate <= repeats, 'images_duplicate ' + job.images_duplicate);
    assert.equal(job.images_processed, 4);
    assert.equal(job.errors, 0);
  });
});
