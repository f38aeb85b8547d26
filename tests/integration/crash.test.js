'use strict';
// Reliability: SIGKILL `visage serve` in the middle of processing a batch,
// restart it on the same data dir, and check every image ends up indexed
// exactly once: every record done, every face id of every record present,
// no point twice, nothing left in the queue.
const { describe, it, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const L = require('./lib');

async function metric(s, name) {
  const m = await L.api(s, 'GET', '/metrics');
  const line = String(m.data).split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{'));
  return line ? Number(line.split(' ').pop()) : NaN;
}

describe('crash recovery', () => {
  const dir = L.tmpDir('crash');
  let s;
  after(async () => { await L.stopServer(s, 'SIGKILL'); fs.rmSync(dir, { recursive: true, force: true }); });

  it('loses nothing and duplicates nothing across a SIGKILL', async () => {
    // short visibility timeout so leased messages come back quickly after the kill
    const env = { VISAGE_VISIBILITY_MS: '3000', VISAGE_WORKERS: '2' };
    s = await L.startServer(dir, env);
    const photos = L.walk(L.FACES);
    const items = photos.map((f) => ({ image_b64: L.b64(f), external_image_id: f }));
    const r = await L.api(s, 'POST', '/api/v1/ingest/batch', { json: { items } });
    assert.equal(r.status, 202);
    const shas = r.data.accepted.map((a) => a.image_sha256);
    // wait until a few are done but not all, then kill -9
    const deadline = Date.now() + 60000;
    let processed = 0;
    while (Date.now() < deadline) {
      processed = await metric(s, 'visage_images_total{result="processed"}');
      if (processed >= 3) break;
      await new Promise((res) => setTimeout(res, 20));
    }
    assert.ok(processed >= 3 && processed < shas.length, 'killed mid-way (processed ' + processed + ' of ' + shas.length + ')');
    s.proc.kill('SIGKILL');
    await new Promise((res) => s.proc.once('exit', res));
    s = await L.startServer(dir, env);
    const records = await L.waitDone(s, undefined, shas, 240000);
    const faceIds = new Set();
    let total = 0;
    for (const sha of shas) {
      const rec = records[sha];
      assert.equal(rec.status, 'done', sha);
      for (const f of rec.faces_indexed) {
        faceIds.add(f.face_id);
        total++;
        const g = await L.api(s, 'GET', '/api/v1/faces/' + f.face_id);
        assert.equal(g.status, 200, 'face ' + f.face_id + ' exists');
        assert.equal(g.data.image_sha256, sha);
      }
    }
    assert.equal(faceIds.size, total, 'face ids unique');
    // every point of the tenant, by a search that returns everything
    const all = await L.api(s, 'POST', '/api/v1/search', { json: { face_id: [...faceIds][0], top_k: 1000, threshold: -1 } });
    assert.equal(all.status, 200);
    const seen = new Set(all.data.results.map((x) => x.face_id));
    assert.equal(all.data.results.length, seen.size, 'no point returned twice');
    assert.equal(seen.size + 1, total, 'exactly the recorded faces are indexed (the query face excluded)');
    const pairs = new Set(all.data.results.map((x) => x.image_sha256 + '#' + x.face_index));
    assert.equal(pairs.size, all.data.results.length, 'one point per (image, face index)');
    assert.equal(await metric(s, 'visage_queue_ready'), 0);
    assert.equal(await metric(s, 'visage_queue_in_flight'), 0);
    assert.equal(await metric(s, 'visage_queue_dead'), 0);
  });
});
