'use strict';
// True health signals (issue 10, item 8): /readyz turns 503, with the failing
// check, a message naming the data dir and a Retry-After, when the data dir is
// full (a real 8 MB tmpfs filled up, and the VISAGE_MIN_FREE_MB floor) or
// stops being writable while the server runs; a data dir that cannot be
// written at start is reported as such, not as "in use by another visage
// process"; the worker error storm of a full disk is logged once per interval
// with a count; new dead letters past VISAGE_READY_MAX_NEW_DEAD turn it 503
// too. Parts that need root (mount, running as nobody) are skipped
// without it; CI runs as root.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const L = require('./lib');

const ROOT_USER = process.getuid && process.getuid() === 0;
const NOBODY = 65534;
const SMALL = ['obama_small.jpg', 'knn_examples/test/obama1.jpg', 'knn_examples/train/alex_lacamoire/img1.jpg',
  'knn_examples/train/rose_leslie/img2.jpg', 'knn_examples/train/rose_leslie/img1.jpg',
  'knn_examples/train/kit_harington/john1.jpeg', 'knn_examples/train/kit_harington/john2.jpeg',
  'knn_examples/train/obama/obama2.jpg'].map((f) => path.join(L.FACES, f));

// Mounts a tmpfs of `size` at a new dir; null when mounting is not allowed.
function tmpfs(size, opts = '') {
  const dir = L.tmpDir('health-mnt');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=' + size + (opts ? ',' + opts : ''), 'tmpfs', dir], { stdio: 'ignore' });
    return dir;
  } catch (e) {
    fs.rmdirSync(dir);
    return null;
  }
}

function unmount(dir) {
  for (let i = 0; i < 50; i++) { // the server's files close as it exits
    try { execFileSync('umount', [dir], { stdio: 'ignore' }); break; } catch (e) { execFileSync('sleep', ['0.1']); }
  }
  fs.rmSync(dir, { recursive: true, force: true });
}

// Runs `visage serve` to its exit (it is expected to refuse to start).
function serveOnce(dataDir, opts = {}) {
  return new Promise((resolve) => {
    const p = spawn(L.BIN, ['serve', '--data', dataDir, '--listen', '127.0.0.1:1'], {
      env: { ...process.env, VISAGE_MODELS: L.MODELS }, stdio: ['ignore', 'ignore', 'pipe'], ...opts });
    let err = '';
    p.stderr.on('data', (d) => { err += d; });
    const t = setTimeout(() => p.kill('SIGKILL'), 60000);
    p.on('close', (code) => { clearTimeout(t); resolve({ code, err }); });
  });
}

// Like L.startServer, with spawn options (uid/gid) for an unprivileged server.
async function startAs(dataDir, env, opts) {
  const port = await L.freePort();
  const log = [];
  const proc = spawn(L.BIN, ['serve', '--data', dataDir, '--listen', '127.0.0.1:' + port], {
    env: { ...process.env, VISAGE_MODELS: L.MODELS, ...env }, stdio: ['ignore', 'ignore', 'pipe'], ...opts });
  proc.stderr.on('data', (d) => log.push(String(d)));
  const s = { proc, base: 'http://127.0.0.1:' + port, port, log };
  await L.waitFor(async () => {
    if (proc.exitCode !== null) throw new Error('server exited: ' + log.join(''));
    return (await fetch(s.base + '/healthz')).ok;
  }, 30000, 'server start: ' + log.join(''));
  return s;
}

// Polls /readyz until its status is `status` (and, when given, check
// `check` is in that state: other checks may fail first); returns the answer.
async function readyUntil(s, status, ms = 15000, check, state) {
  let r;
  await L.waitFor(async () => {
    r = await L.api(s, 'GET', '/readyz');
    return r.status === status && (!check || (r.data.checks && r.data.checks[check] === state));
  }, ms, '/readyz ' + status + ' ' + (check || '') + ' (last: ' + JSON.stringify(r && r.data) + ')');
  return r;
}

// The shape every 503 of /readyz has: documented, the check, a reason, a Retry-After.
function notReady(r, check, state, reasonRe) {
  assert.equal(r.status, 503);
  L.checkOpenapi('GET', '/readyz', 503, r.data);
  assert.equal(r.data.status, 'not_ready');
  assert.ok(r.data.failed.includes(check), JSON.stringify(r.data));
  assert.equal(r.data.checks[check], state, JSON.stringify(r.data));
  assert.match(r.data.reason, reasonRe);
  const ra = Number(r.headers.get('retry-after'));
  assert.ok(Number.isInteger(ra) && ra > 0, 'Retry-After: ' + r.headers.get('retry-after'));
}

