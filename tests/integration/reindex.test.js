'use strict';
// Model upgrades over real files and real HTTP on loopback: a data dir made
// with today's model (VISAGE_EMBEDDER=faceres, the shared photos ingested by
// `visage ingest`) keeps working under `visage serve` with faceres; a
// conflicting VISAGE_EMBEDDER is refused naming both models; `visage reindex`
// moves it to dlib (same images, same faces, Obama photos first, old
// collections gone, identities kept); a reindex killed with SIGKILL and run
// again ends exactly as an uninterrupted one; blocks are refused unless
// --drop-blocks, which records each in the erasure log.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const L = require('./lib');

const photos = L.walk(L.FACES);
const rel = (f) => path.relative(L.FACES, f);
const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');
const shaOf = Object.fromEntries(photos.map((f) => [rel(f), sha256(fs.readFileSync(f))]));
const QUERY = path.join(L.FACES, 'knn_examples/test/obama1.jpg');
const variant = (file, tag) => Buffer.concat([fs.readFileSync(file), Buffer.from('\n' + tag)]);
const env = (extra = {}) => { const e = { ...process.env, VISAGE_MODELS: L.MODELS, ...extra }; if (!('VISAGE_EMBEDDER' in extra)) delete e.VISAGE_EMBEDDER; return e; };

