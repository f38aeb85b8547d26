// ui.js - the pieces every view shares: an element builder, the designed
// states (loading, empty, error), a photo with its faces boxed, result and
// face cards, tables, the photo viewer and the "add to a person" picker.
import { api, query } from './api.js';

// el('tag#id.class1.class2', {attr: v, onclick: fn}, child, 'text', ...): an
// element; children may be nodes, strings, arrays, or null (skipped).
export function el(spec, attrs, ...kids) {
  const tag = /^[a-z0-9]*/.exec(spec)[0], id = /#([\w-]+)/.exec(spec), classes = [...spec.matchAll(/\.([\w-]+)/g)].map((m) => m[1]);
  const e = document.createElement(tag || 'div');
  if (id) e.id = id[1];
  if (classes.length) e.className = classes.join(' ');
  if (attrs && (typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs))) { kids.unshift(attrs); attrs = null; }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k in e && k !== 'list' && typeof v !== 'string') e[k] = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined && k !== false) e.append(k instanceof Node ? k : String(k));
  return e;
}

export const loading = (what) => el('div.state', { role: 'status' }, el('span.spinner'), what || 'Loading…');
export const empty = (what, hint) => el('div.state', { role: 'status' }, el('p', what), hint ? el('p.small', hint) : null);
export const failed = (e) => el('div.state.error', { role: 'alert' }, e.message || String(e));

export function setStatus(node, msg, error) {
  node.textContent = msg || '';
  node.classList.toggle('error', !!error);
}

export const when = (ms) => (ms ? new Date(ms).toLocaleString() : '');
export const fmtScore = (s) => (typeof s === 'number' ? s.toFixed(3) : '');
export const BAND_TEXT = { same_person: 'Same person', possible: 'Possible match', different: 'Different person' };
export const bandOf = (r) => r.band || (r.same_person ? 'same_person' : 'different');
export const bandLabel = (r) => el('span.band.' + bandOf(r), BAND_TEXT[bandOf(r)] + ' · ' + fmtScore(r.score));

// The last part of a URL, for a short link text.
export function shortUrl(u) {
  if (!u) return '';
  try { const x = new URL(u); return (x.pathname.split('/').pop() || x.host) + (x.protocol.startsWith('http') ? ' (' + x.host + ')' : ''); } catch { return u; }
}

// A link when the URL is one a browser can open (http/https), else text.
export function urlLink(u, text, cls) {
  if (!u) return null;
  if (/^https?:\/\//.test(u)) return el('a' + (cls ? '.' + cls : ''), { href: u, target: '_blank', rel: 'noopener noreferrer', title: u }, text || shortUrl(u));
  return el('span.src', { title: u }, text || shortUrl(u));
}

// A photo with boxes over its faces. faces: [{bbox:[x,y,w,h], label, cls,
// title, onclick}]; size: [w, h] the bbox coordinates refer to (else the
// image's natural size once loaded). Returns the wrapper element.
export function boxedPhoto(src, faces, size, alt) {
  const img = el('img', { src, alt: alt || 'photo' });
  const wrap = el('div.photo', img);
  const place = () => {
    const W = (size && size[0]) || img.naturalWidth, H = (size && size[1]) || img.naturalHeight;
    if (!W || !H) return;
    wrap.querySelectorAll('.facebox').forEach((b) => b.remove());
    faces.forEach((f, i) => {
      if (!f.bbox) return;
      const [x, y, w, h] = f.bbox;
      const b = el('button.facebox' + (f.cls ? '.' + f.cls : ''), {
        type: 'button', title: f.title || '', 'aria-label': f.title || 'face ' + (i + 1), dataset: { face: String(i) },
        onclick: f.onclick ? (e) => { e.preventDefault(); f.onclick(i, b); } : null,
      }, f.label ? el('span', f.label) : null);
      Object.assign(b.style, { left: (100 * x / W) + '%', top: (100 * y / H) + '%', width: (100 * w / W) + '%', height: (100 * h / H) + '%' });
      if (!f.onclick) b.tabIndex = -1;
      wrap.append(b);
    });
  };
  if (img.complete && img.naturalWidth) place(); else img.addEventListener('load', place);
  wrap.refresh = place;
  return wrap;
}

// Drop or pick a photo: calls onFile(File), or onFile(File[]) when
// opts.multiple. Returns the drop zone (its file input as .input).
export function dropZone(onFile, text, opts = {}) {
  const give = (list) => { const fs = [...list]; if (fs.length) onFile(opts.multiple ? fs : fs[0]); };
  const input = el('input', { type: 'file', accept: 'image/*', hidden: true, multiple: !!opts.multiple,
    onchange: (e) => { give(e.target.files); e.target.value = ''; } });
  const zone = el('div.drop', { tabindex: '0', role: 'button', 'aria-label': text || 'Choose a photo' },
    text || 'Drop a photo here, paste one, or click to choose', input);
  zone.addEventListener('click', (e) => { if (e.target !== input) input.click(); });
  zone.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); input.click(); } });
  ['dragenter', 'dragover'].forEach((t) => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.add('over'); }));
  ['dragleave', 'drop'].forEach((t) => zone.addEventListener(t, (e) => { e.preventDefault(); zone.classList.remove('over'); }));
  zone.addEventListener('drop', (e) => give(e.dataTransfer.files));
  zone.input = input;
  return zone;
}

