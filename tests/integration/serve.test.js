'use strict';
// `visage serve` end to end over real HTTP on loopback: ingest the shared
// photos, search, tenancy, limits and bad input, erasure, identities, and
// the documented response shapes (docs/openapi.yaml).
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const L = require('./lib');

const photos = L.walk(L.FACES);
const rel = (f) => path.relative(L.FACES, f);
const { OBAMA } = L;
// In obama_and_biden.jpg Obama is the face right of x = 1000; two_people.jpg is
// obama3.jpg's Obama (left, x < 500) beside biden.jpg's Biden.
const isObamaFace = (f, bbox) => OBAMA.has(f) && (!f.includes('obama_and_biden') || bbox[0] > 1000) &&
  (f !== 'two_people.jpg' || bbox[0] < 500);

describe('visage serve', () => {
  let s, dir, keyA, keyB;
  const shaOf = {}; // rel path -> sha256 (tenant A)
  let records = {};
  const betaFiles = photos.filter((f) => /biden|rose_leslie/.test(f));

  before(async () => {
    dir = L.tmpDir('serve');
    keyA = L.createTenant(dir, 'alpha');
    keyB = L.createTenant(dir, 'beta');
    s = await L.startServer(dir);
  });
  after(async () => { await L.stopServer(s); fs.rmSync(dir, { recursive: true, force: true }); });

  it('answers health, readiness and metrics without a key', async () => {
    const h = await L.api(s, 'GET', '/healthz');
    assert.equal(h.status, 200);
    L.checkOpenapi('GET', '/healthz', 200, h.data);
    const r = await L.api(s, 'GET', '/readyz');
    assert.equal(r.status, 200);
    L.checkOpenapi('GET', '/readyz', 200, r.data);
    assert.deepEqual(r.data.backends, { store: 'ok', queue: 'ok', index: 'ok' });
    const m = await L.api(s, 'GET', '/metrics');
    assert.match(m.data, /visage_queue_ready \d+/);
    const w = await L.api(s, 'GET', '/');
    assert.equal(w.status, 200);
    assert.match(String(w.data), /<title>visage/);
  });

  it('refuses calls without a valid key', async () => {
    const a = await L.api(s, 'POST', '/api/v1/search', { json: { vector: [] } });
    assert.equal(a.status, 401);
    assert.equal(a.data.error.code, 'unauthorized');
    const b = await L.api(s, 'POST', '/api/v1/search', { key: 'vsk_' + '0'.repeat(48), json: { vector: [] } });
    assert.equal(b.status, 401);
  });

  it('ingests the shared photos (batch for A, single for B) and processes them', async () => {
    const items = photos.map((f) => ({ image_b64: L.b64(f), site: 'shared', source_url: 'file://' + rel(f), external_image_id: rel(f) }));
    const r = await L.api(s, 'POST', '/api/v1/ingest/batch', { key: keyA, json: { items } });
    assert.equal(r.status, 202);
    L.checkOpenapi('POST', '/api/v1/ingest/batch', 202, r.data);
    assert.equal(r.data.rejected.length, 0, JSON.stringify(r.data.rejected));
    r.data.accepted.forEach((a) => { shaOf[rel(photos[a.index])] = a.image_sha256; });
    const shasB = [];
    for (const f of betaFiles) {
      const one = await L.api(s, 'POST', '/api/v1/ingest', { key: keyB, json: { image_b64: L.b64(f), source_url: 'file://' + rel(f) } });
      assert.equal(one.status, 202, JSON.stringify(one.data));
      L.checkOpenapi('POST', '/api/v1/ingest', 202, one.data);
      shasB.push(one.data.image_sha256);
    }
    records = await L.waitDone(s, keyA, Object.values(shaOf));
    await L.waitDone(s, keyB, shasB);
    for (const [sha, rec] of Object.entries(records)) {
      assert.equal(rec.status, 'done', sha + ': ' + JSON.stringify(rec.error));
      L.checkOpenapi('GET', '/api/v1/images/{sha256}', 200, rec);
    }
    const two = records[shaOf['two_people.jpg']];
    assert.equal(two.faces_found, 2);
    // the three sizes of one Obama photo: all indexed (each is an appearance),
    // linked by near_duplicate_of to one processed before. Two workers may
    // process two of them at once (neither sees the other), so at least one
    // link, and every link points at one of the three.
    const sizes = ['obama-1080p.jpg', 'obama-240p.jpg', 'obama_small.jpg'].map((f) => records[shaOf[f]]);
    const faces3 = sizes.flatMap((x) => x.faces_indexed);
    assert.equal(faces3.length, 3);
    const links = faces3.filter((f) => f.near_duplicate_of);
    // knn_examples/train/obama/obama.jpg is the same photo again (its pHash is 6 bits from
    // obama_small.jpg's): when it is processed first, a link may point at it
    const same = [...sizes, records[shaOf['knn_examples/train/obama/obama.jpg']]];
    const ids3 = new Set(same.flatMap((x) => x.faces_indexed.map((f) => f.face_id)));
    assert.ok(links.length >= 1, 'near-duplicates are linked');
    assert.ok(links.every((f) => ids3.has(f.near_duplicate_of)),
      'links point at the same photo at another size: ' + JSON.stringify(links.map((f) => f.near_duplicate_of)));
    const again = await L.api(s, 'POST', '/api/v1/ingest', { key: keyA, json: { image_b64: L.b64(path.join(L.FACES, 'two_people.jpg')) } });
    assert.equal(again.status, 202);
    L.checkOpenapi('POST', '/api/v1/ingest', 202, again.data);
    assert.equal(again.data.status, 'duplicate', 'an exact duplicate is not queued again');
    assert.equal(again.data.message_id, null);
    const otherTenant = await L.api(s, 'POST', '/api/v1/ingest', { key: keyB, json: { image_b64: L.b64(path.join(L.FACES, 'two_people.jpg')) } });
    assert.equal(otherTenant.data.status, 'queued', 'another tenant\'s copy is its own image');
    await L.waitDone(s, keyB, [otherTenant.data.image_sha256]);
    const byExt = await L.api(s, 'GET', '/api/v1/images?external_image_id=' + encodeURIComponent('two_people.jpg'), { key: keyA });
    assert.equal(byExt.status, 200);
    assert.equal(byExt.data.image_sha256, shaOf['two_people.jpg']);
  });

  it('counts the workers\' time per stage in /metrics once photos are processed', async () => {
    // runs after the ingest test (node:test runs a describe's tests in order)
    const m = String((await L.api(s, 'GET', '/metrics')).data);
    const num = (re) => Number((re.exec(m) || [])[1]);
    const processed = num(/visage_images_total\{result="processed"\} (\d+)/);
    assert.ok(processed >= photos.length, 'photos processed: ' + processed);
    for (const st of ['decode', 'blazeface', 'faceboxes', 'embed', 'store', 'commit'])
      assert.ok(num(new RegExp('visage_stage_seconds_total\\{stage="' + st + '"\\} ([0-9.]+)')) > 0, st);
    // one FaceBoxes pass per photo analysed, at least one BlazeFace pass each
    assert.equal(num(/visage_stage_calls_total\{stage="faceboxes"\} (\d+)/), processed);
    assert.ok(num(/visage_stage_calls_total\{stage="blazeface"\} (\d+)/) >= processed);
  });

  it('runs its ingest workers at a lower priority than requests (nice 10)', () => {
    const nice = fs.readdirSync('/proc/' + s.proc.pid + '/task').map((t) => {
      const stat = fs.readFileSync('/proc/' + s.proc.pid + '/task/' + t + '/stat', 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]); // field 19: nice
    });
    // one ingest worker per core, and the people runner (docs/people.md)
    assert.equal(nice.filter((n) => n === 10).length, require('node:os').cpus().length + 1, JSON.stringify(nice));
    assert.ok(nice.filter((n) => n === 0).length >= 1, 'the request threads keep nice 0');
  });

  it('finds the Obama photos first for obama1.jpg', async () => {
    const q = path.join(L.FACES, 'knn_examples/test/obama1.jpg');
    const r = await L.api(s, 'POST', '/api/v1/search', { key: keyA, json: { image_b64: L.b64(q), top_k: 50 } });
    assert.equal(r.status, 200);
    L.checkOpenapi('POST', '/api/v1/search', 200, r.data);
    const relOf = Object.fromEntries(Object.entries(shaOf).map(([k, v]) => [v, k]));
    const seq = r.data.results.map((x) => relOf[x.image_sha256]);
    const isObama = r.data.results.map((x, i) => isObamaFace(seq[i], x.bbox));
    const firstOther = isObama.indexOf(false);
    const lastObama = isObama.lastIndexOf(true);
    assert.ok(firstOther > 0, 'first result is an Obama photo: ' + seq.join(', '));
    assert.ok(lastObama < firstOther, 'every Obama photo ranks above every other: ' + seq.join(', '));
    assert.ok(r.data.results[0].same_person);
    assert.match(r.data.results[0].crop_url, /^\/api\/v1\/blobs\/face-crops\//);
    const crop = await fetch(s.base + r.data.results[0].crop_url);
    assert.equal(crop.status, 200);
    assert.equal(crop.headers.get('content-type'), 'image/jpeg');
    const forged = await fetch(s.base + r.data.results[0].crop_url.replace(/sig=[0-9a-f]{4}/, 'sig=0000'));
    assert.equal(forged.status, 403);
  });

  it('searches by face id and by vector, with filters', async () => {
    const rec = records[shaOf['knn_examples/train/biden/biden.jpg']];
    const fid = rec.faces_indexed[0].face_id;
    const face = await L.api(s, 'GET', '/api/v1/faces/' + fid, { key: keyA });
    assert.equal(face.status, 200);
    L.checkOpenapi('GET', '/api/v1/faces/{id}', 200, face.data);
    const byId = await L.api(s, 'POST', '/api/v1/search', { key: keyA, json: { face_id: fid, top_k: 3 } });
    assert.equal(byId.status, 200);
    assert.ok(byId.data.results.every((x) => x.face_id !== fid), 'the query face itself is not a result');
    const bidenShas = new Set([shaOf['knn_examples/train/biden/biden2.jpg'], shaOf['knn_examples/test/obama_and_biden.jpg'],
      shaOf['two_people.jpg']]);
    assert.ok(bidenShas.has(byId.data.results[0].image_sha256), 'nearest to Biden is Biden');
    const filtered = await L.api(s, 'POST', '/api/v1/search', { key: keyA, json: { face_id: fid, filters: { image_sha256: shaOf['two_people.jpg'] } } });
    assert.ok(filtered.data.results.length > 0 && filtered.data.results.every((x) => x.image_sha256 === shaOf['two_people.jpg']),
      JSON.stringify(filtered.data));
    const vec = await L.api(s, 'POST', '/api/v1/search', { key: keyA, json: { vector: [1, 2, 3] } });
    assert.equal(vec.status, 400);
  });

  it('never returns another tenant\'s faces, even under concurrent load', async () => {
    const bShas = new Set();
    for (const f of [...betaFiles, path.join(L.FACES, 'two_people.jpg')])
      bShas.add(require('node:crypto').createHash('sha256').update(fs.readFileSync(f)).digest('hex'));
    const q = path.join(L.FACES, 'knn_examples/train/biden/biden.jpg');
    const body = { image_b64: L.b64(q), top_k: 100 };
    const calls = [];
    for (let i = 0; i < 12; i++) {
      calls.push(L.api(s, 'POST', '/api/v1/search', { key: i % 2 ? keyA : keyB, json: body }).then((r) => ({ r, tenant: i % 2 ? 'A' : 'B' })));
      if (i % 4 === 0) calls.push(L.api(s, 'POST', '/api/v1/ingest', { key: keyB, json: { image_b64: L.b64(path.join(L.FACES, 'knn_examples/test/kit_with_rose.jpg')) } }).then((r) => ({ r, tenant: 'ingest' })));
    }
    const done = await Promise.all(calls);
    for (const { r, tenant } of done) {
      if (tenant === 'ingest') { assert.equal(r.status, 202); continue; }
      assert.equal(r.status, 200);
      for (const x of r.data.results) {
        if (tenant === 'B') assert.ok(bShas.has(x.image_sha256) || x.image_sha256 === require('node:crypto').createHash('sha256').update(fs.readFileSync(path.join(L.FACES, 'knn_examples/test/kit_with_rose.jpg'))).digest('hex'), 'B sees only B');
        else assert.ok(Object.values(shaOf).includes(x.image_sha256), 'A sees only A');
      }
    }
    const aOnly = shaOf['knn_examples/test/obama1.jpg']; // an image only tenant A has
    const other = await L.api(s, 'GET', '/api/v1/faces/' + records[aOnly].faces_indexed[0].face_id, { key: keyB });
    assert.equal(other.status, 404, 'B cannot read A\'s face');
    const otherImg = await L.api(s, 'GET', '/api/v1/images/' + aOnly, { key: keyB });
    assert.equal(otherImg.status, 404, 'B cannot read A\'s image record');
    const otherDel = await L.api(s, 'DELETE', '/api/v1/images/' + aOnly, { key: keyB });
    assert.equal(otherDel.status, 404, 'B cannot erase A\'s image');
  });

  it('rejects bad input with the right status and keeps serving', async () => {
    const jpg = fs.readFileSync(path.join(L.FACES, 'obama_small.jpg'));
    const cases = [
      [{ image_b64: '' }, 400],
      [{ image_b64: Buffer.from('not an image at all, just text').toString('base64') }, 415],
      [{ image_b64: jpg.subarray(0, jpg.length >> 1).toString('base64') }, 400],
      [{ image_b64: 'a'.repeat(15) + '!' }, 400],
      [{}, 400],
      [{ url: 'http://127.0.0.1:' + s.port + '/healthz' }, 400],
      [{ url: 'file:///etc/passwd' }, 400],
      [{ bucket: 'raw-images', key: 'beta/x.jpg' }, 403],
    ];
    // a JPEG whose header claims 8000x7500 = 60 MP
    const big = Buffer.from(jpg);
    for (let i = 2; i < big.length - 9; i++) {
      if (big[i] === 0xff && (big[i + 1] === 0xc0 || big[i + 1] === 0xc2)) { big.writeUInt16BE(7500, i + 5); big.writeUInt16BE(8000, i + 7); break; }
    }
    cases.push([{ image_b64: big.toString('base64') }, 413]);
    for (const [json, want] of cases) {
      const r = await L.api(s, 'POST', '/api/v1/ingest', { key: keyA, json });
      assert.equal(r.status, want, JSON.stringify(json).slice(0, 80) + ' -> ' + JSON.stringify(r.data));
      L.checkOpenapi('POST', '/api/v1/ingest', want, r.data);
    }
    const url = await L.api(s, 'POST', '/api/v1/ingest', { key: keyA, json: { url: 'http://127.0.0.1:' + s.port + '/x.jpg' } });
    assert.equal(url.data.error.code, 'url_not_allowed');
    const bad = await L.api(s, 'POST', '/api/v1/search', { key: keyA, body: '{"top_k": 3,, }', headers: { 'Content-Type': 'application/json' } });
    assert.equal(bad.status, 400);
    assert.match(bad.data.error.message, /line 1 column/);
    const huge = await L.api(s, 'POST', '/api/v1/ingest', { key: keyA, body: Buffer.alloc(33 << 20, 65), headers: { 'Content-Type': 'application/json' } });
    assert.equal(huge.status, 413);
    const nf = await L.api(s, 'GET', '/api/v1/nope', { key: keyA });
    assert.equal(nf.status, 404);
    const multipart = new FormData();
    multipart.append('image', new Blob([Buffer.from('GIF89a garbage')]), 'x.gif');
    const mp = await fetch(s.base + '/api/v1/ingest', { method: 'POST', headers: { Authorization: 'Bearer ' + keyA }, body: multipart });
    // "GIF89a garbage": a GIF header whose screen claims 24864x29281 pixels
    assert.equal(mp.status, 413, 'multipart garbage rejected: ' + mp.status);
    assert.equal((await L.api(s, 'GET', '/healthz')).status, 200, 'still serving');
  });

  it('enrolls, verifies and identifies open-set', async () => {
    const c = await L.api(s, 'POST', '/api/v1/identities', { key: keyA, json: { name: 'Barack' } });
    assert.equal(c.status, 201);
    L.checkOpenapi('POST', '/api/v1/identities', 201, c.data);
    const id = c.data.identity_id;
    const e = await L.api(s, 'POST', '/api/v1/identities/' + id + '/enroll', { key: keyA, json: { image_b64: L.b64(path.join(L.FACES, 'knn_examples/train/obama/obama.jpg')) } });
    assert.equal(e.status, 200, JSON.stringify(e.data));
    const obamaFace = records[shaOf['knn_examples/train/obama/obama2.jpg']].faces_indexed[0].face_id;
    const e2 = await L.api(s, 'POST', '/api/v1/identities/' + id + '/enroll', { key: keyA, json: { face_ids: [obamaFace] } });
    assert.equal(e2.status, 200, JSON.stringify(e2.data));
    assert.equal(e2.data.n_samples, 2);
    const v = await L.api(s, 'POST', '/api/v1/identities/' + id + '/verify', { key: keyA, json: { image_b64: L.b64(path.join(L.FACES, 'knn_examples/test/obama1.jpg')) } });
    assert.equal(v.status, 200, JSON.stringify(v.data));
    L.checkOpenapi('POST', '/api/v1/identities/{id}/verify', 200, v.data);
    assert.equal(v.data.match, true);
    const nv = await L.api(s, 'POST', '/api/v1/identities/' + id + '/verify', { key: keyA, json: { image_b64: L.b64(path.join(L.FACES, 'knn_examples/train/biden/biden.jpg')) } });
    assert.equal(nv.data.match, false);
    const who = await L.api(s, 'POST', '/api/v1/identities/identify', { key: keyA, json: { image_b64: L.b64(path.join(L.FACES, 'knn_examples/train/biden/biden2.jpg')) } });
    assert.equal(who.status, 200);
    L.checkOpenapi('POST', '/api/v1/identities/identify', 200, who.data);
    assert.equal(who.data.result, 'unknown', 'a stranger is unknown, not the nearest identity');
    const me = await L.api(s, 'POST', '/api/v1/identities/identify', { key: keyA, json: { image_b64: L.b64(path.join(L.FACES, 'test_images/obama3.jpg')) } });
    assert.equal(me.data.result, 'match');
    assert.equal(me.data.identity.name, 'Barack');
    const list = await L.api(s, 'GET', '/api/v1/identities', { key: keyA });
    assert.equal(list.data.identities.length, 1);
    const listB = await L.api(s, 'GET', '/api/v1/identities', { key: keyB });
    assert.equal(listB.data.identities.length, 0, 'B does not see A\'s identities');
    const vB = await L.api(s, 'POST', '/api/v1/identities/' + id + '/verify', { key: keyB, json: { face_id: obamaFace } });
    assert.equal(vB.status, 404);
  });

  it('erases an image completely', async () => {
    const sha = shaOf['knn_examples/train/obama/obama2.jpg'];
    const rec = records[sha];
    const fid = rec.faces_indexed[0].face_id;
    const face = await L.api(s, 'GET', '/api/v1/faces/' + fid, { key: keyA });
    const del = await L.api(s, 'DELETE', '/api/v1/images/' + sha, { key: keyA });
    assert.equal(del.status, 200);
    L.checkOpenapi('DELETE', '/api/v1/images/{sha256}', 200, del.data);
    assert.equal(del.data.faces_deleted, rec.faces_indexed.length);
    assert.equal((await L.api(s, 'GET', '/api/v1/faces/' + fid, { key: keyA })).status, 404);
    assert.equal((await L.api(s, 'GET', '/api/v1/images/' + sha, { key: keyA })).status, 404);
    assert.equal((await fetch(s.base + face.data.crop_url)).status, 404, 'crop file gone');
    const q = await L.api(s, 'POST', '/api/v1/search', { key: keyA, json: { image_b64: L.b64(path.join(L.FACES, 'knn_examples/test/obama1.jpg')), top_k: 100 } });
    assert.ok(q.data.results.every((x) => x.image_sha256 !== sha), 'erased image never comes back');
    const raw = path.join(dir, 'blobs', 'raw-images', 'alpha');
    assert.ok(fs.readdirSync(raw).every((f) => !f.startsWith(sha)), 'raw image file gone');
    const ident = await L.api(s, 'GET', '/api/v1/identities', { key: keyA });
    assert.equal(ident.data.identities[0].n_samples, 1, 'the identity sample taken from the erased image is gone');
    const again = await L.api(s, 'DELETE', '/api/v1/images/' + sha, { key: keyA });
    assert.equal(again.status, 404);
    assert.equal(del.data.suppressed, true);
    // it stays erased: the same bytes are refused when they come again, and nothing is kept
    const bytes = L.b64(path.join(L.FACES, 'knn_examples/train/obama/obama2.jpg'));
    const back = await L.api(s, 'POST', '/api/v1/ingest', { key: keyA, json: { image_b64: bytes } });
    assert.equal(back.status, 409, JSON.stringify(back.data));
    assert.equal(back.data.error.code, 'erased');
    assert.ok(fs.readdirSync(raw).every((f) => !f.startsWith(sha)), 'the refused copy is not kept');
    const batch = await L.api(s, 'POST', '/api/v1/ingest/batch', { key: keyA, json: { items: [{ image_b64: bytes }] } });
    assert.equal(batch.data.rejected[0].status, 409);
    // another tenant is not affected; the owner can lift the marker
    const otherT = await L.api(s, 'POST', '/api/v1/ingest', { key: keyB, json: { image_b64: bytes } });
    assert.equal(otherT.status, 202);
    assert.equal((await L.api(s, 'DELETE', '/api/v1/images/' + sha + '?suppress=maybe', { key: keyA })).status, 400);
    const lift = await L.api(s, 'DELETE', '/api/v1/images/' + sha + '?suppress=false', { key: keyA });
    assert.equal(lift.status, 200);
    assert.equal(lift.data.suppressed, false);
    L.checkOpenapi('DELETE', '/api/v1/images/{sha256}', 200, lift.data);
    const readd = await L.api(s, 'POST', '/api/v1/ingest', { key: keyA, json: { image_b64: bytes } });
    assert.equal(readd.status, 202, JSON.stringify(readd.data));
    await L.waitDone(s, keyA, [sha]);
  });

  it('rotates a tenant\'s key while the server runs: the old key stops at once, data stays', async () => {
    const { execFileSync } = require('node:child_process');
    const before = await L.api(s, 'GET', '/api/v1/images/' + shaOf['obama_small.jpg'], { key: keyA });
    assert.equal(before.status, 200);
    const out = execFileSync(L.BIN, ['tenant', 'rotate-key', 'alpha', '--data', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const fresh = JSON.parse(out).api_key;
    assert.match(fresh, /^vsk_[0-9a-f]{48}$/);
    assert.equal((await L.api(s, 'GET', '/api/v1/images/' + shaOf['obama_small.jpg'], { key: keyA })).status, 401, 'old key refused');
    const after = await L.api(s, 'GET', '/api/v1/images/' + shaOf['obama_small.jpg'], { key: fresh });
    assert.equal(after.status, 200, 'the new key sees the same data');
    assert.equal((await L.api(s, 'GET', '/api/v1/crawl', { key: keyB })).status, 200, 'other tenants keep their keys');
    const list = execFileSync(L.BIN, ['tenant', 'list', '--data', dir], { encoding: 'utf8' }).trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(list.map((t) => [t.tenant, t.keys]), [['alpha', 1], ['beta', 1]]);
    let failed = null;
    try { execFileSync(L.BIN, ['tenant', 'rotate-key', 'nobody', '--data', dir], { stdio: ['ignore', 'pipe', 'pipe'] }); } catch (e) { failed = e; }
    assert.ok(failed && failed.status === 1 && /no tenant 'nobody'/.test(String(failed.stderr)));
    keyA = fresh; // for any later test
  });
});
