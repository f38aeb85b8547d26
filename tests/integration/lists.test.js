'use strict';
// The web app's browsing contract over real HTTP: GET /api/v1/images and
// /api/v1/faces page by page (cursor, site, since/until, status), an image
// with its raw file and face crops, identities with their samples' pictures
// (and a sample deleted, and erased with its image), search grouped by image
// (near duplicates folded) and the dashboard's /api/v1/stats. Every response
// is checked against docs/openapi.yaml.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const L = require('./lib');

const F = (p) => path.join(L.FACES, p);
const sha = (buf) => crypto.createHash('sha256').update(buf).digest('hex');
// two batches, the second ingested after the first is done (so its images are
// newer, and obama-240p is linked as a near duplicate of obama-1080p)
const FIRST = [['obama-1080p.jpg', 'news'], ['two_people.jpg', 'news'], ['knn_examples/train/biden/biden.jpg', 'blog'],
  ['knn_examples/train/obama/obama.jpg', null]];
const SECOND = [['obama-240p.jpg', 'news'], ['knn_examples/test/kit_with_rose.jpg', 'blog']];

async function download(url) {
  const r = await fetch(url.startsWith('http') ? url : s.base + url);
  return { status: r.status, body: Buffer.from(await r.arrayBuffer()) };
}
let s;