function visage(args, extra) {
  const r = spawnSync(L.BIN, args, { env: env(extra), encoding: 'utf8', maxBuffer: 64 << 20 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function reindex(dir, extraArgs = [], extraEnv = {}) {
  const r = visage(['reindex', '--data', dir, ...extraArgs], extraEnv);
  return { ...r, report: r.code === 0 ? JSON.parse(r.out) : null };
}

const collections = (dir) => fs.readdirSync(path.join(dir, 'index')).filter((n) => n !== 'LOCK').sort();

// Every face of the tenant: by a search that returns everything (threshold -1).
async function allFaces(s, key) {
  const r = await L.api(s, 'POST', '/api/v1/search', { key, json: { image_b64: L.b64(QUERY), top_k: 1000, threshold: -1 } });
  assert.equal(r.status, 200, JSON.stringify(r.data));
  return r.data.results.map((h) => h.face_id);
}

// What a data dir holds, as served: each image's record and every face.
async function snapshot(dir, shas) {
  const s = await L.startServer(dir, { VISAGE_EMBEDDER: '' });
  try {
    const records = {};
    for (const sha of shas) {
      const r = await L.api(s, 'GET', '/api/v1/images/' + sha);
      assert.equal(r.status, 200, sha + ': ' + JSON.stringify(r.data));
      records[sha] = r.data;
    }
    return { records, faces: await allFaces(s), log: s.log.join('') };
  } finally { await L.stopServer(s); }
}

describe('model upgrade: a faceres data dir moved to dlib', () => {
  const dir = L.tmpDir('reindex');
  const ref = dir + '-ref';
  const shas = Object.values(shaOf);
  const facesBefore = {}; // sha -> number of faces indexed with faceres
  let extraSha, identityId;

  before(() => {
    const r = visage(['ingest', L.FACES, '--data', dir], { VISAGE_EMBEDDER: 'faceres' });
    assert.equal(r.code, 0, r.err);
    assert.equal(JSON.parse(r.out).processed, photos.length);
  });
  after(() => { for (const d of [dir, ref]) fs.rmSync(d, { recursive: true, force: true }); });

  it('serve on the old data dir keeps ingesting and searching with faceres', async () => {
    const s = await L.startServer(dir, { VISAGE_EMBEDDER: '' });
    try {
      assert.match(s.log.join(''), /model faceres@/);
      for (const sha of shas) {
        const r = await L.api(s, 'GET', '/api/v1/images/' + sha);
        assert.equal(r.data.status, 'done');
        assert.match(r.data.model, /^faceres@/);
        facesBefore[sha] = r.data.faces_indexed.length;
      }
      const q = await L.api(s, 'POST', '/api/v1/search', { json: { image_b64: L.b64(QUERY), top_k: 11 } });
      assert.equal(q.status, 200);
      const firstImages = new Set(q.data.results.map((h) => h.image_sha256));
      assert.deepEqual([...firstImages].sort(), [...L.OBAMA].map((f) => shaOf[f]).sort(), 'the 11 Obama photos first');
      // a new image is ingested with faceres too
      const ing = await L.api(s, 'POST', '/api/v1/ingest', { json: { image_b64: variant(path.join(L.FACES, 'knn_examples/train/biden/biden2.jpg'), 'new').toString('base64') } });
      assert.equal(ing.status, 202, JSON.stringify(ing.data));
      extraSha = ing.data.image_sha256;
      const rec = (await L.waitDone(s, undefined, [extraSha]))[extraSha];
      assert.equal(rec.status, 'done');
      assert.match(rec.model, /^faceres@/);
      facesBefore[extraSha] = rec.faces_indexed.length;
      // an identity: an indexed face, a stored photo, and a photo that is not stored
      const c = await L.api(s, 'POST', '/api/v1/identities', { json: { name: 'Barack' } });
      identityId = c.data.identity_id;
      const face = (await L.api(s, 'GET', '/api/v1/images/' + shaOf['obama_small.jpg'])).data.faces_indexed[0].face_id;
      const enroll = async (json) => L.api(s, 'POST', '/api/v1/identities/' + identityId + '/enroll', { json });
      assert.equal((await enroll({ face_ids: [face] })).status, 200);
      assert.equal((await enroll({ image_b64: L.b64(path.join(L.FACES, 'obama-1080p.jpg')) })).status, 200);
      const e3 = await enroll({ image_b64: variant(path.join(L.FACES, 'knn_examples/train/obama/obama.jpg'), 'upload').toString('base64') });
      assert.equal(e3.data.n_samples, 3, JSON.stringify(e3.data));
    } finally { await L.stopServer(s); }
  });

  it('refuses a VISAGE_EMBEDDER that is not the data dir\'s model, naming both', async () => {
    await assert.rejects(L.startServer(dir, { VISAGE_EMBEDDER: 'dlib' }),
      (e) => /dlib-resnet@/.test(e.message) && /faceres@/.test(e.message) && /visage reindex/.test(e.message));
    const r = visage(['search', QUERY, '--data', dir], { VISAGE_EMBEDDER: 'dlib' });
    assert.notEqual(r.code, 0);
    assert.match(r.err, /faces_v1 was made by faceres/);
  });

  it('a reindex killed with SIGKILL and run again ends as an uninterrupted one', async () => {
    fs.cpSync(dir, ref, { recursive: true });
    const whole = reindex(ref, ['--embedder', 'dlib']);
    assert.equal(whole.code, 0, whole.err);
    assert.equal(whole.report.switched, true);
    // the same with one worker, killed once the new collection holds a few faces
    const p = spawn(L.BIN, ['reindex', '--data', dir, '--embedder', 'dlib', '--workers', '1'], { env: env(), stdio: 'ignore' });
    const log = path.join(dir, 'index', 'faces_v2', 'points.log');
    const exited = new Promise((res) => p.once('exit', (code, sig) => res(sig || code)));
    await L.waitFor(() => p.exitCode !== null || (fs.existsSync(log) && fs.statSync(log).size > 3000), 300000, 'faces in faces_v2');
    p.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL', 'killed before it finished');
    assert.ok(collections(dir).includes('faces_v1'), 'searches still have the old collection');
    const again = reindex(dir);  // VISAGE_EMBEDDER unset: dlib, the default
    assert.equal(again.code, 0, again.err);
    assert.equal(again.report.resumed, true);
    assert.equal(again.report.switched, true);
    assert.equal(again.report.images, whole.report.images);
    assert.equal(again.report.faces, whole.report.faces);
    const a = await snapshot(dir, [...shas, extraSha]), b = await snapshot(ref, [...shas, extraSha]);
    assert.equal(new Set(a.faces).size, a.faces.length, 'no face twice');
    assert.deepEqual([...a.faces].sort(), [...b.faces].sort(), 'the same point ids');
    for (const sha of [...shas, extraSha])
      assert.deepEqual(a.records[sha].faces_indexed.map((f) => f.face_id), b.records[sha].faces_indexed.map((f) => f.face_id), sha);
  });

  it('after it: dlib, the same images and faces, Obama first, old collections gone, identities kept', async () => {
    assert.deepEqual(collections(dir), ['faces_v2', 'identities_v2', 'identity_samples_v2']);
    const s = await L.startServer(dir, { VISAGE_EMBEDDER: '' });
    try {
      assert.match(s.log.join(''), /model dlib-resnet@/);
      let total = 0;
      for (const sha of [...shas, extraSha]) {
        const r = await L.api(s, 'GET', '/api/v1/images/' + sha);
        assert.equal(r.data.status, 'done');
        assert.match(r.data.model, /^dlib-resnet@/);
        assert.equal(r.data.faces_indexed.length, facesBefore[sha], sha + ': same number of faces');
        total += facesBefore[sha];
      }
      assert.equal((await allFaces(s)).length, total);
      const q = await L.api(s, 'POST', '/api/v1/search', { json: { image_b64: L.b64(QUERY), top_k: 11 } });
      const firstImages = new Set(q.data.results.map((h) => h.image_sha256));
      assert.deepEqual([...firstImages].sort(), [...L.OBAMA].map((f) => shaOf[f]).sort(), 'the 11 Obama photos first');
      const ids = await L.api(s, 'GET', '/api/v1/identities');
      assert.deepEqual(ids.data.identities.map((i) => [i.identity_id, i.name, i.n_samples]), [[identityId, 'Barack', 2]],
        'kept, without the sample whose photo is not stored');
      const v = await L.api(s, 'POST', '/api/v1/identities/' + identityId + '/verify', { json: { image_b64: L.b64(QUERY) } });
      assert.equal(v.data.match, true, JSON.stringify(v.data));
      // ingest goes on with dlib
      const ing = await L.api(s, 'POST', '/api/v1/ingest', { json: { image_b64: variant(QUERY, 'after').toString('base64') } });
      const rec = (await L.waitDone(s, undefined, [ing.data.image_sha256]))[ing.data.image_sha256];
      assert.match(rec.model, /^dlib-resnet@/);
    } finally { await L.stopServer(s); }
    const none = reindex(dir, ['--embedder', 'dlib']);
    assert.equal(none.code, 0);
    assert.equal(none.report.switched, false);
    assert.match(none.err, /nothing to do/);
  });
});

describe('model upgrade: erasure blocks', () => {
  const dir = L.tmpDir('reindex-blocks');
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('refuses to switch while a tenant has blocks; --drop-blocks drops them into the erasure log', async () => {
    const files = ['obama_small.jpg', 'knn_examples/train/biden/biden.jpg', 'knn_examples/train/alex_lacamoire/img1.jpg'];
    const r = visage(['ingest', ...files.map((f) => path.join(L.FACES, f)), '--data', dir], { VISAGE_EMBEDDER: 'faceres' });
    assert.equal(r.code, 0, r.err);
    let s = await L.startServer(dir, { VISAGE_EMBEDDER: '' });
    const er = await L.api(s, 'POST', '/api/v1/erase', { json: { image_b64: L.b64(path.join(L.FACES, 'knn_examples/train/biden/biden2.jpg')), block: true, note: 'ticket 42' } });
    assert.equal(er.status, 200, JSON.stringify(er.data));
    assert.equal(er.data.images_erased, 1);
    const blockId = er.data.block_id;
    await L.stopServer(s);
    const refused = reindex(dir, ['--embedder', 'dlib']);
    assert.equal(refused.code, 1);
    assert.match(refused.err, /erasure block.*tenant default.*--drop-blocks/s);
    assert.ok(collections(dir).includes('erase_blocks_v1') && collections(dir).includes('faces_v1'), 'nothing switched');
    const dropped = reindex(dir, ['--embedder', 'dlib', '--drop-blocks']);
    assert.equal(dropped.code, 0, dropped.err);
    assert.equal(dropped.report.blocks_dropped, 1);
    assert.match(dropped.err, /dropped 1 erasure block/);
    assert.ok(!collections(dir).some((c) => c.endsWith('_v1')), 'old collections gone: ' + collections(dir));
    s = await L.startServer(dir, { VISAGE_EMBEDDER: '' });
    try {
      const log = await L.api(s, 'GET', '/api/v1/erase/log');
      const entry = log.data.entries.find((e) => e.what === 'block_dropped');
      assert.ok(entry, JSON.stringify(log.data));
      assert.equal(entry.block_id, blockId);
      assert.equal(entry.note, 'ticket 42');
      L.checkOpenapi('GET', '/api/v1/erase/log', 200, log.data);
      assert.deepEqual((await L.api(s, 'GET', '/api/v1/erase/blocks')).data.blocks, []);
      const gone = await L.api(s, 'GET', '/api/v1/images/' + shaOf['knn_examples/train/biden/biden.jpg']);
      assert.equal(gone.status, 404, 'the erased image stays erased');
      const kept = await L.api(s, 'GET', '/api/v1/images/' + shaOf['obama_small.jpg']);
      assert.match(kept.data.model, /^dlib-resnet@/);
    } finally { await L.stopServer(s); }
  });
});

describe('model upgrade over the API, while serving', () => {
  const dir = L.tmpDir('reindex-api');
  const files = ['obama_small.jpg', 'obama-240p.jpg', 'obama-1080p.jpg', 'knn_examples/train/obama/obama.jpg',
    'knn_examples/train/biden/biden.jpg', 'knn_examples/train/biden/biden2.jpg', 'two_people.jpg',
    'knn_examples/train/alex_lacamoire/img1.jpg', 'knn_examples/train/rose_leslie/img1.jpg'];
  let s;
  after(async () => { await L.stopServer(s); fs.rmSync(dir, { recursive: true, force: true }); });

  it('re-embeds in the background while search, ingest and erasure go on, then switches', async () => {
    const r = visage(['ingest', ...files.map((f) => path.join(L.FACES, f)), '--data', dir], { VISAGE_EMBEDDER: 'faceres' });
    assert.equal(r.code, 0, r.err);
    s = await L.startServer(dir, { VISAGE_EMBEDDER: '' });
    const idle = await L.api(s, 'GET', '/api/v1/reindex');
    assert.equal(idle.status, 200);
    L.checkOpenapi('GET', '/api/v1/reindex', 200, idle.data);
    assert.equal(idle.data.state, 'idle');
    assert.match(idle.data.model, /^faceres@/);
    assert.equal((await L.api(s, 'POST', '/api/v1/reindex', { json: { embedder: 'nope' } })).status, 400);
    // one image per second per reindex thread: long enough to work beside it
    const go = await L.api(s, 'POST', '/api/v1/reindex', { json: { embedder: 'dlib', throttle_ms: 1000 } });
    assert.equal(go.status, 202, JSON.stringify(go.data));
    L.checkOpenapi('POST', '/api/v1/reindex', 202, go.data);
    assert.equal((await L.api(s, 'POST', '/api/v1/reindex', { json: { embedder: 'dlib' } })).status, 409);
    // once it has re-embedded an image or two: search with the old model, ingest, erase
    await L.waitFor(async () => { const g = (await L.api(s, 'GET', '/api/v1/reindex')).data; return g.state === 'running' && g.done >= 1; },
      120000, 'the first images re-embedded');
    const obama = new Set([shaOf['obama_small.jpg'], shaOf['obama-240p.jpg'], shaOf['obama-1080p.jpg'],
      shaOf['knn_examples/train/obama/obama.jpg'], shaOf['two_people.jpg']]);
    const q = await L.api(s, 'POST', '/api/v1/search', { json: { image_b64: L.b64(QUERY), top_k: 5 } });
    assert.equal(q.status, 200);
    assert.deepEqual(new Set(q.data.results.map((h) => h.image_sha256)), obama, 'Obama first, with faceres');
    const ing = await L.api(s, 'POST', '/api/v1/ingest', { json: { image_b64: L.b64(path.join(L.FACES, 'knn_examples/train/rose_leslie/img2.jpg')) } });
    assert.equal(ing.status, 202);
    const newSha = ing.data.image_sha256;
    await L.waitDone(s, undefined, [newSha]);
    const erasedSha = shaOf['knn_examples/train/biden/biden2.jpg'];
    const del = await L.api(s, 'DELETE', '/api/v1/images/' + erasedSha);
    assert.equal(del.status, 200, JSON.stringify(del.data));
    const mid = await L.api(s, 'GET', '/api/v1/reindex');
    assert.equal(mid.data.state, 'running', 'all of that happened during the reindex: ' + JSON.stringify(mid.data));
    assert.match(mid.data.model, /^faceres@/, 'searches still on the old model');
    // until it is done
    let st;
    await L.waitFor(async () => (st = (await L.api(s, 'GET', '/api/v1/reindex')).data).state !== 'running' && st.state !== 'loading', 180000, 'reindex');
    assert.equal(st.state, 'done', JSON.stringify(st));
    L.checkOpenapi('GET', '/api/v1/reindex', 200, st);
    assert.equal(st.report.switched, true);
    assert.match(st.model, /^dlib-resnet@/);
    assert.equal(st.collections.faces, 'faces_v2');
    assert.equal(st.pending, undefined);
    assert.deepEqual(collections(dir), ['faces_v2']);
    // the image ingested meanwhile is in, with the new model; the erased one is nowhere
    const rec = await L.api(s, 'GET', '/api/v1/images/' + newSha);
    assert.equal(rec.data.status, 'done');
    assert.match(rec.data.model, /^dlib-resnet@/);
    assert.equal((await L.api(s, 'GET', '/api/v1/images/' + erasedSha)).status, 404);
    const shas = files.map((f) => shaOf[f]).filter((h) => h !== erasedSha).concat([newSha]);
    let total = 0;
    for (const sha of shas) total += (await L.api(s, 'GET', '/api/v1/images/' + sha)).data.faces_indexed.length;
    const all = await L.api(s, 'POST', '/api/v1/search', { json: { image_b64: L.b64(QUERY), top_k: 1000 } });
    assert.equal(all.data.results.length, total, 'every face once, none of the erased image');
    assert.ok(all.data.results.every((h) => h.image_sha256 !== erasedSha));
    assert.deepEqual(new Set(all.data.results.slice(0, 5).map((h) => h.image_sha256)), obama, 'Obama first, with dlib');
    // ingest goes on with the new engine
    const after2 = await L.api(s, 'POST', '/api/v1/ingest', { json: { image_b64: variant(QUERY, 'api').toString('base64') } });
    const rec2 = (await L.waitDone(s, undefined, [after2.data.image_sha256]))[after2.data.image_sha256];
    assert.match(rec2.model, /^dlib-resnet@/);
  });

  it('is for the operator: 403 for tenants, the admin key opens it', async () => {
    const key = L.createTenant(dir, 'acme'); // the running server sees it at once: no longer open mode
    for (const k of [undefined, key]) {
      const r = await L.api(s, 'GET', '/api/v1/reindex', { key: k });
      assert.equal(r.status, 403);
      assert.match(r.data.error.message, /VISAGE_ADMIN_KEY/);
      assert.equal((await L.api(s, 'POST', '/api/v1/reindex', { key: k, json: { embedder: 'dlib' } })).status, 403);
    }
    await L.stopServer(s);
    s = await L.startServer(dir, { VISAGE_EMBEDDER: '', VISAGE_ADMIN_KEY: 'operator-secret' });
    assert.equal((await L.api(s, 'GET', '/api/v1/reindex', { key: key })).status, 403);
    const ok = await L.api(s, 'POST', '/api/v1/reindex', { key: 'operator-secret', json: { embedder: 'dlib' } });
    assert.equal(ok.status, 202);
    let st;
    await L.waitFor(async () => ['done', 'failed'].includes((st = (await L.api(s, 'GET', '/api/v1/reindex', { key: 'operator-secret' })).data).state), 60000, 'reindex');
    assert.equal(st.state, 'done');
    assert.equal(st.report.switched, false, 'on dlib already: nothing to do');
  });
});