// Paste anywhere in the view: the first image on the clipboard.
export function onPaste(view, onFile) {
  const h = (e) => {
    if (!document.body.contains(view)) return document.removeEventListener('paste', h);
    const it = [...(e.clipboardData ? e.clipboardData.items : [])].find((i) => i.type.startsWith('image/'));
    if (it) onFile(it.getAsFile());
  };
  document.addEventListener('paste', h);
}

export function table(head, rows, opts = {}) {
  const t = el('table.list', el('thead', el('tr', head.map((h) => el('th' + (opts.num && opts.num.includes(h) ? '.num' : ''), h)))));
  const tb = el('tbody');
  rows.forEach((cells) => tb.append(el('tr', cells.map((c, i) => el('td' + (opts.num && opts.num.includes(head[i]) ? '.num' : ''), c instanceof Node ? c : String(c ?? ''))))));
  t.append(tb);
  return el('div.tablewrap', t);
}

// The face actions every face shown anywhere offers.
export function faceActions(faceId, { onDeleted, del } = {}) {
  return [
    el('a.button.small.secondary', { href: '#/search?face=' + encodeURIComponent(faceId), title: 'Where else does this face appear?' }, 'Find'),
    el('button.small.secondary', { type: 'button', onclick: () => addToPerson({ face_id: faceId }) }, 'Add to person'),
    el('a.button.small.secondary', { href: '#/erasure?face=' + encodeURIComponent(faceId), title: 'Erase every image of this person' }, 'Erase person'),
    del ? el('button.small.danger', { type: 'button', onclick: async (e) => {
      if (!confirm('Delete this face from the index? The photo stays.')) return;
      e.target.disabled = true;
      try { await api('/api/v1/faces/' + encodeURIComponent(faceId), { method: 'DELETE' }); if (onDeleted) onDeleted(); } catch (err) { alert(err.message); e.target.disabled = false; }
    } }, 'Delete face') : null,
  ];
}

