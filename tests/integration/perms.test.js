'use strict';
// Private data at rest: under umask 022 (files 0644 and folders 0755 unless a
// program says otherwise) every file and folder visage creates in its data dir
// and file store is owner-only: raw images, crops, thumbnails, the index's
// points.log (face vectors), catalog.db, queue.db, crawl.db and their SQLite
// -wal/-shm files, the secret, the LOCK files, reindex state. The data dir is
// made by `visage ingest` (the CLI), moved to another model by `visage
// reindex`, then served: ingest, search, a crawl of the loopback test site,
// the erasure of a person, of an image and of a face. Then every entry under
// the data dir is stat'ed, and any with group or other bits is printed.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const L = require('./lib');
const { startSite } = require('./site');

const visage = (args, env = {}) => spawnSync(L.BIN, args, { env: { ...process.env, VISAGE_MODELS: L.MODELS, ...env }, encoding: 'utf8' });

// Every entry under dir (folders too), with its mode.
function entries(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    const st = fs.lstatSync(p);
    return [{ p, mode: st.mode & 0o777, dir: st.isDirectory() }, ...(st.isDirectory() ? entries(p) : [])];
  });
}

describe('private data at rest, whatever the umask', () => {
  const root = L.tmpDir('perms');
  const dir = path.join(root, 'data'); // made by visage, not by the test
  const src = path.join(root, 'photos');
  let oldMask, site, s;

  before(async () => {
    oldMask = process.umask(0o022); // children inherit it
    fs.mkdirSync(src);
    for (const f of ['obama_small.jpg', 'two_people.jpg', 'knn_examples/test/obama1.jpg'])
      fs.copyFileSync(path.join(L.FACES, f), path.join(src, path.basename(f)));
    site = await startSite({ flat: { pages: 2, images: 2 }, tag: 'perms' });
  });
  after(async () => {
    await L.stopServer(s, 'SIGKILL');
    if (site) await site.close();
    process.umask(oldMask);
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('creates every file 0600 and every folder 0700 under umask 022', async () => {
    // the CLI makes the data dir: ingest with one model, reindex to another
    const ing = visage(['ingest', src, '--data', dir], { VISAGE_EMBEDDER: 'faceres' });
    assert.equal(ing.status, 0, ing.stderr);
    const re = visage(['reindex', '--data', dir, '--embedder', 'dlib']);
    assert.equal(re.status, 0, re.stderr);

    s = await L.startServer(dir, { VISAGE_FETCH_ALLOW: '127.0.0.1/32' });
    const b = await L.api(s, 'POST', '/api/v1/ingest/batch', { json: { items: L.walk(L.FACES).slice(0, 6).map((f) => ({ image_b64: L.b64(f) })) } });
    assert.equal(b.status, 202, JSON.stringify(b.data));
    await L.waitDone(s, undefined, b.data.accepted.map((a) => a.image_sha256));
    const q = await L.api(s, 'POST', '/api/v1/search', { json: { image_b64: L.b64(path.join(src, 'obama_small.jpg')) } });
    assert.equal(q.status, 200, JSON.stringify(q.data));
    const c = await L.api(s, 'POST', '/api/v1/crawl', { json: { url: site.base + '/', depth: 1, delay_s: 0.01, timeout_s: 5 } });
    assert.equal(c.status, 202, JSON.stringify(c.data));
    await L.waitFor(async () => (await L.api(s, 'GET', '/api/v1/crawl/' + c.data.id)).data.state === 'done', 60000, 'crawl done');
    // erase: a face, an image, a person
    const img = b.data.accepted[0].image_sha256;
    const rec = await L.api(s, 'GET', '/api/v1/images/' + img);
    if (rec.data.faces_indexed && rec.data.faces_indexed.length)
      assert.equal((await L.api(s, 'DELETE', '/api/v1/faces/' + rec.data.faces_indexed[0].face_id)).status, 200);
    assert.equal((await L.api(s, 'DELETE', '/api/v1/images/' + img)).status, 200);
    const e = await L.api(s, 'POST', '/api/v1/erase', { json: { image_b64: L.b64(path.join(src, 'obama_small.jpg')) } });
    assert.equal(e.status, 200, JSON.stringify(e.data));
    // look while the server runs (its -wal and -shm files exist), then after it stops
    const seen = new Set();
    for (const when of ['while serving', 'after stopping']) {
      if (when === 'after stopping') await L.stopServer(s);
      const all = entries(dir);
      const open = all.filter((x) => x.mode & 0o077);
      for (const x of open) console.log(`# ${when}: ${x.p} is ${x.mode.toString(8)}`);
      assert.deepEqual(open.map((x) => path.relative(dir, x.p) + ' ' + x.mode.toString(8)), [], when + ': readable by group or others');
      all.forEach((x) => seen.add(path.relative(dir, x.p).replace(/[0-9a-f]{64}/g, 'SHA')));
    }
    const st = fs.statSync(dir);
    assert.equal(st.mode & 0o777, 0o700, 'the data dir');
    // what was looked at: the kinds of files the brief names (so the walk saw them)
    const names = [...seen];
    for (const re of [/^catalog\.db$/, /^catalog\.db-wal$/, /^queue\.db$/, /^crawl\.db$/, /^secret$/, /^LOCK$/, /^index\/LOCK$/,
      /^index\/[^/]+\/points\.log$/, /^blobs\/raw-images\/default\/SHA\./, /^blobs\/face-crops\/default\//, /^blobs\/thumbnails\/default\//])
      assert.ok(names.some((n) => re.test(n)), 'the data dir holds ' + re + ' (seen: ' + names.slice(0, 40).join(', ') + ')');
    console.log(`# ${names.length} files and folders checked`);
  });
});