describe('listings, identities and stats for the web app', () => {
  let dir, keyA, keyB;
  const shaOf = {};
  let records = {};

  before(async () => {
    dir = L.tmpDir('lists');
    keyA = L.createTenant(dir, 'alpha');
    keyB = L.createTenant(dir, 'beta');
    s = await L.startServer(dir);
  });
  after(async () => { await L.stopServer(s); fs.rmSync(dir, { recursive: true, force: true }); });

  async function ingest(list) {
    const items = list.map(([f, site]) => ({ image_b64: L.b64(F(f)), source_url: 'https://example.org/' + f,
      ...(site ? { site } : {}) }));
    const r = await L.api(s, 'POST', '/api/v1/ingest/batch', { key: keyA, json: { items } });
    assert.equal(r.status, 202, JSON.stringify(r.data));
    r.data.accepted.forEach((a) => { shaOf[list[a.index][0]] = a.image_sha256; });
    Object.assign(records, await L.waitDone(s, keyA, r.data.accepted.map((a) => a.image_sha256)));
  }

  async function pages(p, key, field) {
    const all = [];
    let cursor = null, n = 0;
    for (;;) {
      const r = await L.api(s, 'GET', p + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''), { key });
      assert.equal(r.status, 200, JSON.stringify(r.data));
      L.checkOpenapi('GET', p.startsWith('/api/v1/images') ? '/api/v1/images' : '/api/v1/faces', 200, r.data);
      all.push(...r.data[field]);
      n++;
      if (!r.data.next_cursor) return { all, n };
      assert.ok(n < 50, 'paging ends');
      cursor = r.data.next_cursor;
    }
  }

  it('ingests two batches of photos', async () => {
    await ingest(FIRST);
    await new Promise((r) => setTimeout(r, 20));
    await ingest(SECOND);
    assert.equal(Object.keys(shaOf).length, 6);
    for (const rec of Object.values(records)) assert.equal(rec.status, 'done');
    assert.equal(records[shaOf['two_people.jpg']].faces_found, 2);
  });

  it('pages through GET /images newest first, no repeats, no gaps', async () => {
    const { all, n } = await pages('/api/v1/images?limit=2', keyA, 'images');
    assert.equal(n, 3, 'six images in pages of two');
    assert.equal(all.length, 6);
    assert.deepEqual(new Set(all.map((x) => x.image_sha256)), new Set(Object.values(shaOf)));
    for (let i = 1; i < all.length; i++) {
      const a = all[i - 1], b = all[i];
      assert.ok(a.created_at > b.created_at || (a.created_at === b.created_at && a.image_sha256 > b.image_sha256),
        'newest first, then sha256 descending');
    }
    const second = new Set(SECOND.map(([f]) => shaOf[f]));
    assert.ok(all.slice(0, 2).every((x) => second.has(x.image_sha256)), 'the second batch comes first');
    const two = all.find((x) => x.image_sha256 === shaOf['two_people.jpg']);
    assert.equal(two.faces_indexed, records[shaOf['two_people.jpg']].faces_indexed.length);
    assert.equal(two.faces_found, 2);
    assert.equal(two.site, 'news');
    assert.equal(two.source_url, 'https://example.org/two_people.jpg');
    assert.equal(typeof two.width, 'number');
    assert.ok(two.thumbnail_url, 'done images have a thumbnail');
    assert.equal((await download(two.thumbnail_url)).status, 200);
    const one = await L.api(s, 'GET', '/api/v1/images?limit=200', { key: keyA });
    assert.equal(one.data.images.length, 6);
    assert.equal(one.data.next_cursor, undefined, 'no next_cursor when nothing remains');
    const b = await L.api(s, 'GET', '/api/v1/images', { key: keyB });
    assert.equal(b.status, 200);
    assert.deepEqual(b.data.images, [], 'another tenant sees none of them');
  });

  it('filters by site, since/until and status', async () => {
    const news = await L.api(s, 'GET', '/api/v1/images?site=news', { key: keyA });
    assert.equal(news.status, 200);
    L.checkOpenapi('GET', '/api/v1/images', 200, news.data);
    assert.deepEqual(new Set(news.data.images.map((x) => x.image_sha256)),
      new Set(['obama-1080p.jpg', 'two_people.jpg', 'obama-240p.jpg'].map((f) => shaOf[f])));
    const none = await L.api(s, 'GET', '/api/v1/images?site=nowhere', { key: keyA });
    assert.deepEqual(none.data.images, []);
    const all = (await L.api(s, 'GET', '/api/v1/images', { key: keyA })).data.images;
    const split = Math.min(...SECOND.map(([f]) => all.find((x) => x.image_sha256 === shaOf[f]).created_at));
    const since = await L.api(s, 'GET', '/api/v1/images?since=' + split, { key: keyA });
    assert.deepEqual(new Set(since.data.images.map((x) => x.image_sha256)), new Set(SECOND.map(([f]) => shaOf[f])));
    const until = await L.api(s, 'GET', '/api/v1/images?until=' + split, { key: keyA });
    assert.deepEqual(new Set(until.data.images.map((x) => x.image_sha256)), new Set(FIRST.map(([f]) => shaOf[f])));
    const iso = await L.api(s, 'GET', '/api/v1/images?since=' + new Date(split).toISOString(), { key: keyA });
    assert.equal(iso.data.images.length, SECOND.length, 'ISO-8601 with ms is the same bound');
    assert.equal((await L.api(s, 'GET', '/api/v1/images?since=2000-01-01', { key: keyA })).data.images.length, 6);
    assert.equal((await L.api(s, 'GET', '/api/v1/images?until=2000-01-01T00:00:00Z', { key: keyA })).data.images.length, 0);
    assert.equal((await L.api(s, 'GET', '/api/v1/images?status=done', { key: keyA })).data.images.length, 6);
    assert.equal((await L.api(s, 'GET', '/api/v1/images?status=queued', { key: keyA })).data.images.length, 0);
    const paged = await pages('/api/v1/images?site=blog&limit=1', keyA, 'images');
    assert.equal(paged.all.length, 2);
    assert.equal(paged.n, 2);
  });

  it('refuses bad paging and filters with a 400 naming the field', async () => {
    for (const [q, field] of [['limit=0', 'limit'], ['limit=201', 'limit'], ['limit=abc', 'limit'], ['cursor=garbage', 'cursor'],
      ['cursor=1.' + 'a'.repeat(63), 'cursor'], ['since=yesterday', 'since'], ['until=2026-13-01', 'until'],
      ['status=erased', 'status']]) {
      const r = await L.api(s, 'GET', '/api/v1/images?' + q, { key: keyA });
      assert.equal(r.status, 400, q);
      L.checkOpenapi('GET', '/api/v1/images', 400, r.data);
      assert.match(r.data.error.message, new RegExp('^' + field), q + ': ' + r.data.error.message);
    }
    for (const q of ['limit=0', 'cursor=nope', 'image_sha256=xyz', 'since=soon']) {
      const r = await L.api(s, 'GET', '/api/v1/faces?' + q, { key: keyA });
      assert.equal(r.status, 400, q);
      L.checkOpenapi('GET', '/api/v1/faces', 400, r.data);
    }
    const ext = await L.api(s, 'GET', '/api/v1/images?external_image_id=none', { key: keyA });
    assert.equal(ext.status, 404, 'external_image_id keeps its single-record behaviour');
  });

  it('pages through GET /faces: newest image first, face_index ascending, one image by image_sha256', async () => {
    const total = Object.values(records).reduce((n, r) => n + r.faces_indexed.length, 0);
    const { all } = await pages('/api/v1/faces?limit=3', keyA, 'faces');
    assert.equal(all.length, total);
    assert.equal(new Set(all.map((f) => f.face_id)).size, total, 'no face twice');
    const order = (await L.api(s, 'GET', '/api/v1/images', { key: keyA })).data.images.map((x) => x.image_sha256);
    for (let i = 1; i < all.length; i++) {
      const a = order.indexOf(all[i - 1].image_sha256), b = order.indexOf(all[i].image_sha256);
      assert.ok(a < b || (a === b && all[i - 1].face_index < all[i].face_index), 'image order, then face_index');
    }
    const one = await pages('/api/v1/faces?limit=1&image_sha256=' + shaOf['two_people.jpg'], keyA, 'faces');
    assert.deepEqual(one.all.map((f) => f.face_index), [0, 1]);
    assert.equal(one.n, 2);
    for (const f of one.all) {
      assert.equal(f.site, 'news');
      const c = await download(f.crop_url);
      assert.equal(c.status, 200);
      assert.equal(c.body[0], 0xff, 'a JPEG crop');
      assert.equal((await download(f.thumb_url)).status, 200);
    }
    const news = await L.api(s, 'GET', '/api/v1/faces?site=blog', { key: keyA });
    assert.ok(news.data.faces.every((f) => f.site === 'blog') && news.data.faces.length > 0);
  });

  it('GET /images/{sha256} carries created_at, the raw image and each face\'s crop', async () => {
    const h = shaOf['two_people.jpg'];
    const r = await L.api(s, 'GET', '/api/v1/images/' + h, { key: keyA });
    assert.equal(r.status, 200);
    L.checkOpenapi('GET', '/api/v1/images/{sha256}', 200, r.data);
    assert.equal(typeof r.data.created_at, 'number');
    const raw = await download(r.data.image_url);
    assert.equal(raw.status, 200);
    assert.equal(sha(raw.body), h, 'image_url gives back the very bytes ingested');
    assert.equal(r.data.faces_indexed.length, 2);
    for (const f of r.data.faces_indexed) {
      assert.equal((await download(f.crop_url)).status, 200);
      assert.equal((await download(f.thumb_url)).status, 200);
    }
  });

  it('groups search results by image, folding a near duplicate under the first', async () => {
    const big = shaOf['obama-1080p.jpg'], small = shaOf['obama-240p.jpg'];
    const dupFace = records[small].faces_indexed[0];
    assert.ok(dupFace && dupFace.near_duplicate_of, 'the 240p copy was linked to the 1080p one: ' + JSON.stringify(records[small]));
    const q = await L.api(s, 'POST', '/api/v1/search', { key: keyA, json: { image_b64: L.b64(F('obama_small.jpg')), top_k: 20, group_by: 'image' } });
    assert.equal(q.status, 200, JSON.stringify(q.data));
    L.checkOpenapi('POST', '/api/v1/search', 200, q.data);
    assert.ok(q.data.results.length > 0, 'flat results stay');
    const groups = q.data.groups;
    const gShas = groups.map((g) => g.image_sha256);
    assert.equal(new Set(gShas).size, gShas.length, 'one group per image');
    for (let i = 1; i < groups.length; i++) assert.ok(groups[i - 1].score >= groups[i].score, 'groups by best score');
    const inGroup = gShas.filter((x) => x === big || x === small);
    assert.equal(inGroup.length, 1, 'the two sizes of one photo are one group: ' + JSON.stringify(gShas));
    const g = groups.find((x) => x.image_sha256 === inGroup[0]);
    const other = inGroup[0] === big ? small : big;
    assert.ok(g.near_duplicates.some((d) => d.image_sha256 === other), 'the other size is its near duplicate');
    assert.ok(g.faces.every((f) => f.image_sha256 === g.image_sha256));
    assert.equal(g.score, g.faces[0].score);
    const ungrouped = await L.api(s, 'POST', '/api/v1/search', { key: keyA, json: { image_b64: L.b64(F('obama_small.jpg')) } });
    assert.equal(ungrouped.data.groups, undefined, 'no groups unless asked');
    const bad = await L.api(s, 'POST', '/api/v1/search', { key: keyA, json: { image_b64: L.b64(F('obama_small.jpg')), group_by: 'site' } });
    assert.equal(bad.status, 400);
    assert.match(bad.data.error.message, /group_by/);
    const form = new FormData();
    form.append('image', new Blob([fs.readFileSync(F('two_people.jpg'))]), 'two.jpg');
    form.append('group_by', 'image');
    form.append('faces', 'all');
    const mp = await fetch(s.base + '/api/v1/search', { method: 'POST', headers: { Authorization: 'Bearer ' + keyA }, body: form });
    const mj = await mp.json();
    assert.equal(mp.status, 200, JSON.stringify(mj));
    L.checkOpenapi('POST', '/api/v1/search', 200, mj);
    assert.ok(Array.isArray(mj.groups));
    assert.equal(mj.query_faces.length, 2);
    assert.ok(mj.query_faces.every((f) => Array.isArray(f.groups) && f.groups.length > 0), 'each query face has its groups');
    const badForm = new FormData();
    badForm.append('image', new Blob([fs.readFileSync(F('two_people.jpg'))]), 'two.jpg');
    badForm.append('group_by', 'face');
    assert.equal((await fetch(s.base + '/api/v1/search', { method: 'POST', headers: { Authorization: 'Bearer ' + keyA }, body: badForm })).status, 400);
  });

  it('shows an identity\'s samples with their pictures, deletes one, hides it from other tenants', async () => {
    const c = await L.api(s, 'POST', '/api/v1/identities', { key: keyA, json: { name: 'Barack' } });
    const id = c.data.identity_id;
    const up = await L.api(s, 'POST', '/api/v1/identities/' + id + '/enroll', { key: keyA, json: { image_b64: L.b64(F('knn_examples/test/obama1.jpg')) } });
    assert.equal(up.status, 200, JSON.stringify(up.data));
    const face = records[shaOf['knn_examples/train/obama/obama.jpg']].faces_indexed[0].face_id;
    const byFace = await L.api(s, 'POST', '/api/v1/identities/' + id + '/enroll', { key: keyA, json: { face_id: face } });
    assert.equal(byFace.data.n_samples, 2);
    const g = await L.api(s, 'GET', '/api/v1/identities/' + id, { key: keyA });
    assert.equal(g.status, 200, JSON.stringify(g.data));
    L.checkOpenapi('GET', '/api/v1/identities/{id}', 200, g.data);
    assert.equal(g.data.name, 'Barack');
    assert.equal(g.data.n_samples, 2);
    assert.equal(g.data.samples.length, 2);
    assert.equal(typeof g.data.created_at, 'number');
    const fromFace = g.data.samples.find((x) => x.face_id === face);
    const fromUpload = g.data.samples.find((x) => !x.face_id);
    assert.ok(fromFace && fromUpload);
    assert.equal(fromUpload.image_sha256, sha(fs.readFileSync(F('knn_examples/test/obama1.jpg'))));
    for (const x of g.data.samples) {
      const d = await download(x.crop_url);
      assert.equal(d.status, 200, 'sample crop downloads');
      assert.equal(d.body[0], 0xff);
    }
    assert.ok(fromFace.thumb_url);
    assert.equal(g.data.cover_url, g.data.samples[0].crop_url);
    const list = await L.api(s, 'GET', '/api/v1/identities', { key: keyA });
    L.checkOpenapi('GET', '/api/v1/identities', 200, list.data);
    assert.ok(list.data.identities.find((x) => x.identity_id === id).cover_url);
    // another tenant: not found, cannot delete
    const other = await L.api(s, 'GET', '/api/v1/identities/' + id, { key: keyB });
    assert.equal(other.status, 404);
    L.checkOpenapi('GET', '/api/v1/identities/{id}', 404, other.data);
    const otherDel = await L.api(s, 'DELETE', '/api/v1/identities/' + id + '/samples/' + fromUpload.sample_id, { key: keyB });
    assert.equal(otherDel.status, 404);
    assert.equal((await L.api(s, 'GET', '/api/v1/identities/nope', { key: keyA })).status, 404);
    // delete the uploaded sample: its crop goes, the count drops
    const del = await L.api(s, 'DELETE', '/api/v1/identities/' + id + '/samples/' + fromUpload.sample_id, { key: keyA });
    assert.equal(del.status, 200, JSON.stringify(del.data));
    L.checkOpenapi('DELETE', '/api/v1/identities/{id}/samples/{sample_id}', 200, del.data);
    assert.deepEqual(del.data, { identity_id: id, sample_id: fromUpload.sample_id, deleted: true, n_samples: 1 });
    assert.equal((await download(fromUpload.crop_url)).status, 404, 'the sample\'s crop is deleted with it');
    const again = await L.api(s, 'DELETE', '/api/v1/identities/' + id + '/samples/' + fromUpload.sample_id, { key: keyA });
    assert.equal(again.status, 404);
    L.checkOpenapi('DELETE', '/api/v1/identities/{id}/samples/{sample_id}', 404, again.data);
    const after1 = await L.api(s, 'GET', '/api/v1/identities/' + id, { key: keyA });
    assert.equal(after1.data.n_samples, 1);
    assert.deepEqual(after1.data.samples.map((x) => x.sample_id), [fromFace.sample_id]);
    const v = await L.api(s, 'POST', '/api/v1/identities/' + id + '/verify', { key: keyA, json: { image_b64: L.b64(F('test_images/obama3.jpg')) } });
    assert.equal(v.data.match, true, 'the centroid of the remaining sample still verifies');
  });

  it('reports the tenant\'s numbers on /stats', async () => {
    const st = await L.api(s, 'GET', '/api/v1/stats', { key: keyA });
    assert.equal(st.status, 200);
    L.checkOpenapi('GET', '/api/v1/stats', 200, st.data);
    const faces = Object.values(records).reduce((n, r) => n + r.faces_indexed.length, 0);
    assert.deepEqual(st.data.images, { queued: 0, processing: 0, done: 6, failed: 0 });
    assert.equal(st.data.faces_indexed, faces);
    assert.equal(st.data.identities, 1);
    assert.equal(st.data.queue_depth, 0);
    assert.equal(st.data.dead_letters, 0);
    assert.equal(st.data.crawl_jobs_running, 0);
    assert.ok(st.data.processed_last_minute >= 1 && st.data.processed_last_minute <= 6);
    const b = await L.api(s, 'GET', '/api/v1/stats', { key: keyB });
    assert.deepEqual(b.data.images, { queued: 0, processing: 0, done: 0, failed: 0 }, 'tenant-scoped');
    assert.equal(b.data.identities, 0);
  });

  it('erasing an image removes the crop of a sample enrolled from it', async () => {
    const h = shaOf['knn_examples/train/biden/biden.jpg'];
    const c = await L.api(s, 'POST', '/api/v1/identities', { key: keyA, json: { name: 'Joe' } });
    const id = c.data.identity_id;
    const e = await L.api(s, 'POST', '/api/v1/identities/' + id + '/enroll', { key: keyA, json: { image_b64: L.b64(F('knn_examples/train/biden/biden.jpg')) } });
    assert.equal(e.status, 200, JSON.stringify(e.data));
    const g = await L.api(s, 'GET', '/api/v1/identities/' + id, { key: keyA });
    const sample = g.data.samples[0];
    assert.equal(sample.image_sha256, h);
    assert.equal((await download(sample.crop_url)).status, 200);
    const del = await L.api(s, 'DELETE', '/api/v1/images/' + h, { key: keyA });
    assert.equal(del.status, 200);
    assert.equal((await download(sample.crop_url)).status, 404, 'no crop of the erased image is left behind');
    const after1 = await L.api(s, 'GET', '/api/v1/identities/' + id, { key: keyA });
    assert.equal(after1.data.n_samples, 0);
    const imgs = await L.api(s, 'GET', '/api/v1/images', { key: keyA });
    assert.ok(imgs.data.images.every((x) => x.image_sha256 !== h), 'an erased image is not listed');
    assert.equal(imgs.data.images.length, 5);
    // deleting an identity deletes its samples' crops too
    const c2 = await L.api(s, 'POST', '/api/v1/identities', { key: keyA, json: { name: 'Kit' } });
    await L.api(s, 'POST', '/api/v1/identities/' + c2.data.identity_id + '/enroll', { key: keyA, json: { image_b64: L.b64(F('knn_examples/train/kit_harington/john1.jpeg')) } });
    const g2 = await L.api(s, 'GET', '/api/v1/identities/' + c2.data.identity_id, { key: keyA });
    const url = g2.data.samples[0].crop_url;
    assert.equal((await download(url)).status, 200);
    assert.equal((await L.api(s, 'DELETE', '/api/v1/identities/' + c2.data.identity_id, { key: keyA })).status, 200);
    assert.equal((await download(url)).status, 404);
  });
});