// One result group of a search (an image, its best face, folded near-duplicates).
export function groupCard(g) {
  const best = g.faces && g.faces[0] ? g.faces[0] : g;
  const img = el('img', { src: best.thumb_url || best.crop_url || '', alt: 'matched face', loading: 'lazy' });
  const open = el('button.imgbtn', { type: 'button', title: 'Open the whole photo', onclick: () => openImage(g.image_sha256, { match: best.face_id }) }, img);
  const who = best.person_id ? el('a.person', { href: '#/people/p/' + best.person_id, title: 'everything of this person' }, best.person_name || 'this person\u2019s photos') : null;
  const meta = el('div.meta', bandLabel(g), who,
    g.site ? el('span', g.site) : null,
    el('span', urlLink(g.source_url, null), g.page_url ? ' · ' : null, urlLink(g.page_url, 'on page', 'page')));
  if (g.near_duplicates && g.near_duplicates.length) {
    meta.append(el('details.dups', el('summary', '+' + g.near_duplicates.length + ' near-duplicate' + (g.near_duplicates.length > 1 ? 's' : '')),
      ...g.near_duplicates.map((d) => el('div', fmtScore(d.score) + ' ', urlLink(d.source_url, null) || el('span.mono', d.image_sha256.slice(0, 12)),
        ' ', el('button.link.small', { type: 'button', onclick: () => openImage(d.image_sha256, { match: d.face_id }) }, 'open')))));
  }
  const alike = (g.faces || []).filter((f) => bandOf(f) !== 'different').length;
  if (alike > 1) meta.append(el('span.small.muted', alike + ' faces of this photo match'));
  const c = el('div.card.result', { dataset: { sha: g.image_sha256, band: bandOf(g) } }, open, meta, el('div.actions', faceActions(best.face_id)));
  return c;
}

// A plain indexed face (library, person samples).
export function faceCard(f, opts = {}) {
  const img = f.thumb_url || f.crop_url ? el('img', { src: f.thumb_url || f.crop_url, alt: 'face', loading: 'lazy' }) : el('div.noimg', '?');
  const top = f.image_sha256 ? el('button.imgbtn', { type: 'button', title: 'Open the whole photo', onclick: () => openImage(f.image_sha256, { match: f.face_id }) }, img) : img;
  return el('div.card.face', { dataset: { face: f.face_id || '' } }, top,
    el('div.meta', opts.caption || null, f.quality_score !== undefined ? el('span.muted', 'quality ' + f.quality_score.toFixed(2)) : null),
    f.face_id ? el('div.actions', faceActions(f.face_id, opts)) : opts.actions ? el('div.actions', opts.actions) : null);
}

// ---- the photo viewer: the whole source photo, every face boxed --------

const viewer = () => document.getElementById('viewer');

// Opens image sha in the viewer with the face `match` outlined; onChange is
// called after a face is deleted or the image erased.
export async function openImage(sha, { match, onChange } = {}) {
  const d = viewer();
  const body = el('div.dlg', loading('Loading the photo…'));
  d.replaceChildren(body);
  if (!d.open) d.showModal();
  let rec;
  try { rec = await api('/api/v1/images/' + sha); } catch (e) {
    body.replaceChildren(dlgHead('Photo'), failed(e));
    return;
  }
  const reload = () => { if (onChange) onChange(); openImage(sha, { match, onChange }); };
  const indexed = rec.faces_indexed || [], skipped = rec.faces_not_indexed || [];
  const boxes = indexed.map((f, i) => ({ bbox: f.bbox, label: String(i + 1), cls: f.face_id === match ? 'match' : '',
    title: 'face ' + (i + 1) + (f.face_id === match ? ' (the match)' : '') }))
    .concat(skipped.map((f) => ({ bbox: f.bbox, label: '×', cls: 'notindexed', title: 'not indexed: ' + reasonText(f) })));
  const src = rec.image_url || rec.thumbnail_url;
  // boxes are in the original's pixels; a thumbnail keeps its proportions
  const photo = src ? boxedPhoto(src, boxes, rec.width && rec.height ? [rec.width, rec.height] : null, 'the whole photo')
    : empty('The photo itself is not stored.');
  const title = shortUrl(rec.source_url) || rec.image_sha256.slice(0, 16) + '…';
  const erase = el('button.danger', { type: 'button', onclick: async () => {
    if (!confirm('Erase this image completely (faces, crops, thumbnails, the photo, its record)? It will not be indexed again.')) return;
    try { await api('/api/v1/images/' + sha, { method: 'DELETE' }); d.close(); if (onChange) onChange(); } catch (e) { alert(e.message); }
  } }, 'Erase image');
  body.replaceChildren(dlgHead(title, erase),
    el('p.small.muted', [rec.site, when(rec.created_at || rec.processed_at), rec.width ? rec.width + '×' + rec.height + ' px' : '', rec.status].filter(Boolean).join(' · '), ' ',
      urlLink(rec.source_url, 'source'), rec.page_url ? ' · ' : '', urlLink(rec.page_url, 'page it is on')),
    el('div.center', photo),
    el('h3', indexed.length + ' face' + (indexed.length === 1 ? '' : 's') + ' indexed' + (skipped.length ? ', ' + skipped.length + ' not indexed' : '')),
    indexed.length ? el('div.facelist', indexed.map((f, i) => faceCard(f, { caption: el('b', 'Face ' + (i + 1) + (f.face_id === match ? ' · the match' : '')), del: true, onDeleted: reload }))) : null,
    skipped.length ? el('ul.small.notindexed', skipped.map((f) => el('li', 'Not indexed: ' + reasonText(f) + (f.quality_score !== undefined ? ' (quality ' + Number(f.quality_score).toFixed(2) + ')' : '')))) : null);
}

