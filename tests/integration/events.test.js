'use strict';
// Events and webhooks over real HTTP: PUT/GET/DELETE /api/v1/webhook (a new
// secret on every PUT, tenant-scoped, URL rules: http(s) only, an address
// literal the fetch rules refuse is 400), GET /api/v1/events (empty, limit
// and cursor errors naming the field, paging newest first) and delivery to
// a receiver on loopback: the signature verified as docs/webhooks.md says, a
// 500 retried, a receiver that keeps failing given up after
// VISAGE_WEBHOOK_MAX_ATTEMPTS. No route adds events (the people module will,
// through vs_event_add), so the delivery tests write event rows with the
// sqlite3 shell, the same INSERT vs_event_add makes; they are skipped when
// there is no sqlite3 shell. Every response is checked against docs/openapi.yaml.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const L = require('./lib');

const HAVE_SQLITE = spawnSync('sqlite3', ['-version']).status === 0;

// A receiver answering the statuses of script in turn (the last one after that).
function startReceiver(script) {
  const got = [];
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      got.push({ headers: req.headers, body, method: req.method, url: req.url });
      res.statusCode = script[Math.min(got.length - 1, script.length - 1)];
      res.end('ok');
    });
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve({ srv, got, port: srv.address().port })));
}

// What docs/webhooks.md tells a receiver to do.
function verify(secret, headers, body) {
  const ts = headers['x-visage-timestamp'];
  const want = 'sha256=' + crypto.createHmac('sha256', secret).update(ts + '.' + body).digest('hex');
  const got = headers['x-visage-signature'] || '';
  return got.length === want.length && crypto.timingSafeEqual(Buffer.from(got), Buffer.from(want)) &&
    Math.abs(Date.now() / 1000 - Number(ts)) < 300;
}

