'use strict';
// Test helpers: start/stop `visage serve` on a free loopback port, HTTP
// calls with an API key, the shared photos, OpenAPI response validation.
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..', '..');
const BIN = process.env.VISAGE_BIN || path.join(ROOT, 'build', 'visage');
const FACES = path.join(ROOT, '..', 'shared', 'data', 'faces');
const MODELS = process.env.VISAGE_MODELS || path.join(ROOT, 'models');

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
    s.on('error', reject);
  });
}

function tmpDir(tag) { return fs.mkdtempSync(path.join(os.tmpdir(), 'visage-' + tag + '-')); }

function createTenant(dataDir, name) {
  const out = execFileSync(BIN, ['tenant', 'create', name, '--data', dataDir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return JSON.parse(out).api_key;
}

async function startServer(dataDir, extraEnv = {}, command = 'serve') {
  const port = await freePort();
  const log = [];
  const proc = spawn(BIN, [command, '--data', dataDir, '--listen', '127.0.0.1:' + port], {
    env: { ...process.env, VISAGE_MODELS: MODELS, ...extraEnv }, stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr.on('data', (d) => log.push(String(d)));
  const base = 'http://127.0.0.1:' + port;
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error('server exited: ' + log.join(''));
    try { const r = await fetch(base + '/healthz'); if (r.ok) return { proc, base, port, log }; } catch (e) { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  proc.kill('SIGKILL');
  throw new Error('server did not start: ' + log.join(''));
}

async function stopServer(s, signal = 'SIGTERM') {
  if (!s || s.proc.exitCode !== null || s.proc.signalCode !== null) return;
  const done = new Promise((r) => s.proc.once('exit', r));
  s.proc.kill(signal);
  await done;
}

async function api(s, method, p, { key, json, body, headers = {} } = {}) {
  const h = { ...headers };
  if (key) h.Authorization = 'Bearer ' + key;
  let b = body;
  if (json !== undefined) { h['Content-Type'] = 'application/json'; b = JSON.stringify(json); }
  const r = await fetch(s.base + p, { method, headers: h, body: b });
  const text = await r.text();
  let data = null;
  try { data = JSON.parse(text); } catch (e) { data = text; }
  return { status: r.status, data, headers: r.headers };
}

function b64(file) { return fs.readFileSync(file).toString('base64'); }

function walk(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(path.join(dir, e.name)) : /\.(jpe?g|png)$/i.test(e.name) ? [path.join(dir, e.name)] : []).sort();
}

async function waitDone(s, key, shas, timeoutMs = 180000) {
  const deadline = Date.now() + timeoutMs;
  const pending = new Set(shas);
  const records = {};
  while (pending.size && Date.now() < deadline) {
    for (const sha of [...pending]) {
      const r = await api(s, 'GET', '/api/v1/images/' + sha, { key });
      if (r.status === 200 && (r.data.status === 'done' || r.data.status === 'failed')) { records[sha] = r.data; pending.delete(sha); }
    }
    if (pending.size) await new Promise((r) => setTimeout(r, 250));
  }
  if (pending.size) throw new Error(pending.size + ' images not processed in time');
  return records;
}

// OpenAPI: validate a response body against docs/openapi.yaml
let ajv = null;
function validator() {
  if (ajv) return ajv;
  const YAML = require('yaml');
  const Ajv = require('ajv');
  const doc = YAML.parse(fs.readFileSync(path.join(ROOT, 'docs', 'openapi.yaml'), 'utf8'));
  ajv = new Ajv({ strict: false, allErrors: true });
  ajv.addSchema(doc, 'openapi');
  return ajv;
}
function escapePtr(s) { return s.replace(/~/g, '~0').replace(/\//g, '~1'); }
// Asserts `data` matches the documented response of `method path` with `status`.
function checkOpenapi(method, docPath, status, data, ctype = 'application/json') {
  const v = validator();
  const doc = v.getSchema('openapi').schema;
  const op = doc.paths[docPath] && doc.paths[docPath][method.toLowerCase()];
  if (!op) throw new Error('openapi.yaml has no ' + method + ' ' + docPath);
  let resp = op.responses[String(status)];
  if (!resp) throw new Error('openapi.yaml: ' + method + ' ' + docPath + ' does not document status ' + status);
  let ptr = 'openapi#/paths/' + escapePtr(docPath) + '/' + method.toLowerCase() + '/responses/' + status;
  if (resp.$ref) { ptr = 'openapi' + resp.$ref; resp = resp.$ref.split('/').slice(1).reduce((o, k) => o[k], doc); }
  if (!resp.content) return;
  const validate = v.getSchema(ptr + '/content/' + escapePtr(ctype) + '/schema');
  if (!validate(data)) throw new Error(method + ' ' + docPath + ' ' + status + ' does not match openapi.yaml: ' + v.errorsText(validate.errors));
}

// Real peers for distributed mode, on loopback: redis-server (Debian) and s3rver (npm).
const S3RVER = path.join(ROOT, 'tests', 's3', 'node_modules', 's3rver', 'bin', 's3rver.js');

async function waitFor(fn, ms, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    try { if (await fn()) return; } catch (e) { /* not yet */ }
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function startRedis(dir, port) {
  port = port || await freePort();
  const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
    '--appendonly', 'yes', '--appendfsync', 'always'], { stdio: 'ignore' });
  await waitFor(() => new Promise((res) => {
    const s = require('node:net').connect(port, '127.0.0.1', () => { s.end(); res(true); });
    s.on('error', () => res(false));
  }), 10000, 'redis-server');
  return { proc: p, port };
}

async function startS3(dir) {
  const port = await freePort();
  const p = spawn(process.execPath, ['--openssl-legacy-provider', S3RVER, '--address', '127.0.0.1', '--port', String(port), '--directory', dir, '--silent'],
    { stdio: 'ignore' });
  await waitFor(async () => (await fetch('http://127.0.0.1:' + port + '/')).status > 0, 15000, 's3rver');
  return { proc: p, port };
}

// The shared photos with Obama in them, relative to FACES (README of the data
// set; 32bit.png is obama2.jpg as PNG; two of them are group photos).
const OBAMA = new Set(['test_images/32bit.png', 'knn_examples/train/obama/obama.jpg', 'knn_examples/train/obama/obama2.jpg', 'obama-1080p.jpg',
  'obama-240p.jpg', 'obama_small.jpg', 'test_images/obama3.jpg', 'test_images/obama_partial_face.jpg',
  'knn_examples/test/obama1.jpg', 'knn_examples/test/obama_and_biden.jpg', 'two_people.jpg']);

module.exports = {
  OBAMA,
  waitFor, startRedis, startS3, ROOT, BIN, FACES, MODELS, freePort, tmpDir, createTenant, startServer, stopServer, api, b64, walk, waitDone, checkOpenapi };
