// api.js - talking to the visage API: the key (kept in this tab's session
// storage, entered once), one request function that turns every failure into
// an Error carrying the server's own message, and file helpers.

const KEY = 'visage_key';

export function apiKey() { return sessionStorage.getItem(KEY) || ''; }
export function setApiKey(k) {
  if (k) sessionStorage.setItem(KEY, k); else sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

// Listeners told when the server refuses the key (401), so the page can ask
// for one wherever the request came from.
const authListeners = [];
export function onAuthNeeded(fn) { authListeners.push(fn); }

// One request: GET with no body, a FormData, or a JSON value. Resolves the
// parsed JSON answer; rejects with an ApiError naming what went wrong.
export async function api(path, { method, form, json, signal } = {}) {
  const headers = {};
  const k = apiKey();
  if (k) headers.Authorization = 'Bearer ' + k;
  let body = form;
  if (json !== undefined) { headers['Content-Type'] = 'application/json'; body = JSON.stringify(json); }
  let r;
  try {
    r = await fetch(path, { method: method || (body ? 'POST' : 'GET'), headers, body, signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'The server did not answer (' + e.message + '). Is visage still running?');
  }
  const j = await r.json().catch(() => ({}));
  if (!r.ok) {
    const err = j.error || {};
    if (r.status === 401) authListeners.forEach((fn) => fn(err.message));
    let msg = err.message || 'HTTP ' + r.status;
    if (r.status === 429 || r.status === 503) msg += ' (try again in ' + (r.headers.get('Retry-After') || 'a few') + ' s)';
    throw new ApiError(r.status, err.code || 'http_' + r.status, msg);
  }
  return j;
}

// The base64 of a File (for JSON bodies such as erase and enroll).
export function fileB64(f) {
  return new Promise((res, rej) => {
    const rd = new FileReader();
    rd.onload = () => res(String(rd.result).split(',')[1]);
    rd.onerror = () => rej(new Error('cannot read ' + f.name));
    rd.readAsDataURL(f);
  });
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? '?' + s : '';
}

// Waits until an ingested image has been processed (done or failed), polling
// its record; resolves the record. Gives up after `ms`.
export async function waitProcessed(sha, { ms = 120000, every = 500 } = {}) {
  const t0 = Date.now();
  for (;;) {
    let rec = null;
    try { rec = await api('/api/v1/images/' + sha); } catch (e) { if (e.status !== 404) throw e; }
    if (rec && (rec.status === 'done' || rec.status === 'failed')) return rec;
    if (Date.now() - t0 > ms) throw new Error('still processing after ' + Math.round(ms / 1000) + ' s; see the Dashboard');
    await new Promise((r) => setTimeout(r, every));
  }
}
