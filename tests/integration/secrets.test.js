'use strict';
// Credentials in URLs are never logged or echoed (issue 10, item 7): every URL
// setting visage accepts (queue, store endpoint, index, crawl seed, URL ingest,
// --server) is given a password, and no stdout/stderr line of the server or
// CLI, nor any API response, may contain it. Loopback only: a small site that
// insists on HTTP basic auth, a real redis-server with requirepass, and ports
// nothing listens on (a refused connection is enough to make the errors that
// used to echo URLs).
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const L = require('./lib');

const SECRET = 'Zq8s3cretpw';
const USER = 'crawluser';
const PHOTO = fs.readFileSync(path.join(L.FACES, 'knn_examples/train/obama/obama.jpg'));

// Runs the visage CLI; resolves {code, out, err} (killed after ms).
function run(args, env = {}, ms = 60000) {
  return new Promise((resolve) => {
    const p = spawn(L.BIN, args, { env: { ...process.env, VISAGE_MODELS: L.MODELS, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const t = setTimeout(() => p.kill('SIGKILL'), ms);
    p.on('close', (code) => { clearTimeout(t); resolve({ code, out, err }); });
  });
}

// Fails naming the line when text holds the password (or its user name
// together with it, as user:password).
function noSecret(text, what) {
  const lines = String(text).split('\n').filter((l) => l.includes(SECRET));
  assert.deepEqual(lines, [], what + ' shows the password');
}

// A site that answers only with the right basic-auth credentials: the page
// links an image, a file that is not an image and a missing image (both log
// a crawl error line naming their URL).
async function startSite() {
  const want = 'Basic ' + Buffer.from(USER + ':' + SECRET).toString('base64');
  const seen = { authed: 0, refused: 0 };
  const srv = http.createServer((req, res) => {
    if (req.headers.authorization !== want) {
      seen.refused++;
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="x"' });
      return res.end();
    }
    seen.authed++;
    const url = req.url.split('?')[0];
    if (url === '/') {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      return res.end('<html><body><img src="/a.jpg"><img src="/not-an-image.jpg"><img src="/missing.jpg"></body></html>');
    }
    if (url === '/a.jpg') { res.writeHead(200, { 'Content-Type': 'image/jpeg' }); return res.end(PHOTO); }
    if (url === '/not-an-image.jpg') { res.writeHead(200, { 'Content-Type': 'image/jpeg' }); return res.end('plain text, not a JPEG'); }
    res.writeHead(404);
    res.end();
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const port = srv.address().port;
  return { srv, port, seen, base: `http://${USER}:${SECRET}@127.0.0.1:${port}` };
}

async function poll(fn, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('credentials in URLs never reach a log line or a response', () => {
  let site, dir, s, closed;
  const responses = [];
  // every API answer of the test is kept and checked at the end too
  const call = async (...a) => { const r = await L.api(s, ...a); responses.push(JSON.stringify(r.data)); return r; };
  before(async () => {
    site = await startSite();
    closed = await L.freePort(); // nothing listens there
    dir = L.tmpDir('secrets');
    s = await L.startServer(dir, { VISAGE_FETCH_ALLOW: '127.0.0.1/32' });
  });
  after(async () => {
    await L.stopServer(s);
    if (site) site.srv.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a crawl with user:password@ in its seed: job JSON, image records and crawl log lines', async () => {
    const c = await call('POST', '/api/v1/crawl', { json: { url: site.base + '/', depth: 1, delay_s: 0, timeout_s: 5 } });
    assert.equal(c.status, 202, JSON.stringify(c.data));
    assert.match(c.data.seed_url, /^http:\/\/\*\*\*@127\.0\.0\.1:\d+\/$/, 'the job shows the seed without credentials');
    const job = await poll(async () => {
      const g = await call('GET', '/api/v1/crawl/' + c.data.id);
      return g.data.state === 'done' && g.data.images_processed === g.data.images_saved ? g.data : null;
    }, 60000, 'crawl done');
    assert.ok(site.seen.authed >= 2, 'the crawler used the credentials: ' + JSON.stringify(site.seen));
    assert.equal(job.images_saved, 1, JSON.stringify(job));
    const sha = require('node:crypto').createHash('sha256').update(PHOTO).digest('hex');
    const img = await call('GET', '/api/v1/images/' + sha);
    assert.equal(img.status, 200);
    assert.equal(img.data.source_url, `http://***@127.0.0.1:${site.port}/a.jpg`);
    assert.equal(img.data.page_url, `http://***@127.0.0.1:${site.port}/`);
    // the skipped and missing images were logged, with their URLs
    await poll(() => s.log.join('').includes('not-an-image.jpg'), 10000, 'a crawl log line naming the bad image');
    noSecret(s.log.join(''), 'the server log');
    // a seed that cannot be reached: the job's error names the URL, not its password
    const dead = await call('POST', '/api/v1/crawl', { json: { url: `http://${USER}:${SECRET}@127.0.0.1:${closed}/`, depth: 0 } });
    assert.equal(dead.status, 202);
    const failed = await poll(async () => {
      const g = await call('GET', '/api/v1/crawl/' + dead.data.id);
      return g.data.state === 'failed' ? g.data : null;
    }, 30000, 'crawl of a refused seed fails');
    assert.match(failed.error, /127\.0\.0\.1/, 'the error still says which URL failed: ' + failed.error);
    noSecret(JSON.stringify(failed), 'the failed job');
  });

  it('URL ingest with credentials: the record and the fetch error', async () => {
    const ok = await call('POST', '/api/v1/ingest', { json: { url: site.base + '/a.jpg?key=' + SECRET } });
    assert.ok(ok.status === 202 || ok.status === 200, JSON.stringify(ok.data));
    const bad = await call('POST', '/api/v1/ingest', { json: { url: `http://${USER}:${SECRET}@127.0.0.1:${closed}/x.jpg` } });
    assert.ok(bad.status >= 400, JSON.stringify(bad.data));
    assert.match(JSON.stringify(bad.data), /127\.0\.0\.1/, 'the error names the host');
    noSecret(JSON.stringify(bad.data), 'the fetch error');
    noSecret(responses.join('\n'), 'an API response');
    noSecret(s.log.join(''), 'the server log');
  });

  it('the CLI crawl and --server echo no password', async () => {
    const cdir = L.tmpDir('secrets-cli');
    try {
      const r = await run(['crawl', site.base + '/', '--data', cdir, '--depth', '1', '--delay', '0']);
      assert.equal(r.code, 0, r.err);
      assert.ok(r.err.includes('not-an-image.jpg'), 'the CLI logged the bad image: ' + r.err);
      noSecret(r.out, 'visage crawl stdout');
      noSecret(r.err, 'visage crawl stderr');
      const bad = await run(['crawl', 'ftp://u:' + SECRET + '@h/', '--data', cdir]);
      assert.notEqual(bad.code, 0);
      noSecret(bad.err, 'the bad-URL message');
      const remote = await run(['crawl', site.base + '/', '--server', `http://u:${SECRET}@127.0.0.1:${closed}`, '--key', 'k']);
      assert.notEqual(remote.code, 0);
      assert.match(remote.err, /127\.0\.0\.1/);
      noSecret(remote.err, 'the --server error');
    } finally {
      fs.rmSync(cdir, { recursive: true, force: true });
    }
  });
});

describe('backend URLs with credentials', () => {
  let dir, redis;
  before(() => { dir = L.tmpDir('secrets-backends'); });
  after(() => {
    if (redis) redis.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a malformed or unreachable VISAGE_QUEUE, VISAGE_INDEX or S3 endpoint', async () => {
    const port = await L.freePort();
    const cases = [
      { VISAGE_QUEUE: `redis://:${SECRET}@127.0.0.1:99999/0` },             // bad port: used to echo the URL
      { VISAGE_QUEUE: `redis://user:${SECRET}@127.0.0.1:${port}/0` },       // refused
      { VISAGE_QUEUE: `redis://:${SECRET}@/0` },                            // no host
      { VISAGE_INDEX: `http://user:${SECRET}@127.0.0.1:${port}/` },         // refused
      { VISAGE_INDEX: `http://user:${SECRET}@127.0.0.1:${port}/?x#y` },     // malformed
      { VISAGE_STORE: 's3://bkt', VISAGE_S3_ENDPOINT: `http://ak:${SECRET}@127.0.0.1:${port}`,
        AWS_ACCESS_KEY_ID: 'ak', AWS_SECRET_ACCESS_KEY: SECRET },           // bad host (user-info)
      { VISAGE_STORE: 's3://bkt', VISAGE_S3_ENDPOINT: `http://127.0.0.1:${port}`,
        AWS_ACCESS_KEY_ID: 'ak', AWS_SECRET_ACCESS_KEY: SECRET },           // refused
    ];
    for (const env of cases) {
      for (const cmd of [['serve', '--data', dir, '--listen', '127.0.0.1:' + port], ['worker']]) {
        const e = { ...env };
        if (cmd[0] === 'worker' && !e.VISAGE_QUEUE) e.VISAGE_QUEUE = `redis://:${SECRET}@127.0.0.1:${port}/0`;
        const r = await run(cmd, e, 60000);
        assert.notEqual(r.code, 0, JSON.stringify(env) + ' ' + r.err);
        assert.ok(r.err.length > 0, 'it says why');
        noSecret(r.out + r.err, cmd[0] + ' with ' + JSON.stringify(Object.keys(env)) + ': ' + r.err);
      }
    }
  });

  it('a worker on a password-protected redis announces the queue without its password', async () => {
    const port = await L.freePort();
    redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--requirepass', SECRET,
      '--dir', dir], { stdio: 'ignore' });
    await L.waitFor(() => new Promise((res) => {
      const c = require('node:net').connect(port, '127.0.0.1', () => { c.end(); res(true); });
      c.on('error', () => res(false));
    }), 10000, 'redis-server');
    const p = spawn(L.BIN, ['worker'], { env: { ...process.env, VISAGE_MODELS: L.MODELS, VISAGE_QUEUE: `redis://:${SECRET}@127.0.0.1:${port}/0`,
      VISAGE_WORKERS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    p.stdout.on('data', (d) => { log += d; });
    p.stderr.on('data', (d) => { log += d; });
    try {
      await L.waitFor(() => log.includes('consuming'), 30000, 'the worker to start: ' + log);
    } finally {
      const done = new Promise((r) => p.once('close', r));
      p.kill('SIGTERM');
      await done;
    }
    assert.match(log, /consuming redis:\/\/\*\*\*@127\.0\.0\.1/);
    noSecret(log, 'the worker log');
  });
});