// Why a face was not indexed, in words ("EXTREME_POSE" -> "extreme pose").
export function reasonText(f) {
  const rs = f.reasons || (f.reason ? [f.reason] : []);
  return rs.length ? rs.map((r) => String(r).toLowerCase().replace(/_/g, ' ')).join(', ') : 'no reason given';
}

function dlgHead(title, ...extra) {
  return el('div.dlghead', el('h2', { id: 'viewertitle' }, title), ...extra,
    el('button.secondary.close', { type: 'button', onclick: (e) => e.target.closest('dialog').close() }, 'Close'));
}

// ---- add a face to a person (identity), chosen or created here ---------

// sample: {face_id} or {image_b64, face_index}. Resolves when enrolled.
export async function addToPerson(sample) {
  const d = document.getElementById('picker');
  const status = el('p.status', { role: 'status' });
  const sel = el('select', { 'aria-label': 'person' }, el('option', { value: '' }, 'Loading people…'));
  const name = el('input', { type: 'text', placeholder: 'or a new person\'s name', 'aria-label': 'new person name' });
  const ok = el('button', { type: 'submit' }, 'Add');
  const form = el('form.dlg.stack', { method: 'dialog' },
    el('h2', { id: 'pickertitle' }, 'Add this face to a person'),
    el('label.field', 'Person', sel), el('label.field', 'New person', name), status,
    el('div.row.end', el('button.secondary', { type: 'button', onclick: () => d.close() }, 'Cancel'), ok));
  d.replaceChildren(form);
  d.showModal();
  try {
    const j = await api('/api/v1/identities');
    sel.replaceChildren(el('option', { value: '' }, j.identities.length ? '— choose —' : '— no person yet: name one below —'),
      ...j.identities.map((p) => el('option', { value: p.identity_id }, p.name + ' (' + p.n_samples + ')')));
  } catch (e) { setStatus(status, e.message, true); }
  return new Promise((resolve) => {
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      ok.disabled = true;
      try {
        let id = sel.value;
        if (!id) {
          if (!name.value.trim()) { setStatus(status, 'Choose a person or type a new name.', true); ok.disabled = false; return; }
          id = (await api('/api/v1/identities', { json: { name: name.value.trim() } })).identity_id;
        }
        const j = await api('/api/v1/identities/' + id + '/enroll', { json: sample });
        setStatus(status, 'Added: ' + j.n_samples + ' sample(s) now.');
        setTimeout(() => d.close(), 600);
        resolve(id);
      } catch (err) { setStatus(status, err.message, true); ok.disabled = false; }
    });
  });
}

// Page controls for cursor paging: prev (a stack of cursors) and next.
export function pager(state, onPage) {
  const prev = el('button.secondary', { type: 'button', disabled: state.stack.length === 0, onclick: () => onPage(state.stack.pop() ?? null, true) }, '← Newer');
  const next = el('button.secondary', { type: 'button', disabled: !state.next, onclick: () => { state.stack.push(state.cursor); onPage(state.next); } }, 'Older →');
  return el('div.pager', prev, el('span.muted', 'Page ' + (state.stack.length + 1)), next);
}

export { query };
