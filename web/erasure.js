// erasure.js - erasing a person: a photo (or a face from a result or a
// person) names them, a dry run lists every image that would go, a second
// click erases them (and, by default, blocks their new photos); the blocks
// (lift one) and the erasure log.
import { api, fileB64, query } from './api.js';
import { el, loading, empty, failed, setStatus, dropZone, table, when, urlLink, fmtScore } from './ui.js';

// A photo handed over by another view ("Erase this person…" in Search).
let pending = null;
export function setPendingErase(p) { pending = p; }

export function render(main, { params }) {
  const status = el('p.status#erasestatus', { role: 'status' });
  const who = el('div#erasewho');
  const title = el('h2#erasetitle', 'Who should be erased?');
  const results = el('div#eraseresults', empty('Choose a photo of the person.', 'Every image of this tenant showing them will be listed first; nothing is erased until you confirm.'));
  const block = el('input#block', { type: 'checkbox', checked: true });
  const note = el('input#blocknote', { type: 'text', placeholder: 'note (e.g. request #123)', 'aria-label': 'note' });
  const confirmBtn = el('button#eraseconfirm.danger', { type: 'button' }, 'Erase');
  const cancelBtn = el('button#erasecancel.secondary', { type: 'button' }, 'Cancel');
  const bar = el('div#erasebar.bar', { hidden: true }, el('label.check', block, 'also erase their new photos when they arrive'), note, confirmBtn, cancelBtn);
  const blocks = el('div#blocks', loading());
  const log = el('div#erasurelog', loading());
  main.append(el('div.layout',
    el('section.panel.stack', el('h1', 'Erasure'),
      el('p.small.muted', 'Erasing an image removes its faces, crops, thumbnails, the photo and its record; the same bytes are refused if they come again.'),
      dropZone(choose, 'Drop a photo of the person to erase'), who, status),
    el('section.panel', title, bar, results)),
    el('section.panel', el('h2', 'Blocks: new photos of these people are erased on arrival'), blocks),
    el('section.panel', el('h2', 'Erasure log (newest first)'), log));

  let q = null; // the erase request naming the person
  async function preview(query) {
    q = query;
    bar.hidden = true;
    results.replaceChildren(loading('Finding every image of this person…'));
    setStatus(status, '');
    try {
      const j = await api('/api/v1/erase', { json: { ...q, dry_run: true } });
      title.textContent = j.images.length ? j.images.length + ' image(s) of this person would be erased' : 'No image of this person';
      results.replaceChildren(j.images.length ? el('div.grid', j.images.map((i) => el('div.card', { dataset: { sha: i.image_sha256 } },
        i.thumbnail_url ? el('img', { src: i.thumbnail_url, alt: 'image to erase', loading: 'lazy' }) : el('div.noimg', '?'),
        el('div.meta', el('span.band.same_person', 'similarity ' + fmtScore(i.score)), i.site ? el('span', i.site) : null,
          urlLink(i.source_url, null), urlLink(i.page_url, 'on page', 'page')))))
        : empty('No indexed image shows this person.', 'You can still block their new photos.'));
      confirmBtn.textContent = 'Erase ' + j.images.length + ' image(s)';
      bar.hidden = false;
      setStatus(status, j.complete ? 'Check the images, then confirm.' : 'More images match than shown: erasing runs until none is left.');
    } catch (e) { q = null; title.textContent = 'Who should be erased?'; results.replaceChildren(failed(e)); setStatus(status, e.message, true); }
  }

  async function choose(f, faceIndex) {
    who.replaceChildren(el('p.small', 'Person in ', el('b', f.name), faceIndex !== undefined ? ' (face ' + (faceIndex + 1) + ')' : ''));
    const b64 = await fileB64(f);
    preview(faceIndex !== undefined ? { image_b64: b64, face_index: faceIndex } : { image_b64: b64 });
  }

  cancelBtn.addEventListener('click', () => { bar.hidden = true; q = null; setStatus(status, 'Nothing erased.'); });
  confirmBtn.addEventListener('click', async () => {
    if (!q) return;
    bar.hidden = true;
    setStatus(status, 'Erasing…');
    try {
      const j = await api('/api/v1/erase', { json: { ...q, block: block.checked, note: note.value.trim() || undefined } });
      results.replaceChildren();
      title.textContent = 'Erased ' + j.images_erased + ' image(s)';
      setStatus(status, 'Erased ' + j.images_erased + ' image(s), ' + j.faces_deleted + ' face(s)' +
        (j.block_id ? ' · new photos of this person will be erased on arrival (block ' + j.block_id.slice(0, 8) + ')' : ''));
      loadBlocks(); loadLog();
    } catch (e) { setStatus(status, e.message, true); }
    q = null;
  });

  async function loadBlocks() {
    try {
      const j = await api('/api/v1/erase/blocks');
      if (!j.blocks.length) return blocks.replaceChildren(empty('No block.'));
      blocks.replaceChildren(table(['since', 'note', 'threshold', 'block', ''], j.blocks.map((b) => {
        const lift = el('button.small.secondary.lift', { type: 'button', onclick: async () => {
          try { await api('/api/v1/erase/blocks/' + encodeURIComponent(b.block_id), { method: 'DELETE' }); setStatus(status, 'Block lifted; the images it erased stay erased.'); loadBlocks(); loadLog(); }
          catch (e) { setStatus(status, e.message, true); }
        } }, 'Lift');
        return [when(b.created_at), b.note || '', b.threshold.toFixed(2), el('span.mono', b.block_id), lift];
      })));
    } catch (e) { blocks.replaceChildren(failed(e)); }
  }

  function logText(e) {
    if (e.what === 'person') return e.images_erased + ' image(s), ' + e.faces_deleted + ' face(s)' + (e.block_id ? ', blocked' : '') + (e.note ? ' · ' + e.note : '');
    if (e.what === 'image') return e.image_sha256 + ' (' + e.faces_deleted + ' face(s))';
    if (e.what === 'face') return e.face_id;
    if (e.what === 'blocked_on_arrival') return e.image_sha256;
    return e.block_id || '';
  }
  async function loadLog() {
    try {
      const j = await api('/api/v1/erase/log' + query({ limit: 100 }));
      if (!j.entries.length) return log.replaceChildren(empty('Nothing erased yet.'));
      log.replaceChildren(table(['when', 'what', 'detail'], j.entries.map((e) => [when(e.at), e.what.replace(/_/g, ' '), el('span.mono', logText(e))])));
    } catch (e) { log.replaceChildren(failed(e)); }
  }
  loadBlocks(); loadLog();

  if (params.get('face')) {
    who.replaceChildren(el('p.small', 'Person of indexed face ', el('span.mono', params.get('face'))));
    preview({ face_id: params.get('face') });
  } else if (pending && pending.file) {
    const p = pending; pending = null;
    choose(p.file, p.face_index);
  }
}
