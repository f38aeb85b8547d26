'use strict';
// The erasure log after a crash: a person with many images (distinct bytes of
// the same photo: JPEG decoders stop at the end-of-image marker, so bytes
// appended after it make a new image with the same face) is erased with POST
// /api/v1/erase, and the server is SIGKILLed at several points of it: soon
// after the request, once the first images are erased, half-way. After each
// kill the images gone are read from the file store on disk (before any
// restart could touch them); the server restarts on the same data dir, the
// client retries the erasure as it would, and GET /api/v1/erase/log must name
// every image that is gone, and in the end every image of the person is gone.
// Before the erasure record existed the killed erasure left no entry and the
// retry's named only the images still found, so the first ones were missing.
const { describe, it, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const L = require('./lib');

const PHOTO = path.join(L.FACES, 'obama_small.jpg');
const N = Number(process.env.VISAGE_ERASE_CRASH_IMAGES || 40);
const variant = (tag, i) => Buffer.concat([fs.readFileSync(PHOTO), Buffer.from('\nerase-crash ' + tag + ' ' + i)]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// sha256 of the images whose raw file is still in the store (file store:
// {data}/blobs/raw-images/{tenant}/{sha256}.{ext})
function rawOnDisk(dir) {
  const d = path.join(dir, 'blobs', 'raw-images', 'default');
  if (!fs.existsSync(d)) return new Set();
  return new Set(fs.readdirSync(d).filter((f) => /^[0-9a-f]{64}\./.test(f)).map((f) => f.slice(0, 64)));
}

async function eraseLog(s) {
  const r = await L.api(s, 'GET', '/api/v1/erase/log?limit=1000');
  assert.equal(r.status, 200, JSON.stringify(r.data));
  return r.data.entries;
}

describe('erasure of a person cut by SIGKILL', () => {
  const dir = L.tmpDir('erase-crash');
  let s;
  after(async () => { await L.stopServer(s, 'SIGKILL'); fs.rmSync(dir, { recursive: true, force: true }); });

  // Each round erases at most m of the person's images (max_images), so one
  // ingest serves every kill point. Below 8 images a round erases image by
  // image (files, then record and points), so the raw files on disk show how
  // far it got without asking the server; from 8 on it removes the round's
  // files first, then the rest image by image. `when` resolves when it is
  // time to kill (base: raw files gone before the round).
  const goneOnDisk = (shas) => { const d = rawOnDisk(dir); return shas.filter((x) => !d.has(x)).length; };
  const until = async (f) => { while (!f()) await sleep(2); };
  const rounds = [
    { m: 6, name: 'soon after the request', when: async () => sleep(30) },
    { m: 6, name: 'after the first image', when: (shas, base) => until(() => goneOnDisk(shas) >= base + 1) },
    { m: 6, name: 'half-way', when: (shas, base) => until(() => goneOnDisk(shas) >= base + 3) },
    { m: 16, name: 'after the files of a batch', when: (shas, base) => until(() => goneOnDisk(shas) >= base + 16) },
  ];

  // Every image gone from the store is named by a "person" entry of the log.
  async function checkNamed(shas, what) {
    const onDisk = rawOnDisk(dir);
    const gone = shas.filter((sha) => !onDisk.has(sha));
    const entries = (await eraseLog(s)).filter((e) => e.what === 'person');
    const named = new Set(entries.flatMap((e) => e.images || []));
    const missing = gone.filter((sha) => !named.has(sha));
    assert.deepEqual(missing, [], `${missing.length} of the ${gone.length} images gone ${what} are named by no log entry`);
    for (const e of entries) assert.ok(!/vector|embedding/.test(JSON.stringify(e)), 'no vector in the log');
    return { gone, entries, named };
  }

  it('names every erased image in the log, whatever point the kill hit', async () => {
    s = await L.startServer(dir);
    const items = Array.from({ length: N }, (_, i) => ({ image_b64: variant('p', i).toString('base64') }));
    const t0 = Date.now();
    const ing = await L.api(s, 'POST', '/api/v1/ingest/batch', { json: { items } });
    assert.equal(ing.status, 202, JSON.stringify(ing.data));
    const shas = ing.data.accepted.map((a) => a.image_sha256);
    assert.equal(new Set(shas).size, N, 'distinct images');
    await L.waitDone(s, undefined, shas);
    console.log(`# ${N} images of one person ingested in ${Date.now() - t0} ms`);
    let cut = 0; // kills that fell while some of a round's images were erased and some not
    for (const round of rounds) {
      const base = goneOnDisk(shas);
      const t1 = Date.now();
      const req = L.api(s, 'POST', '/api/v1/erase', { json: { image_b64: L.b64(PHOTO), max_images: round.m } }).catch((e) => e);
      const how = await Promise.race([round.when(shas, base).then(() => 'killed'), req.then(() => 'finished first, then killed')]);
      s.proc.kill('SIGKILL');
      await new Promise((r) => (s.proc.exitCode !== null || s.proc.signalCode !== null ? r() : s.proc.once('exit', r)));
      const ms = Date.now() - t1, seen = goneOnDisk(shas) - base;
      await req;
      if (seen > 0 && seen < round.m) cut++;
      s = await L.startServer(dir); // the restart finishes what the kill cut
      const { gone, entries } = await checkNamed(shas, 'after the kill ' + round.name);
      const resumed = entries.filter((e) => e.resumed === true).length;
      console.log(`# kill ${round.name}: ${how} after ${ms} ms with ${seen} of the round's ${round.m} raw files gone;` +
        ` ${gone.length} of ${N} gone in all, ${resumed} log entries resumed after a restart`);
      for (const e of entries) assert.equal(e.state === undefined || e.state === 'done', true, 'entry ' + e.id + ' is ' + e.state);
    }
    // the client's last retry takes the rest: every image gone, every one named
    const last = await L.api(s, 'POST', '/api/v1/erase', { json: { image_b64: L.b64(PHOTO) } });
    assert.equal(last.status, 200, JSON.stringify(last.data));
    assert.equal(last.data.complete, true);
    const { gone, named } = await checkNamed(shas, 'in the end');
    assert.equal(gone.length, N, 'no raw file left');
    for (const sha of shas) {
      assert.equal((await L.api(s, 'GET', '/api/v1/images/' + sha)).status, 404, sha + ' erased');
      assert.ok(named.has(sha), 'the log names ' + sha);
    }
    assert.ok(cut >= 1, 'at least one kill fell part-way through a round (else the timing proved nothing)');
    // a clean stop of the server that resumed erasures: sanitizer builds report leaks here
    await L.stopServer(s);
    assert.ok(!/Sanitizer/.test(s.log.join('')), s.log.join('').slice(-2000));
  });
});
