// people.js - identities: the list with a face and a sample count, "who is
// this?" (identify), a new person; a person's page with its samples
// (remove one), enrolment from photos (choosing the face when there are
// several), verification of a photo with a plain yes/no and its score, and
// the way to erase the person's images.
import { api, fileB64 } from './api.js';
import { el, loading, empty, failed, setStatus, dropZone, boxedPhoto, faceCard, when } from './ui.js';

export function render(main, { arg, params }) {
  if (arg.startsWith('p/')) return found(main, arg.slice(2));
  return arg ? person(main, arg) : list(main, params);
}

function cover(p) {
  const url = p.cover_url || (p.cover && (p.cover.thumb_url || p.cover.crop_url));
  return url ? el('img', { src: url, alt: p.name || 'person', loading: 'lazy' }) : el('div.noimg', (p.name || '?').slice(0, 1).toUpperCase());
}

// A person found by clustering, as a card of the grid.
function foundCard(p) {
  const what = p.images + ' photo' + (p.images === 1 ? '' : 's') + (p.sites ? ' · ' + p.sites + ' site' + (p.sites === 1 ? '' : 's') : '');
  return el('a.card.person.found', { href: '#/people/p/' + p.person_id, dataset: { id: p.person_id } }, cover(p),
    el('div.meta', el('b', p.name || 'Unnamed'), el('span.muted', what),
      p.watched ? el('span.tag.running', 'watched') : null, p.ignored ? el('span.tag', 'ignored') : null));
}

function list(main, params) {
  const grid = el('div#people', loading());
  const foundGrid = el('div#found', loading());
  const sort = el('select#peoplesort', ...[['images', 'most photos'], ['sites', 'most sites'], ['faces', 'most faces']].map(([v, t]) => el('option', { value: v, selected: v === (params.get('sort') || 'images') }, t)));
  const showIgnored = el('input#showignored', { type: 'checkbox' });
  const foundMore = el('div');
  const name = el('input#newname', { type: 'text', placeholder: 'Name', 'aria-label': 'name of the new person', required: true });
  const status = el('p.status', { role: 'status' });
  const who = el('div#identify');
  const create = el('form.row', { onsubmit: async (e) => {
    e.preventDefault();
    try {
      const j = await api('/api/v1/identities', { json: { name: name.value.trim() } });
      location.hash = '#/people/' + j.identity_id;
    } catch (err) { setStatus(status, err.message, true); }
  } }, name, el('button', { type: 'submit' }, 'New person'));
  main.append(el('div.layout',
    el('section.panel.stack', el('h1', 'People'),
      el('p.small.muted', 'A person is a name and a few enrolled photos of the face. Verify a photo against a person, or ask who is in a photo.'),
      create, status,
      el('h2', 'Who is this?'), dropZone(identify, 'Drop a photo to identify its best face'), who),
    el('section.panel.stack', el('div.row', el('h2.spacer', 'Found in your photos'), el('label.field', 'Sort', sort), el('label.check', showIgnored, 'show ignored')),
      el('p.small.muted', 'visage groups the faces it indexes into people on its own; a person appears once three photos of them are in.'),
      foundGrid, foundMore, el('h2', 'Enrolled'), grid)));
  let cursor = null;
  async function loadFound(more) {
    if (!more) { cursor = null; foundGrid.replaceChildren(loading()); }
    try {
      const j = await api('/api/v1/people?sort=' + sort.value + '&limit=48' + (showIgnored.checked ? '&include_ignored=true' : '') + (cursor ? '&cursor=' + cursor : ''));
      cursor = j.next_cursor || null;
      const cards = j.people.map(foundCard);
      if (!more) foundGrid.replaceChildren(cards.length ? el('div.grid', cards) : empty('Nobody found yet.', 'People appear here as photos are indexed: three photos of one person make a person.'));
      else foundGrid.querySelector('.grid').append(...cards);
      foundMore.replaceChildren(cursor ? el('div.pager', el('button.secondary', { type: 'button', onclick: () => loadFound(true) }, 'More people')) : '');
    } catch (e) { foundGrid.replaceChildren(failed(e)); }
  }
  sort.addEventListener('change', () => loadFound(false));
  showIgnored.addEventListener('change', () => loadFound(false));
  loadFound(false);

  async function identify(f) {
    who.replaceChildren(loading('Comparing with every person…'));
    try {
      const fd = new FormData(); fd.append('image', f);
      const j = await api('/api/v1/identities/identify', { form: fd });
      who.replaceChildren(j.result === 'match'
        ? el('div.verdict.yes', 'This is ', el('a', { href: '#/people/' + j.identity.identity_id }, j.identity.name), ' (similarity ' + j.identity.similarity.toFixed(3) + ')')
        : el('div.verdict.unknown', 'Unknown: nobody enrolled scores above ' + j.threshold.toFixed(3) + '.'));
    } catch (e) { who.replaceChildren(failed(e)); }
  }

  (async () => {
    try {
      const j = await api('/api/v1/identities');
      if (!j.identities.length) return grid.replaceChildren(empty('No enrolled person yet.', 'Name a person found above, or create one with a name and add photos of the face, or use "Add to person" on any search result.'));
      grid.replaceChildren(el('div.grid', j.identities.map((p) => el('a.card.person', { href: '#/people/' + p.identity_id, dataset: { id: p.identity_id } },
        cover(p), el('div.meta', el('b', p.name), el('span.muted', p.n_samples + ' sample' + (p.n_samples === 1 ? '' : 's')))))));
    } catch (e) { grid.replaceChildren(failed(e)); }
  })();
}