describe('events and webhooks', () => {
  let dir, keyA, keyB, s;

  before(async () => {
    dir = L.tmpDir('events');
    keyA = L.createTenant(dir, 'alpha');
    keyB = L.createTenant(dir, 'beta');
    s = await L.startServer(dir, { VISAGE_FETCH_ALLOW: '127.0.0.1/32', VISAGE_WEBHOOK_BACKOFF_MS: '100',
      VISAGE_WEBHOOK_MAX_ATTEMPTS: '3' });
  });
  after(async () => { await L.stopServer(s); fs.rmSync(dir, { recursive: true, force: true }); });

  // Adds an event of tenant as vs_event_add does (pending when it has a webhook).
  function addEvent(tenant, detail) {
    const sql = "INSERT INTO events(tenant_id, at, kind, detail_json, state, next_try_ms) VALUES('" + tenant + "', " +
      Date.now() + ", 'person_seen', '" + JSON.stringify(detail) + "', CASE WHEN EXISTS(SELECT 1 FROM webhooks " +
      "WHERE tenant_id = '" + tenant + "') THEN 0 ELSE 3 END, " + Date.now() + ');';
    const r = spawnSync('sqlite3', ['-cmd', '.timeout 5000', path.join(dir, 'catalog.db'), sql], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  }

  async function events(key, q = '') {
    const r = await L.api(s, 'GET', '/api/v1/events' + q, { key });
    assert.equal(r.status, 200, JSON.stringify(r.data));
    L.checkOpenapi('GET', '/api/v1/events', 200, r.data);
    return r.data;
  }

  it('lists no events at first, and refuses a bad limit or cursor naming the field', async () => {
    assert.deepEqual(await events(keyA), { events: [] });
    for (const [q, field] of [['?limit=0', 'limit'], ['?limit=201', 'limit'], ['?limit=x', 'limit'],
      ['?cursor=zzz', 'cursor'], ['?cursor=ev', 'cursor'], ['?cursor=ev-1', 'cursor'], ['?cursor=ev1x', 'cursor']]) {
      const r = await L.api(s, 'GET', '/api/v1/events' + q, { key: keyA });
      assert.equal(r.status, 400, q);
      L.checkOpenapi('GET', '/api/v1/events', 400, r.data);
      assert.match(r.data.error.message, new RegExp('^' + field + ':'), q);
    }
    assert.equal((await L.api(s, 'GET', '/api/v1/events', {})).status, 401);
  });

  it('sets, reads, replaces and removes the webhook, per tenant', async () => {
    let r = await L.api(s, 'GET', '/api/v1/webhook', { key: keyA });
    assert.equal(r.status, 404);
    L.checkOpenapi('GET', '/api/v1/webhook', 404, r.data);
    r = await L.api(s, 'PUT', '/api/v1/webhook', { key: keyA, json: { url: 'https://hooks.example.org/visage' } });
    assert.equal(r.status, 200, JSON.stringify(r.data));
    L.checkOpenapi('PUT', '/api/v1/webhook', 200, r.data);
    assert.match(r.data.secret, /^whsec_[0-9a-f]{64}$/);
    const first = r.data.secret;
    r = await L.api(s, 'GET', '/api/v1/webhook', { key: keyA });
    assert.equal(r.status, 200);
    L.checkOpenapi('GET', '/api/v1/webhook', 200, r.data);
    assert.equal(r.data.url, 'https://hooks.example.org/visage');
    assert.equal(r.data.secret, first);
    assert.equal((await L.api(s, 'GET', '/api/v1/webhook', { key: keyB })).status, 404); // tenant-scoped
    r = await L.api(s, 'PUT', '/api/v1/webhook', { key: keyA, json: { url: 'https://hooks.example.org/v2' } });
    assert.equal(r.status, 200);
    assert.notEqual(r.data.secret, first); // every PUT rotates the secret
    r = await L.api(s, 'DELETE', '/api/v1/webhook', { key: keyA });
    assert.equal(r.status, 200);
    L.checkOpenapi('DELETE', '/api/v1/webhook', 200, r.data);
    r = await L.api(s, 'DELETE', '/api/v1/webhook', { key: keyA });
    assert.equal(r.status, 404);
    L.checkOpenapi('DELETE', '/api/v1/webhook', 404, r.data);
    assert.equal((await L.api(s, 'GET', '/api/v1/webhook', { key: keyA })).status, 404);
    r = await L.api(s, 'POST', '/api/v1/webhook', { key: keyA, json: { url: 'https://x.org/' } });
    assert.equal(r.status, 405);
    assert.match(r.headers.get('allow'), /PUT/);
  });

  it('refuses a webhook that is not http(s), is malformed, or is a refused address literal', async () => {
    const bad = [
      [{ url: 'ftp://hooks.example.org/x' }, /url/], [{ url: 'not a url' }, /url/], [{ url: '' }, /url/],
      [{}, /url/], [{ url: 'https://x.org/', extra: 1 }, /extra/], [{ url: 5 }, /url/],
      [{ url: 'http://10.1.2.3/hook' }, /address not allowed: 10\.1\.2\.3/],
      [{ url: 'http://169.254.169.254/latest' }, /address not allowed/],
      [{ url: 'http://[::1]:8080/hook' }, /address not allowed/],
    ];
    for (const [json, re] of bad) {
      const r = await L.api(s, 'PUT', '/api/v1/webhook', { key: keyA, json });
      assert.equal(r.status, 400, JSON.stringify(json));
      L.checkOpenapi('PUT', '/api/v1/webhook', 400, r.data);
      assert.match(r.data.error.message, re, JSON.stringify(json));
    }
    const r = await L.api(s, 'PUT', '/api/v1/webhook', { key: keyA, body: 'url=x', headers: { 'Content-Type': 'text/plain' } });
    assert.equal(r.status, 415);
    assert.equal((await L.api(s, 'GET', '/api/v1/webhook', { key: keyA })).status, 404); // nothing was set
  });

  it('delivers signed events, retries a 500, and pages the listing newest first', { skip: !HAVE_SQLITE && 'no sqlite3 shell' }, async () => {
    const rx = await startReceiver([500, 200]);
    try {
      const put = await L.api(s, 'PUT', '/api/v1/webhook', { key: keyA, json: { url: 'http://127.0.0.1:' + rx.port + '/hook' } });
      assert.equal(put.status, 200, JSON.stringify(put.data));
      const detail = { person_id: 'p1', face_id: 'f1', image_sha256: 'a'.repeat(64), site: 'news',
        source_url: 'https://example.org/a.jpg', page_url: 'https://example.org/' };
      addEvent('alpha', detail);
      await L.waitFor(async () => (await events(keyA)).events[0].delivery.state === 'delivered', 15000, 'delivery');
      const ev = (await events(keyA)).events[0];
      assert.equal(ev.delivery.attempts, 2);
      assert.equal(ev.kind, 'person_seen');
      assert.deepEqual(ev.detail, detail);
      assert.equal(rx.got.length, 2);
      for (const g of rx.got) {
        assert.equal(g.method, 'POST');
        assert.equal(g.url, '/hook');
        assert.equal(g.headers['content-type'], 'application/json');
        assert.equal(g.headers['x-visage-event'], 'person_seen');
        assert.ok(verify(put.data.secret, g.headers, g.body), 'signature verifies');
        assert.ok(!verify(put.data.secret, g.headers, g.body + ' '), 'a changed body does not');
        const b = JSON.parse(g.body);
        assert.equal(b.id, ev.id);
        assert.equal(b.tenant, 'alpha');
        assert.equal(b.kind, 'person_seen');
        assert.equal(b.at, ev.at);
        assert.deepEqual(b.detail, detail);
      }
      // beta sees none of alpha's; an event of beta (no webhook) is never sent
      addEvent('beta', { person_id: 'pb' });
      const eb = (await events(keyB)).events;
      assert.equal(eb.length, 1);
      assert.equal(eb[0].delivery.state, 'none');
      // paging: 4 more, pages of 2, newest first, no repeats
      for (let i = 0; i < 4; i++) addEvent('alpha', { n: i });
      const all = [];
      let cursor = null, pages = 0;
      for (;;) {
        const d = await events(keyA, '?limit=2' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
        all.push(...d.events);
        pages++;
        if (!d.next_cursor) break;
        cursor = d.next_cursor;
      }
      assert.equal(all.length, 5);
      assert.equal(pages, 3);
      const ids = all.map((e) => e.id);
      assert.deepEqual(ids, [...ids].sort((a, b) => b - a));
      assert.equal(new Set(ids).size, 5);
      assert.deepEqual(all[0].detail, { n: 3 });
      await L.waitFor(async () => (await events(keyA)).events.every((e) => e.delivery.state === 'delivered'), 15000, 'all delivered');
    } finally {
      rx.srv.close();
      await L.api(s, 'DELETE', '/api/v1/webhook', { key: keyA });
    }
  });

  it('gives up after VISAGE_WEBHOOK_MAX_ATTEMPTS, naming the status', { skip: !HAVE_SQLITE && 'no sqlite3 shell' }, async () => {
    const rx = await startReceiver([503]);
    try {
      const put = await L.api(s, 'PUT', '/api/v1/webhook', { key: keyB, json: { url: 'http://127.0.0.1:' + rx.port + '/' } });
      assert.equal(put.status, 200);
      addEvent('beta', { person_id: 'p2' });
      await L.waitFor(async () => (await events(keyB)).events[0].delivery.state === 'failed', 15000, 'given up');
      const ev = (await events(keyB)).events[0];
      assert.equal(ev.delivery.attempts, 3);
      assert.match(ev.delivery.last_error, /HTTP 503/);
      assert.equal(rx.got.length, 3);
    } finally {
      rx.srv.close();
    }
  });
});
