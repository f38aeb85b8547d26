'use strict';
// DELETE /api/v1/faces/{id} is recorded like every erasure (issue 10,
// erasure follow-ups): the log entry "face" is begun before anything goes
// and completed after, and one a crash left started (written into
// catalog.db of a stopped server, as a SIGKILL right after the begin would
// leave it) is finished by the next start-up: the face is gone from the
// index, its crop from the store, its image's record lists it as deleted.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const L = require('./lib');

const TWO = path.join(L.FACES, 'two_people.jpg'); // Obama and Biden

// 1 when the sqlite3 shell is there to write the crashed state.
function haveSqlite() {
  try { execFileSync('sqlite3', ['-version'], { stdio: 'ignore' }); return true; } catch (e) { return false; }
}

describe('face deletion record', () => {
  let s, dir, key, sha, faces;

  before(async () => {
    dir = L.tmpDir('face-erase');
    key = L.createTenant(dir, 'acme');
    s = await L.startServer(dir);
    const r = await L.api(s, 'POST', '/api/v1/ingest', { key, json: { image_b64: L.b64(TWO) } });
    assert.equal(r.status, 202, JSON.stringify(r.data));
    sha = r.data.image_sha256;
    await L.waitDone(s, key, [sha]);
    faces = (await L.api(s, 'GET', '/api/v1/images/' + sha, { key })).data.faces_indexed;
    assert.equal(faces.length, 2);
  });
  after(async () => { await L.stopServer(s); fs.rmSync(dir, { recursive: true, force: true }); });

  it('logs a deleted face as a done entry with its request id, image and place', async () => {
    const f = faces[0];
    const r = await L.api(s, 'DELETE', '/api/v1/faces/' + f.face_id, { key });
    assert.equal(r.status, 200, JSON.stringify(r.data));
    assert.equal(r.data.deleted, true);
    const log = await L.api(s, 'GET', '/api/v1/erase/log', { key });
    assert.equal(log.status, 200);
    L.checkOpenapi('GET', '/api/v1/erase/log', 200, log.data);
    const e = log.data.entries[0];
    assert.equal(e.what, 'face');
    assert.equal(e.state, 'done');
    assert.equal(e.face_id, f.face_id);
    assert.equal(e.image_sha256, sha);
    assert.equal(e.face_index, f.face_index);
    assert.equal(e.faces_deleted, 1);
    assert.match(e.request_id, /^[0-9a-f-]{36}$/);
  });

  it('finishes at start-up a face deletion a crash left started', { skip: !haveSqlite() && 'no sqlite3 shell' }, async () => {
    const f = faces[1];
    await L.stopServer(s);
    const detail = JSON.stringify({ face_id: f.face_id, image_sha256: sha, face_index: f.face_index, state: 'started' });
    execFileSync('sqlite3', [path.join(dir, 'catalog.db'),
      `INSERT INTO erasures(tenant_id, at, what, detail_json, state) VALUES('acme', 1, 'face', '${detail}', 1)`]);
    s = await L.startServer(dir);
    const g = await L.api(s, 'GET', '/api/v1/faces/' + f.face_id, { key });
    assert.equal(g.status, 404, JSON.stringify(g.data));
    const crops = L.walk(path.join(dir, 'blobs', 'face-crops')).filter((p) => p.includes(`${sha}_face_${f.face_index}`));
    assert.deepEqual(crops, []);
    const img = (await L.api(s, 'GET', '/api/v1/images/' + sha, { key })).data;
    assert.ok(!img.faces_indexed.some((x) => x.face_id === f.face_id), JSON.stringify(img));
    assert.ok(img.faces_deleted.some((x) => x.face_id === f.face_id), JSON.stringify(img));
    const log = await L.api(s, 'GET', '/api/v1/erase/log', { key });
    L.checkOpenapi('GET', '/api/v1/erase/log', 200, log.data);
    const e = log.data.entries[0];
    assert.equal(e.what, 'face');
    assert.equal(e.face_id, f.face_id);
    assert.equal(e.state, 'done');
    assert.equal(e.resumed, true);
  });
});
