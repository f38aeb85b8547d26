// search.js - "where else does this face appear?": a photo (dropped, picked
// or pasted) with every face boxed, the best one chosen, a click on another
// shows that face's matches; results grouped by photo; or the matches of
// an indexed face (#/search?face=ID).
import { api, fileB64, waitProcessed } from './api.js';
import { el, loading, empty, failed, setStatus, boxedPhoto, dropZone, onPaste, groupCard, bandOf, addToPerson, openImage, reasonText } from './ui.js';
import { setPendingErase } from './erasure.js';

const TOP_K = 24;

export function render(main, { params }) {
  const st = { file: null, url: null, resp: null, selected: -1, topK: TOP_K, faceId: params.get('face') || null, seq: 0 };
  const status = el('p.status#status', { role: 'status' });
  const preview = el('div#preview.center');
  const minScore = el('input#minscore', { type: 'range', min: '0', max: '1', step: '0.01', value: '0', 'aria-label': 'minimum similarity' });
  const minOut = el('output', 'any');
  const showDifferent = el('input#different', { type: 'checkbox' });
  const every = el('input#all', { type: 'checkbox' });
  const ingestBtn = el('button#ingest.secondary', { type: 'button', disabled: true }, 'Add to index');
  const enrollBtn = el('button#enroll.secondary', { type: 'button', disabled: true }, 'Add face to a person');
  const eraseBtn = el('button#erase.danger', { type: 'button', disabled: true, title: 'Find every image of this person, then confirm' }, 'Erase this person…');
  const title = el('h2#rtitle', 'Where else does this face appear?');
  const results = el('div#results', empty('Choose a photo to search.', 'Drop it on the left, paste it (Ctrl+V), or click to pick one. Every face in it is boxed; click one to search it.'));
  const zone = dropZone(choose);
  zone.input.id = 'file';
  main.append(el('div.layout',
    el('section.panel.stack', el('h1', 'Search by face'), zone, preview,
      el('div.row', ingestBtn, enrollBtn, eraseBtn),
      el('label.field', el('span', 'Minimum similarity: ', minOut), minScore),
      el('div.row', el('label.check', showDifferent, 'show different people too'), el('label.check', every, 'every face')),
      status),
    el('section.panel', title, results)));
  onPaste(main, choose);

  minScore.addEventListener('input', () => { minOut.textContent = Number(minScore.value) > 0 ? Number(minScore.value).toFixed(2) : 'any'; show(); });
  showDifferent.addEventListener('change', show);
  every.addEventListener('change', show);
  ingestBtn.addEventListener('click', ingest);
  enrollBtn.addEventListener('click', async () => {
    if (!st.file || st.selected < 0) return;
    await addToPerson({ image_b64: await fileB64(st.file), face_index: st.selected });
  });
  eraseBtn.addEventListener('click', () => {
    setPendingErase({ file: st.file, face_index: st.resp && st.resp.query_faces.length > 1 ? st.selected : undefined });
    location.hash = '#/erasure';
  });

  function reset(msg) {
    st.resp = null; st.selected = -1;
    title.textContent = 'Where else does this face appear?';
    results.replaceChildren(msg);
    enrollBtn.disabled = eraseBtn.disabled = true;
  }

  function choose(f) {
    if (!f) return;
    if (st.url) URL.revokeObjectURL(st.url);
    st.file = f; st.url = URL.createObjectURL(f); st.topK = TOP_K; st.faceId = null;
    if (location.hash.includes('face=')) history.replaceState(null, '', '#/search');
    ingestBtn.disabled = false;
    preview.replaceChildren();
    run();
  }

  // Searches every face of the chosen photo at once (one analysis), so a
  // click on another face shows its matches without a second request.
  async function run() {
    const seq = ++st.seq;
    reset(loading('Finding the faces and their matches…'));
    setStatus(status, st.file.name + ' (' + Math.round(st.file.size / 1024) + ' KB)');
    const f = new FormData();
    f.append('image', st.file); f.append('top_k', String(st.topK)); f.append('faces', 'all'); f.append('group_by', 'image');
    const t0 = performance.now();
    let j;
    try { j = await api('/api/v1/search', { form: f }); } catch (e) {
      if (seq !== st.seq) return;
      preview.replaceChildren();
      reset(failed(e));
      setStatus(status, e.message, true);
      return;
    }
    if (seq !== st.seq) return;
    st.resp = j;
    const qf = j.query_faces || [];
    st.selected = qf.findIndex((q) => q.best);
    drawPreview();
    setStatus(status, qf.length + ' face' + (qf.length === 1 ? '' : 's') + ' in the photo · ' + Math.round(performance.now() - t0) + ' ms');
    if (!qf.length) {
      title.textContent = 'No face found';
      results.replaceChildren(empty('No face was found in this photo.', 'Faces smaller than about 20 px, strongly turned or covered are not detected. Try a larger or sharper photo.'));
      return;
    }
    enrollBtn.disabled = eraseBtn.disabled = false;
    show();
  }

  function drawPreview() {
    const qf = st.resp ? st.resp.query_faces : [];
    const boxes = qf.map((q, i) => ({ bbox: q.bbox, label: String(i + 1) + (q.best ? ' best' : ''), cls: i === st.selected ? 'selected' : '',
      title: 'Face ' + (i + 1) + ' (quality ' + (q.quality ?? 0).toFixed(2) + '): show its matches',
      onclick: (k) => { st.selected = k; every.checked = false; drawPreview(); show(); } }));
    const img = boxedPhoto(st.url, boxes, null, 'the photo searched');
    img.querySelector('img').addEventListener('error', () => preview.replaceChildren(el('p.small.muted', 'This browser cannot show the photo.')));
    preview.replaceChildren(img);
  }

  // Draws the groups of the selected face (or of every face), filtered by
  // the threshold, with a title whose counts are those shown.
  function show() {
    if (!st.resp) return;
    const qf = st.resp.query_faces && st.resp.query_faces.length ? st.resp.query_faces : [{ results: st.resp.results, groups: st.resp.groups }];
    if (st.selected < 0 && !st.faceId) return;
    const faces = every.checked && qf.length > 1 ? qf.map((q, i) => [i, q]) : [[Math.max(st.selected, 0), qf[Math.max(st.selected, 0)]]];
    const min = Number(minScore.value);
    const keep = (g) => g.score >= min && (showDifferent.checked || bandOf(g) !== 'different');
    const counts = { same_person: 0, possible: 0, different: 0 };
    const out = [];
    let hidden = 0, more = false;
    for (const [i, q] of faces) {
      const all = q.groups || [], gs = all.filter(keep); // the server's, group_by=image
      hidden += all.length - gs.length;
      // more can only bring weaker results: worth asking when the weakest shown passes
      if ((q.results || []).length >= st.topK && all.length && keep(all[all.length - 1])) more = true;
      gs.forEach((g) => counts[bandOf(g)]++);
      const grid = el('div.grid', gs.map(groupCard));
      if (faces.length > 1) out.push(el('h3.facegroup', { dataset: { face: String(i) } }, 'Face ' + (i + 1) + ' · ' + gs.length + ' photo' + (gs.length === 1 ? '' : 's')));
      out.push(gs.length ? grid : empty(all.length ? 'No match at this threshold.' : 'Nothing indexed looks like this face.',
        all.length ? hidden + ' weaker result(s) hidden: lower the minimum similarity or tick "show different people too".' : 'Add photos from the Library, a crawl or "Add to index".'));
    }
    const n = counts.same_person + counts.possible + counts.different;
    const parts = [];
    if (counts.same_person) parts.push(counts.same_person + ' same person');
    if (counts.possible) parts.push(counts.possible + ' possible');
    if (counts.different) parts.push(counts.different + ' different');
    title.textContent = n ? n + ' photo' + (n === 1 ? '' : 's') + ': ' + parts.join(', ') : 'No match';
    if (more && st.topK < 1000) out.push(el('div.pager', el('button#more.secondary', { type: 'button', onclick: () => { st.topK = Math.min(1000, st.topK * 2); st.faceId ? byFace() : run(); } }, 'More results')));
    results.replaceChildren(...out);
  }

  async function ingest() {
    if (!st.file) return;
    const f = new FormData(); f.append('image', st.file);
    ingestBtn.disabled = true;
    setStatus(status, 'Uploading…');
    try {
      const j = await api('/api/v1/ingest', { form: f });
      setStatus(status, 'Queued; finding and indexing its faces…');
      const rec = await waitProcessed(j.image_sha256);
      const n = (rec.faces_indexed || []).length, skipped = rec.faces_not_indexed || [];
      const why = skipped.map(reasonText);
      const msg = rec.status === 'failed' ? 'Could not process it: ' + (rec.error || 'see the Dashboard')
        : 'Indexed ' + n + ' face' + (n === 1 ? '' : 's') + (skipped.length ? '; ' + skipped.length + ' not indexed (' + [...new Set(why)].join(', ') + ')' : '') + '.';
      setStatus(status, msg, rec.status === 'failed');
      status.append(' ', el('button.link', { type: 'button', onclick: () => openImage(j.image_sha256) }, 'Open it'));
    } catch (e) { setStatus(status, e.message, true); }
    ingestBtn.disabled = false;
  }

  // Matches of an indexed face (from "Find" anywhere in the app).
  async function byFace() {
    const seq = ++st.seq;
    reset(loading('Searching…'));
    try {
      const [face, j] = await Promise.all([api('/api/v1/faces/' + encodeURIComponent(st.faceId)),
        api('/api/v1/search', { json: { face_id: st.faceId, top_k: st.topK, group_by: 'image' } })]);
      if (seq !== st.seq) return;
      preview.replaceChildren(el('div.card.face', el('img', { src: face.thumb_url || face.crop_url, alt: 'the face searched' }),
        el('div.meta', el('b', 'An indexed face'), el('button.link', { type: 'button', onclick: () => openImage(face.image_sha256, { match: st.faceId }) }, 'open its photo'))));
      setStatus(status, 'Searching by an indexed face (it is not listed as its own match).');
      st.resp = { query_faces: [], results: j.results, groups: j.groups };
      st.selected = 0;
      show();
    } catch (e) { if (seq === st.seq) { reset(failed(e)); setStatus(status, e.message, true); } }
  }
  if (st.faceId) byFace();
}
