'use strict';
// The approximate index in the server (issue 11): with the size bound set
// low (VISAGE_ANN_MIN_POINTS=3) every tenant's faces are searched through
// its HNSW graph. Results keep their shape (OpenAPI) and agree with
// "exact": true; a tenant's graph never answers with another tenant's
// faces although both hold the same photos; a deleted face is gone from
// graph answers at once; the graphs come back after a restart from their
// snapshot (no rebuild); /metrics shows what the graphs hold and do.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const L = require('./lib');

const PHOTOS = ['two_people.jpg', 'obama_small.jpg', 'knn_examples/train/obama/obama.jpg',
  'knn_examples/train/obama/obama2.jpg', 'knn_examples/train/biden/biden.jpg', 'knn_examples/train/biden/biden2.jpg',
  'knn_examples/train/kit_harington/john1.jpeg', 'knn_examples/train/rose_leslie/img1.jpg'];
const ENV = { VISAGE_PEOPLE: 'off', // the people runner's own searches would count in the graph metrics
  VISAGE_ANN_MIN_POINTS: '3' };

function metric(text, name) {
  const m = text.match(new RegExp('^' + name.replace(/[{}"]/g, '\\$&') + ' (\\d+)$', 'm'));
  return m ? Number(m[1]) : NaN;
}

describe('approximate index in the server', () => {
  let s, dir, keyA, keyB, facesA = [];

  async function ingestAll(key) {
    const shas = [];
    for (const p of PHOTOS) {
      const r = await L.api(s, 'POST', '/api/v1/ingest', { key, json: { image_b64: L.b64(path.join(L.FACES, p)) } });
      assert.equal(r.status, 202, JSON.stringify(r.data));
      shas.push(r.data.image_sha256);
    }
    await L.waitDone(s, key, shas);
    const faces = [];
    for (const sha of shas) faces.push(...(await L.api(s, 'GET', '/api/v1/images/' + sha, { key })).data.faces_indexed);
    return faces;
  }

  async function search(key, json) {
    const r = await L.api(s, 'POST', '/api/v1/search', { key, json });
    assert.equal(r.status, 200, JSON.stringify(r.data));
    L.checkOpenapi('POST', '/api/v1/search', 200, r.data);
    return r.data.results;
  }

  before(async () => {
    dir = L.tmpDir('ann');
    keyA = L.createTenant(dir, 'acme');
    keyB = L.createTenant(dir, 'beta');
    s = await L.startServer(dir, ENV);
    facesA = await ingestAll(keyA);
    await ingestAll(keyB);
    assert.ok(facesA.length >= 8, 'faces found: ' + facesA.length);
  });
  after(async () => { await L.stopServer(s); fs.rmSync(dir, { recursive: true, force: true }); });

  it('answers through the graphs, in the same shape and order as the exact scan', async () => {
    const before = await L.api(s, 'GET', '/metrics');
    const graphs = metric(before.data, 'visage_index_graphs');
    assert.equal(graphs, 2, before.data);   // acme and beta, each past the bound of 3
    assert.equal(metric(before.data, 'visage_index_graph_points'), 2 * facesA.length);
    const n0 = metric(before.data, 'visage_index_searches_total{path="graph"}');
    for (const f of facesA) {
      const approx = await search(keyA, { face_id: f.face_id, top_k: 5 });
      const exact = await search(keyA, { face_id: f.face_id, top_k: 5, exact: true });
      assert.deepEqual(approx.map((x) => x.face_id), exact.map((x) => x.face_id));
      approx.forEach((x, i) => assert.ok(Math.abs(x.score - exact[i].score) < 1e-5));
    }
    const after = await L.api(s, 'GET', '/metrics');
    assert.equal(metric(after.data, 'visage_index_searches_total{path="graph"}') - n0, facesA.length);
  });

  it('never answers with another tenant\'s faces', async () => {
    const ids = new Set(facesA.map((f) => f.face_id));
    const q = await search(keyB, { image_b64: L.b64(path.join(L.FACES, 'obama_small.jpg')), top_k: 50 });
    assert.ok(q.length > 0);
    for (const x of q) assert.ok(!ids.has(x.face_id), 'acme face in beta results: ' + x.face_id);
  });

  it('refuses an "exact" that is not a boolean', async () => {
    const r = await L.api(s, 'POST', '/api/v1/search', { key: keyA, json: { face_id: facesA[0].face_id, exact: 'yes' } });
    assert.equal(r.status, 400, JSON.stringify(r.data));
    assert.match(JSON.stringify(r.data), /exact/);
  });

  it('drops a deleted face from graph answers at once', async () => {
    const q = await search(keyA, { image_b64: L.b64(path.join(L.FACES, 'knn_examples/train/obama/obama.jpg')), top_k: 3 });
    const top = q[0].face_id;
    const d = await L.api(s, 'DELETE', '/api/v1/faces/' + top, { key: keyA });
    assert.equal(d.status, 200, JSON.stringify(d.data));
    const again = await search(keyA, { image_b64: L.b64(path.join(L.FACES, 'knn_examples/train/obama/obama.jpg')), top_k: 50 });
    assert.ok(again.every((x) => x.face_id !== top));
    facesA = facesA.filter((f) => f.face_id !== top);
  });

  it('reloads the graphs from their snapshot after a restart, with the same answers', async () => {
    const q = { image_b64: L.b64(path.join(L.FACES, 'two_people.jpg')), top_k: 5, faces: 'all' };
    const r1 = await L.api(s, 'POST', '/api/v1/search', { key: keyA, json: q });
    await L.stopServer(s);
    assert.ok(fs.existsSync(path.join(dir, 'index')), 'index dir');
    const snaps = fs.readdirSync(path.join(dir, 'index'), { recursive: true }).filter((p) => p.endsWith('graphs.snap'));
    assert.equal(snaps.length, 1, JSON.stringify(snaps));
    s = await L.startServer(dir, ENV);
    const m = await L.api(s, 'GET', '/metrics');
    assert.equal(metric(m.data, 'visage_index_graphs'), 2);
    assert.equal(metric(m.data, 'visage_index_graph_builds_total'), 0, 'graphs were rebuilt instead of loaded');
    const r2 = await L.api(s, 'POST', '/api/v1/search', { key: keyA, json: q });
    assert.deepEqual(r2.data.query_faces.map((f) => f.results.map((x) => x.face_id)),
      r1.data.query_faces.map((f) => f.results.map((x) => x.face_id)));
  });
});