// Which face of a photo: 0 when it has one, else the one clicked in a
// dialog; null when cancelled or no face.
async function chooseFace(file) {
  const fd = new FormData(); fd.append('image', file); fd.append('top_k', '1');
  const j = await api('/api/v1/search', { form: fd });
  const qf = j.query_faces || [];
  if (qf.length <= 1) return qf.length ? 0 : null;
  const d = document.getElementById('picker');
  const url = URL.createObjectURL(file);
  return new Promise((resolve) => {
    let picked = null;
    const boxes = qf.map((q, i) => ({ bbox: q.bbox, label: String(i + 1), title: 'Face ' + (i + 1), onclick: (k) => { picked = k; d.close(); } }));
    d.replaceChildren(el('div.dlg.stack', el('h2', { id: 'pickertitle' }, file.name + ' shows ' + qf.length + ' faces: click the one to add'),
      el('div.center', boxedPhoto(url, boxes, null, file.name)),
      el('div.row.end', el('button.secondary', { type: 'button', onclick: () => d.close() }, 'Skip this photo'))));
    d.addEventListener('close', () => { URL.revokeObjectURL(url); resolve(picked); }, { once: true });
    d.showModal();
  });
}

async function person(main, id) {
  main.append(loading());
  let p;
  try { p = await api('/api/v1/identities/' + encodeURIComponent(id)); } catch (e) {
    main.replaceChildren(el('p', el('a', { href: '#/people' }, '← People')), failed(e));
    return;
  }
  const status = el('p.status#personstatus', { role: 'status' });
  const avatar = el('div.avatar', cover(p));
  const verdict = el('div#verdict');
  const samples = el('div#samples');
  const withFace = (p.samples || []).find((s) => s.face_id);
  const del = el('button.danger', { type: 'button', onclick: async () => {
    if (!confirm('Delete ' + p.name + '? Their photos stay indexed; only the person and the samples go.')) return;
    try { await api('/api/v1/identities/' + id, { method: 'DELETE' }); location.hash = '#/people'; } catch (e) { setStatus(status, e.message, true); }
  } }, 'Delete person');
  const addZone = dropZone(addPhotos, 'Add photos of ' + p.name + ' (drop or click; several at once)', { multiple: true });
  addZone.input.id = 'enrollfiles';
  main.replaceChildren(el('p', el('a', { href: '#/people' }, '← People')),
    el('div.layout',
      el('section.panel.stack', el('div.row', avatar, el('div', el('h1#personname', p.name), el('p.muted.small', 'since ' + when(p.created_at)))),
        addZone, status,
        el('h2', 'Verify a photo'), dropZone(verify, 'Is this ' + p.name + '? Drop a photo'), verdict,
        el('h2', 'Erase'),
        withFace ? el('a.button.danger', { href: '#/erasure?face=' + encodeURIComponent(withFace.face_id) }, 'Erase every image of ' + p.name + '…')
          : el('p.small.muted', 'To erase every image of this person, use one of their photos in the Erasure view.'),
        el('div.row', del)),
      el('section.panel', el('h2#samplestitle', ''), samples)));
  drawSamples();

  async function addPhotos(files) {
    let added = 0;
    for (const f of files) {
      setStatus(status, 'Adding ' + f.name + '…');
      try {
        const face = await chooseFace(f);
        if (face === null) { setStatus(status, f.name + ': no face chosen or found; skipped.', true); continue; }
        await api('/api/v1/identities/' + id + '/enroll', { json: { image_b64: await fileB64(f), face_index: face } });
        added++;
      } catch (e) { setStatus(status, f.name + ': ' + e.message, true); await reload(); return; }
    }
    await reload();
    setStatus(status, 'Added ' + added + ' photo' + (added === 1 ? '' : 's') + '.');
  }

  async function verify(f) {
    verdict.replaceChildren(loading('Comparing…'));
    try {
      const fd = new FormData(); fd.append('image', f);
      const j = await api('/api/v1/identities/' + id + '/verify', { form: fd });
      verdict.replaceChildren(j.match
        ? el('div.verdict.yes', 'Yes — this is ' + p.name + ' (similarity ' + j.similarity.toFixed(3) + ', threshold ' + j.threshold.toFixed(3) + ')')
        : el('div.verdict.no', 'No — not ' + p.name + ' (similarity ' + j.similarity.toFixed(3) + ', below ' + j.threshold.toFixed(3) + ')'));
    } catch (e) { verdict.replaceChildren(failed(e)); }
  }

  async function reload() {
    try { p = await api('/api/v1/identities/' + encodeURIComponent(id)); avatar.replaceChildren(cover(p)); drawSamples(); } catch (e) { setStatus(status, e.message, true); }
  }

  function drawSamples() {
    const ss = p.samples || [];
    document.getElementById('samplestitle').textContent = ss.length + ' sample' + (ss.length === 1 ? '' : 's');
    if (!ss.length) return samples.replaceChildren(empty('No photo enrolled yet.', 'Add two or three clear photos of the face; verification needs at least one.'));
    samples.replaceChildren(el('div.grid', ss.map((s) => {
      const rm = el('button.small.danger', { type: 'button', onclick: async () => {
        rm.disabled = true;
        try { await api('/api/v1/identities/' + id + '/samples/' + encodeURIComponent(s.sample_id), { method: 'DELETE' }); await reload(); setStatus(status, 'Sample removed.'); }
        catch (e) { setStatus(status, e.message, true); rm.disabled = false; }
      } }, 'Remove');
      const c = faceCard({ ...s, face_id: null }, { actions: [rm] });
      c.dataset.sample = s.sample_id;
      if (s.face_id) c.querySelector('.actions').prepend(el('a.button.small.secondary', { href: '#/search?face=' + encodeURIComponent(s.face_id) }, 'Find'));
      return c;
    })));
  }
}

