'use strict';
// Erasure of a person over real HTTP on loopback: POST /api/v1/erase (dry run,
// the real thing, bad requests), blocks that erase the person's new photos on
// arrival, and tenant isolation throughout. Ground truth: the README of the
// shared photos says which show Obama.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const L = require('./lib');

const photos = L.walk(L.FACES);
const rel = (f) => path.relative(L.FACES, f);
const { OBAMA } = L;
// obama_small.jpg as the query: its Obama photos score 0.62 and up, everybody
// else 0.53 and below, either side of the 0.55 default threshold
const QUERY = path.join(L.FACES, 'obama_small.jpg');
// New bytes of the same picture: JPEG decoders stop at the end-of-image marker
const variant = (file, tag) => Buffer.concat([fs.readFileSync(file), Buffer.from('\n' + tag)]).toString('base64');

async function waitErased(s, key, sha) {
  await L.waitFor(async () => {
    const r = await L.api(s, 'GET', '/api/v1/images/' + sha, { key });
    return r.status === 404 && /erased/.test(r.data.error.message);
  }, 120000, sha + ' erased on arrival');
}

describe('erasure of a person', () => {
  let s, dir, keyA, keyB;
  const shaA = {}; // rel path -> sha256, tenant A
  const shaB = {};

  before(async () => {
    dir = L.tmpDir('erase');
    keyA = L.createTenant(dir, 'alpha');
    keyB = L.createTenant(dir, 'beta');
    s = await L.startServer(dir);
    const ingest = async (key, files, out) => {
      const r = await L.api(s, 'POST', '/api/v1/ingest/batch', { key, json: { items: files.map((f) => ({ image_b64: L.b64(f), source_url: 'file://' + rel(f) })) } });
      assert.equal(r.status, 202, JSON.stringify(r.data));
      r.data.accepted.forEach((a) => { out[rel(files[a.index])] = a.image_sha256; });
      await L.waitDone(s, key, Object.values(out));
    };
    await ingest(keyA, photos, shaA);
    await ingest(keyB, photos.filter((f) => OBAMA.has(rel(f)) || /biden/.test(f)), shaB);
  });
  after(async () => { await L.stopServer(s); fs.rmSync(dir, { recursive: true, force: true }); });

  it('lists every image of the person and changes nothing on a dry run', async () => {
    const r = await L.api(s, 'POST', '/api/v1/erase', { key: keyA, json: { image_b64: L.b64(QUERY), dry_run: true } });
    assert.equal(r.status, 200, JSON.stringify(r.data));
    L.checkOpenapi('POST', '/api/v1/erase', 200, r.data);
    const want = [...OBAMA].map((f) => shaA[f]).sort();
    assert.deepEqual(r.data.images.map((i) => i.image_sha256).sort(), want, 'exactly the photos that show Obama');
    assert.equal(r.data.images[0].image_sha256, shaA['obama_small.jpg'], 'the query photo itself first');
    for (let i = 1; i < r.data.images.length; i++) assert.ok(r.data.images[i - 1].score >= r.data.images[i].score, 'best first');
    assert.ok(r.data.images.every((i) => i.score >= r.data.threshold && i.source_url.startsWith('file://')));
    assert.equal(r.data.dry_run, true);
    assert.equal(r.data.complete, true);
    assert.equal(r.data.images_erased, 0);
    assert.equal(r.data.block_id, undefined, 'a dry run adds no block');
    for (const sha of want) assert.equal((await L.api(s, 'GET', '/api/v1/images/' + sha, { key: keyA })).status, 200);
    // max_images caps the list and says it is not complete
    const two = await L.api(s, 'POST', '/api/v1/erase', { key: keyA, json: { image_b64: L.b64(QUERY), dry_run: true, max_images: 2 } });
    assert.equal(two.data.images.length, 2);
    assert.equal(two.data.complete, false);
    // by an indexed face of the person, and by its vector: the same list
    const rec = (await L.api(s, 'GET', '/api/v1/images/' + shaA['obama_small.jpg'], { key: keyA })).data;
    const fid = rec.faces_indexed[0].face_id;
    const byFace = await L.api(s, 'POST', '/api/v1/erase', { key: keyA, json: { face_id: fid, dry_run: true } });
    assert.deepEqual(byFace.data.images.map((i) => i.image_sha256).sort(), want);
    assert.ok(byFace.data.images.find((i) => i.face_ids.includes(fid)));
  });

  it('refuses what is unclear or wrong, naming it, and erases nothing', async () => {
    const bad = async (json, status, re) => {
      const r = await L.api(s, 'POST', '/api/v1/erase', { key: keyA, json });
      assert.equal(r.status, status, JSON.stringify(json).slice(0, 80) + ' -> ' + JSON.stringify(r.data));
      assert.match(r.data.error.message, re);
    };
    const group = L.b64(path.join(L.FACES, 'two_people.jpg'));
    await bad({ image_b64: group }, 400, /2 faces.*face_index/);
    await bad({ image_b64: group, face_index: 2 }, 400, /face_index must be .* 0 to 1/);
    await bad({ image_b64: L.b64(QUERY), face_index: 'first' }, 400, /^face_index: expected an integer, got a string/);
    await bad({ image_b64: L.b64(QUERY), threshold: 0.1 }, 400, /threshold/);
    await bad({ image_b64: L.b64(QUERY), dry_run: 'yes' }, 400, /dry_run/);
    await bad({ image_b64: L.b64(QUERY), block: true, suppress: false }, 400, /block needs suppress/);
    await bad({ image_b64: L.b64(QUERY), max_images: 0 }, 400, /max_images/);
    await bad({ vector: [1, 2, 3] }, 400, /vector must be an array of 128 /);
    await bad({ dry_run: true }, 400, /image_b64, face_id or vector/);
    await bad({ face_id: '00000000-0000-0000-0000-000000000000' }, 404, /not found/);
    const notJson = await L.api(s, 'POST', '/api/v1/erase', { key: keyA, body: 'x', headers: { 'Content-Type': 'text/plain' } });
    assert.equal(notJson.status, 415, JSON.stringify(notJson.data)); // not JSON: unsupported media type
    // another tenant's face is not a face of this tenant
    const fidA = (await L.api(s, 'GET', '/api/v1/images/' + shaA['obama_small.jpg'], { key: keyA })).data.faces_indexed[0].face_id;
    const r = await L.api(s, 'POST', '/api/v1/erase', { key: keyB, json: { face_id: fidA } });
    assert.equal(r.status, 404);
    // the group photo works with face_index: Biden (right, x > 500) lists Biden's photos
    const faces = (await L.api(s, 'POST', '/api/v1/search', { key: keyA, json: { image_b64: group, faces: 'all', top_k: 1 } })).data.query_faces;
    const biden = faces.findIndex((f) => f.bbox[0] > 500);
    const b = await L.api(s, 'POST', '/api/v1/erase', { key: keyA, json: { image_b64: group, face_index: biden, dry_run: true } });
    assert.equal(b.status, 200);
    const listed = b.data.images.map((i) => i.source_url);
    assert.ok(listed.includes('file://knn_examples/train/biden/biden.jpg'), listed.join());
    assert.ok(listed.every((u) => /biden|two_people/.test(u)), listed.join());
    for (const sha of Object.values(shaA)) assert.equal((await L.api(s, 'GET', '/api/v1/images/' + sha, { key: keyA })).status, 200);
  });

  it('erases every image of the person, keeps the rest and other tenants, and blocks the person', async () => {
    const r = await L.api(s, 'POST', '/api/v1/erase', { key: keyA, json: { image_b64: L.b64(QUERY), block: true, note: 'ticket 42' } });
    assert.equal(r.status, 200, JSON.stringify(r.data));
    L.checkOpenapi('POST', '/api/v1/erase', 200, r.data);
    assert.equal(r.data.images_erased, OBAMA.size);
    assert.equal(r.data.faces_deleted, OBAMA.size + 2, 'the other face of each group photo goes with it');
    assert.equal(r.data.complete, true);
    assert.match(r.data.block_id, /^[0-9a-f-]{36}$/);
    for (const f of OBAMA) {
      const g = await L.api(s, 'GET', '/api/v1/images/' + shaA[f], { key: keyA });
      assert.equal(g.status, 404, f);
      assert.match(g.data.error.message, /erased/);
    }
    const raw = fs.readdirSync(path.join(dir, 'blobs', 'raw-images', 'alpha'));
    assert.ok([...OBAMA].every((f) => raw.every((x) => !x.startsWith(shaA[f]))), 'raw files gone');
    assert.equal(raw.length, photos.length - OBAMA.size);
    for (const f of ['knn_examples/train/biden/biden.jpg', 'knn_examples/train/rose_leslie/img1.jpg'])
      assert.equal((await L.api(s, 'GET', '/api/v1/images/' + shaA[f], { key: keyA })).status, 200, f + ' stays');
    const q = await L.api(s, 'POST', '/api/v1/search', { key: keyA, json: { image_b64: L.b64(path.join(L.FACES, 'knn_examples/test/obama1.jpg')), top_k: 50 } });
    assert.ok(q.data.results.every((x) => !x.same_person), 'no face of the person is left: ' + JSON.stringify(q.data.results[0]));
    const qB = await L.api(s, 'POST', '/api/v1/search', { key: keyB, json: { image_b64: L.b64(QUERY), top_k: 50 } });
    assert.equal(qB.data.results.filter((x) => x.same_person).length, OBAMA.size, 'tenant B keeps its photos of the person');
    const again = await L.api(s, 'POST', '/api/v1/erase', { key: keyA, json: { image_b64: L.b64(QUERY) } });
    assert.equal(again.data.images.length, 0, 'nothing left the second time');
    const bl = await L.api(s, 'GET', '/api/v1/erase/blocks', { key: keyA });
    assert.equal(bl.status, 200);
    L.checkOpenapi('GET', '/api/v1/erase/blocks', 200, bl.data);
    assert.deepEqual(bl.data.blocks.map((b) => [b.block_id, b.note]), [[r.data.block_id, 'ticket 42']]);
    assert.equal((await L.api(s, 'GET', '/api/v1/erase/blocks', { key: keyB })).data.blocks.length, 0);
    assert.equal((await L.api(s, 'DELETE', '/api/v1/erase/blocks/' + r.data.block_id, { key: keyB })).status, 404, 'B cannot lift A\'s block');
  });

  it('erases the blocked person\'s new photos on arrival until the block is lifted', async () => {
    const post = async (key, b64) => {
      const r = await L.api(s, 'POST', '/api/v1/ingest', { key, json: { image_b64: b64 } });
      assert.equal(r.status, 202, JSON.stringify(r.data));
      return r.data.image_sha256;
    };
    const obamaNew = await post(keyA, variant(path.join(L.FACES, 'obama-1080p.jpg'), 'v1'));
    const bidenNew = await post(keyA, variant(path.join(L.FACES, 'knn_examples/train/biden/biden2.jpg'), 'v1'));
    const obamaB = await post(keyB, variant(path.join(L.FACES, 'obama-1080p.jpg'), 'v1'));
    await waitErased(s, keyA, obamaNew);
    await L.waitDone(s, keyA, [bidenNew]);
    await L.waitDone(s, keyB, [obamaB]);
    const raw = fs.readdirSync(path.join(dir, 'blobs', 'raw-images', 'alpha'));
    assert.ok(raw.every((x) => !x.startsWith(obamaNew)), 'nothing of the blocked photo is kept');
    const crops = fs.readdirSync(path.join(dir, 'blobs', 'face-crops', 'alpha'));
    assert.ok(crops.every((x) => !x.startsWith(obamaNew)), 'nor its crops');
    const m = String((await L.api(s, 'GET', '/metrics')).data);
    assert.match(m, /visage_images_total\{result="blocked"\} 1\n/);
    const blocks = (await L.api(s, 'GET', '/api/v1/erase/blocks', { key: keyA })).data.blocks;
    const lift = await L.api(s, 'DELETE', '/api/v1/erase/blocks/' + blocks[0].block_id, { key: keyA });
    assert.equal(lift.status, 200);
    L.checkOpenapi('DELETE', '/api/v1/erase/blocks/{id}', 200, lift.data);
    assert.equal((await L.api(s, 'DELETE', '/api/v1/erase/blocks/' + blocks[0].block_id, { key: keyA })).status, 404);
    assert.equal((await L.api(s, 'GET', '/api/v1/erase/blocks', { key: keyA })).data.blocks.length, 0);
    const back = await post(keyA, variant(path.join(L.FACES, 'obama-1080p.jpg'), 'v2'));
    const rec = await L.waitDone(s, keyA, [back]);
    assert.equal(rec[back].faces_indexed.length, 1, 'indexed again once the block is lifted');
    const refused = await L.api(s, 'POST', '/api/v1/ingest', { key: keyA, json: { image_b64: variant(path.join(L.FACES, 'obama-1080p.jpg'), 'v1') } });
    assert.equal(refused.status, 409, 'the photo erased on arrival stays erased');
  });

  it('visage erase --server asks a running server, with the caller\'s key', async () => {
    const { execFile } = require('node:child_process');
    const run = (args) => new Promise((resolve) => execFile(L.BIN, ['erase', ...args], { timeout: 60000 },
      (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr })));
    const dry = await run([QUERY, '--server', s.base, '--key', keyB, '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    const j = JSON.parse(dry.stdout);
    assert.equal(j.dry_run, true);
    const listed = j.images.map((i) => i.image_sha256);
    assert.ok([...OBAMA].every((f) => listed.includes(shaB[f])), 'tenant B\'s photos of the person');
    assert.equal(listed.length, OBAMA.size + 1, 'and the new copy B added; nothing of tenant A');
    const group = await run([path.join(L.FACES, 'two_people.jpg'), '--server', s.base, '--key', keyB, '--dry-run']);
    assert.equal(group.code, 1);
    assert.match(group.stderr, /server answered 400: .*face_index/);
    const badKey = await run([QUERY, '--server', s.base, '--key', 'vsk_' + '0'.repeat(48), '--dry-run']);
    assert.equal(badKey.code, 1);
    assert.match(badKey.stderr, /401/);
  });

  it('keeps a record of every erasure, per tenant, newest first', async () => {
    // one face and one image of tenant B, by hand
    const rec = (await L.api(s, 'GET', '/api/v1/images/' + shaB['knn_examples/train/biden/biden.jpg'], { key: keyB })).data;
    const fid = rec.faces_indexed[0].face_id;
    assert.equal((await L.api(s, 'DELETE', '/api/v1/faces/' + fid, { key: keyB })).status, 200);
    assert.equal((await L.api(s, 'DELETE', '/api/v1/images/' + shaB['obama-240p.jpg'], { key: keyB })).status, 200);
    const logB = await L.api(s, 'GET', '/api/v1/erase/log', { key: keyB });
    assert.equal(logB.status, 200);
    L.checkOpenapi('GET', '/api/v1/erase/log', 200, logB.data);
    assert.deepEqual(logB.data.entries.map((e) => e.what), ['image', 'face']);
    assert.equal(logB.data.entries[0].image_sha256, shaB['obama-240p.jpg']);
    assert.equal(logB.data.entries[0].faces_deleted, 1);
    assert.equal(logB.data.entries[1].face_id, fid);
    const logA = (await L.api(s, 'GET', '/api/v1/erase/log', { key: keyA })).data;
    L.checkOpenapi('GET', '/api/v1/erase/log', 200, logA);
    assert.deepEqual(logA.entries.map((e) => e.what), ['block_lifted', 'blocked_on_arrival', 'person', 'person'],
      'A sees its own entries only: the erasure with a block, the second run that found nothing, the photo erased on arrival, the lift');
    const [lifted, arrival, second, first] = logA.entries;
    assert.equal(first.images_erased, OBAMA.size);
    assert.deepEqual([...first.images].sort(), [...OBAMA].map((f) => shaA[f]).sort());
    assert.equal(first.note, 'ticket 42');
    assert.equal(second.images_erased, 0);
    assert.equal(arrival.block_id, first.block_id);
    assert.equal(lifted.block_id, first.block_id);
    assert.ok(logA.entries.every((e) => e.at > 0 && !('vector' in e)));
    for (let i = 1; i < logA.entries.length; i++) assert.ok(logA.entries[i - 1].id > logA.entries[i].id);
    // pages
    const p1 = (await L.api(s, 'GET', '/api/v1/erase/log?limit=3', { key: keyA })).data;
    assert.equal(p1.entries.length, 3);
    const p2 = (await L.api(s, 'GET', '/api/v1/erase/log?limit=3&before=' + p1.next_before, { key: keyA })).data;
    assert.deepEqual(p2.entries.map((e) => e.id), [first.id]);
    assert.equal(p2.next_before, undefined);
    assert.equal((await L.api(s, 'GET', '/api/v1/erase/log?limit=0', { key: keyA })).status, 400);
    assert.equal((await L.api(s, 'GET', '/api/v1/erase/log?before=x', { key: keyA })).status, 400);
  });
});