describe('/readyz when the data dir is full', () => {
  it('a real 8 MB tmpfs filled up: 503 disk_full with the errno, 503s of ingest carry Retry-After, one log line per interval', { skip: !ROOT_USER && 'needs root to mount a tmpfs' }, async (t) => {
    const mnt = tmpfs('8m');
    if (!mnt) return t.skip('mount -t tmpfs is not permitted here');
    const dataDir = path.join(mnt, 'd');
    let s;
    try {
      s = await L.startServer(dataDir, { VISAGE_MIN_FREE_MB: '0' });
      const ok = await L.api(s, 'GET', '/readyz');
      assert.equal(ok.status, 200, JSON.stringify(ok.data));
      assert.equal(ok.data.checks.data_dir, 'ok');
      // queue work, then fill the disk at once: the workers find it full
      const items = SMALL.map((f) => ({ image_b64: L.b64(f) }));
      const b = await L.api(s, 'POST', '/api/v1/ingest/batch', { json: { items } });
      assert.equal(b.status, 202, JSON.stringify(b.data));
      const fd = fs.openSync(path.join(mnt, 'filler'), 'w');
      const chunk = Buffer.alloc(64 * 1024);
      try { for (;;) fs.writeSync(fd, chunk); } catch (e) { assert.equal(e.code, 'ENOSPC'); }
      fs.closeSync(fd);
      const t0 = Date.now();
      const full = await readyUntil(s, 503, 15000, 'data_dir', 'disk_full');
      notReady(full, 'data_dir', 'disk_full', /No space left on device/);
      assert.ok(full.data.reason.includes(dataDir), 'the reason names the data dir: ' + full.data.reason);
      // an upload that cannot be stored: a 503 that says when to come back
      const up = await L.api(s, 'POST', '/api/v1/ingest', { json: { image_b64: L.b64(path.join(L.FACES, 'obama-240p.jpg')) } });
      if (up.status === 503) assert.ok(Number(up.headers.get('retry-after')) > 0, 'Retry-After on the ingest 503');
      else assert.ok(up.status >= 400 || up.status === 202, String(up.status));
      // the workers fail on every try for a while: at most a line per key and interval
      await new Promise((r) => setTimeout(r, 12000));
      const storm = await L.api(s, 'GET', '/readyz');
      const secs = (Date.now() - t0) / 1000;
      const lines = s.log.join('').split('\n').filter((l) => /disk is full|No space left/.test(l));
      const m = /\((\d+) errors so far\)/.exec(storm.data.reason || '');
      const errors = m ? Number(m[1]) : 0;
      console.log(`# full disk: ${errors} worker storage errors, ${lines.length} log lines about them in ${secs.toFixed(1)} s`);
      const counts = new Map();
      for (const l of lines) counts.set(l, (counts.get(l) || 0) + 1);
      for (const [l, n] of counts) assert.equal(n, 1, 'the same line ' + n + ' times: ' + l);
      assert.ok(lines.length <= 16, lines.length + ' lines:\n' + lines.join('\n'));
      if (errors >= 20) {
        assert.equal(storm.data.checks.workers, 'storage_errors', JSON.stringify(storm.data));
        assert.ok(lines.some((l) => /\(\d+ more times in the last \d+ s\)/.test(l)), 'a count line:\n' + lines.join('\n'));
      }
      // room again: ready again (the probe is cached for a second)
      fs.rmSync(path.join(mnt, 'filler'));
      const back = await readyUntil(s, 200, 60000);
      assert.equal(back.data.checks.data_dir, 'ok');
    } finally {
      await L.stopServer(s);
      unmount(mnt);
    }
  });

  it('free space under VISAGE_MIN_FREE_MB: 503 disk_full naming the floor', async () => {
    const dir = L.tmpDir('health-floor');
    const s = await L.startServer(dir, { VISAGE_MIN_FREE_MB: '1000000000' });
    try {
      const r = await L.api(s, 'GET', '/readyz');
      notReady(r, 'data_dir', 'disk_full', /VISAGE_MIN_FREE_MB/);
      assert.ok(r.data.reason.includes(dir), r.data.reason);
      assert.equal(r.data.backends.store, 'ok', 'the backends themselves are fine');
    } finally {
      await L.stopServer(s);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('/readyz when messages keep dying', () => {
  it('VISAGE_READY_MAX_NEW_DEAD new dead letters: 503 dead_letters; old ones do not count', async (t) => {
    try { execFileSync('sqlite3', ['-version'], { stdio: 'ignore' }); } catch (e) { return t.skip('no sqlite3 CLI'); }
    const dir = L.tmpDir('health-dead');
    const s = await L.startServer(dir, { VISAGE_READY_MAX_NEW_DEAD: '3' });
    // dead letters written into the embedded queue as a failing pipeline would
    const kill = (from, n) => {
      const rows = [];
      for (let i = from; i < from + n; i++) rows.push(`(${i}, '{}', 'store put: database or disk is full', 5, ${Date.now()})`);
      execFileSync('sqlite3', ['-cmd', '.timeout 5000', path.join(dir, 'queue.db'),
        'INSERT INTO dead(id, body, last_error, attempts, failed_at) VALUES ' + rows.join(',') + ';']);
    };
    try {
      kill(1000, 5); // before the first look: already there, not new
      const first = await L.api(s, 'GET', '/readyz');
      assert.equal(first.status, 200, JSON.stringify(first.data));
      assert.equal(first.data.checks.dead_letters, 'ok');
      kill(2000, 2);
      assert.equal((await L.api(s, 'GET', '/readyz')).status, 200, 'two new ones are under the limit of 3');
      kill(3000, 1);
      const r = await L.api(s, 'GET', '/readyz');
      notReady(r, 'dead_letters', 'growing', /3 messages were dead-lettered in the last 5 minutes.*VISAGE_READY_MAX_NEW_DEAD/);
      const m = String((await L.api(s, 'GET', '/metrics')).data);
      assert.match(m, /visage_queue_dead 8/);
    } finally {
      await L.stopServer(s);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('/readyz when a backend is unreachable', () => {
  it('the redis queue goes away: 503 queue down with Retry-After, ready again when it is back', async () => {
    const dir = L.tmpDir('health-redis');
    const rdir = L.tmpDir('health-redis-data');
    let redis = await L.startRedis(rdir);
    const port = redis.port;
    const s = await L.startServer(dir, { VISAGE_QUEUE: `redis://127.0.0.1:${port}/0` });
    try {
      assert.equal((await L.api(s, 'GET', '/readyz')).status, 200);
      const gone = new Promise((r) => redis.proc.once('exit', r));
      redis.proc.kill('SIGKILL');
      await gone;
      const r = await readyUntil(s, 503, 15000, 'queue', 'down');
      notReady(r, 'queue', 'down', /queue backend does not answer/);
      assert.equal(r.data.backends.queue, 'down');
      redis = await L.startRedis(rdir, port);
      await readyUntil(s, 200, 30000);
    } finally {
      await L.stopServer(s);
      redis.proc.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(rdir, { recursive: true, force: true });
    }
  });
});

describe('a data dir that cannot be written', () => {
  it('at start, as a user without write permission: says so, with the path and the errno text', { skip: !ROOT_USER && 'needs root to run as nobody' }, async () => {
    const dir = L.tmpDir('health-ro');
    fs.chmodSync(dir, 0o755); // root's, readable by nobody, not writable
    try {
      const r = await serveOnce(dir, { uid: NOBODY, gid: NOBODY });
      assert.notEqual(r.code, 0);
      assert.doesNotMatch(r.err, /in use by another/);
      assert.match(r.err, /Permission denied/);
      assert.ok(r.err.includes(dir), r.err);
      // a LOCK nobody may open (left by an earlier run): the write probe still tells
      fs.writeFileSync(path.join(dir, 'LOCK'), '');
      fs.chmodSync(path.join(dir, 'LOCK'), 0o666);
      const r2 = await serveOnce(dir, { uid: NOBODY, gid: NOBODY });
      assert.notEqual(r2.code, 0);
      assert.doesNotMatch(r2.err, /in use by another/);
      assert.match(r2.err, /not writable.*Permission denied/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('at start, on a read-only mount: says read-only', { skip: !ROOT_USER && 'needs root to mount' }, async (t) => {
    const mnt = tmpfs('1m', 'ro');
    if (!mnt) return t.skip('mount -t tmpfs is not permitted here');
    try {
      const r = await serveOnce(mnt);
      assert.notEqual(r.code, 0);
      assert.doesNotMatch(r.err, /in use by another/);
      assert.match(r.err, /Read-only file system/);
      assert.ok(r.err.includes(mnt), r.err);
    } finally {
      unmount(mnt);
    }
  });

  it('a dir in use by another server still says so', async () => {
    const dir = L.tmpDir('health-lock');
    const s = await L.startServer(dir);
    try {
      const r = await serveOnce(dir);
      assert.notEqual(r.code, 0);
      assert.match(r.err, /in use by another visage process/);
    } finally {
      await L.stopServer(s);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('while the server runs: /readyz 503 unwritable, then ready again', { skip: !ROOT_USER && 'needs root to run as nobody' }, async () => {
    const parent = L.tmpDir('health-run');
    fs.chmodSync(parent, 0o755);
    const dir = path.join(parent, 'd');
    fs.mkdirSync(dir);
    fs.chownSync(dir, NOBODY, NOBODY);
    let s;
    try {
      s = await startAs(dir, {}, { uid: NOBODY, gid: NOBODY });
      assert.equal((await L.api(s, 'GET', '/readyz')).status, 200);
      fs.chownSync(dir, 0, 0); // root's now: nobody can no longer create files in it
      const r = await readyUntil(s, 503, 15000, 'data_dir', 'unwritable');
      notReady(r, 'data_dir', 'unwritable', /not writable.*Permission denied/);
      assert.ok(r.data.reason.includes(dir), r.data.reason);
      fs.chownSync(dir, NOBODY, NOBODY);
      await readyUntil(s, 200);
    } finally {
      await L.stopServer(s);
      fs.rmSync(parent, { recursive: true, force: true });
    }
  });
});