// A person found by clustering: its faces (select some to split them out),
// the sites it appears on, and the decisions: name, watch, ignore, merge.
async function found(main, id) {
  main.append(loading());
  let p;
  const status = el('p.status#foundstatus', { role: 'status' });
  const faces = el('div#foundfaces');
  const more = el('div');
  const title = el('h1#foundname');
  const avatar = el('div.avatar');
  const sites = el('ul.small#foundsites');
  const nameIn = el('input#personname', { type: 'text', placeholder: 'Name', 'aria-label': 'name' });
  const watch = el('input#watch', { type: 'checkbox' });
  const ignore = el('input#ignore', { type: 'checkbox' });
  const mergeSel = el('select#mergewith', { 'aria-label': 'person to merge in' });
  const splitBtn = el('button#split.secondary', { type: 'button', disabled: true }, 'Split selected into a new person');
  const selected = new Set();
  let cursor = null;
  const act = async (what, body, ok) => {
    try { const j = await api('/api/v1/people/' + id + '/' + what, { json: body }); setStatus(status, ok(j)); return j; }
    catch (e) { setStatus(status, e.message, true); return null; }
  };
  function header() {
    title.textContent = p.name || 'Unnamed person';
    avatar.replaceChildren(cover(p));
    nameIn.value = p.name || '';
    watch.checked = p.watched; ignore.checked = p.ignored;
    const sl = p.site_list || [];
    sites.replaceChildren(...(sl.length ? sl.map((x) => el('li', x.site + ' · ' + x.faces + ' face' + (x.faces === 1 ? '' : 's')))
      : [el('li.muted', 'No site recorded (photos added without one).')]));
  }
  function faceTile(f) {
    const box = el('input', { type: 'checkbox', 'aria-label': 'select this face' });
    box.addEventListener('change', () => { box.checked ? selected.add(f.face_id) : selected.delete(f.face_id); splitBtn.disabled = !selected.size; });
    const c = faceCard(f, { caption: el('label.check', box, f.site || 'select') });
    return c;
  }
  async function loadFaces(next) {
    try {
      const j = await api('/api/v1/people/' + encodeURIComponent(id) + '?limit=48' + (next ? '&cursor=' + next : ''));
      if (!next) { p = j; header(); faces.replaceChildren(el('div.grid', j.face_list.map(faceTile))); }
      else faces.querySelector('.grid').append(...j.face_list.map(faceTile));
      cursor = j.next_cursor || null;
      more.replaceChildren(cursor ? el('div.pager', el('button.secondary', { type: 'button', onclick: () => loadFaces(cursor) }, 'More faces')) : '');
    } catch (e) { main.replaceChildren(el('p', el('a', { href: '#/people' }, '← People')), failed(e)); }
  }
  await loadFaces(null);
  if (!p) return;
  try {
    const j = await api('/api/v1/people?limit=200&include_ignored=true');
    mergeSel.replaceChildren(el('option', { value: '' }, '— merge another person into this one —'),
      ...j.people.filter((x) => x.person_id !== id).map((x) => el('option', { value: x.person_id }, (x.name || 'Unnamed') + ' (' + x.images + ' photos)')));
  } catch { /* merge stays empty */ }
  const nameForm = el('form.row', { onsubmit: async (e) => {
    e.preventDefault();
    const j = await act('name', { name: nameIn.value.trim() }, (x) => 'Named ' + x.name + (x.samples_enrolled !== undefined ? '; ' + x.samples_enrolled + ' of the best faces enrolled, so verify and identify know them.' : '.'));
    if (j) { p = { ...p, ...j }; header(); }
  } }, nameIn, el('button', { type: 'submit' }, 'Name'));
  watch.addEventListener('change', async () => { const j = await act('watch', { watched: watch.checked }, (x) => x.watched ? 'Watching: a new photo of this person records an event (and calls the webhook).' : 'Not watched.'); if (j) p = { ...p, ...j }; });
  ignore.addEventListener('change', async () => { const j = await act('ignore', { ignored: ignore.checked }, (x) => x.ignored ? 'Ignored: hidden from the list.' : 'Shown in the list again.'); if (j) p = { ...p, ...j }; });
  mergeSel.addEventListener('change', async () => {
    if (!mergeSel.value) return;
    const j = await act('merge', { person_id: mergeSel.value }, (x) => 'Merged: ' + x.faces + ' faces now.');
    if (j) loadFaces(null);
  });
  splitBtn.addEventListener('click', async () => {
    try {
      const j = await api('/api/v1/people/' + id + '/split', { json: { face_ids: [...selected] } });
      location.hash = '#/people/p/' + j.person_id;
    } catch (e) { setStatus(status, e.message, true); }
  });
  const eraseLink = p.cover ? el('a.button.danger', { href: '#/erasure?face=' + encodeURIComponent(p.cover.face_id) }, 'Erase every image of this person…') : null;
  main.replaceChildren(el('p', el('a', { href: '#/people' }, '← People')),
    el('div.layout',
      el('section.panel.stack', el('div.row', avatar, el('div', title, el('p.muted.small', p.images + ' photos · ' + p.faces + ' faces'))),
        nameForm, el('label.check', watch, 'watch: tell me when a new photo of this person arrives'),
        el('label.check', ignore, 'not a person / ignore'), mergeSel, status,
        el('h2', 'Sites'), sites, eraseLink),
      el('section.panel.stack', el('div.row', el('h2.spacer', 'Faces'), splitBtn), faces, more)));
}
