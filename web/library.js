// library.js - the tenant's images, newest first, a page at a time, by site
// and date; an image opens with its faces boxed (indexed and not, with
// reasons), to delete a face or erase the image.
import { api, query } from './api.js';
import { el, loading, empty, failed, when, openImage, pager, urlLink } from './ui.js';

export function render(main, { params }) {
  const st = { cursor: null, next: null, stack: [] };
  const site = el('input#site', { type: 'text', placeholder: 'example.org', value: params.get('site') || '' });
  const since = el('input#since', { type: 'date' });
  const until = el('input#until', { type: 'date' });
  const status = el('select#statusfilter', el('option', { value: '' }, 'any'), ...['done', 'queued', 'processing', 'failed'].map((s) => el('option', { value: s }, s)));
  const size = el('select#pagesize', ...[12, 24, 48, 96].map((n) => el('option', { value: String(n), selected: n === 24 }, String(n))));
  const list = el('div#library', loading());
  const nav = el('div');
  const form = el('form.row', { onsubmit: (e) => { e.preventDefault(); st.stack = []; load(null); } },
    el('label.field', 'Site', site), el('label.field', 'From', since), el('label.field', 'Until', until),
    el('label.field', 'Status', status), el('label.field', 'Per page', size),
    el('button', { type: 'submit' }, 'Filter'));
  main.append(el('section.panel.stack', el('h1', 'Library'), el('p.muted.small', 'Every photo indexed for this tenant, newest first. Open one to see its faces.'), form, list, nav));
  size.addEventListener('change', () => { st.stack = []; load(null); });
  status.addEventListener('change', () => { st.stack = []; load(null); });

  // until is a day: everything before the next midnight (UTC, as the API)
  const dayAfter = (d) => (d ? new Date(Date.parse(d + 'T00:00:00Z') + 86400000).toISOString().slice(0, 10) : '');

  async function load(cursor) {
    st.cursor = cursor;
    list.replaceChildren(loading());
    try {
      const j = await api('/api/v1/images' + query({ limit: size.value, cursor, site: site.value.trim(), since: since.value, until: dayAfter(until.value), status: status.value }));
      st.next = j.next_cursor || null;
      const imgs = j.images || [];
      if (!imgs.length && !cursor) {
        const filtered = site.value || since.value || until.value || status.value;
        list.replaceChildren(empty(filtered ? 'No photo matches these filters.' : 'Nothing indexed yet.',
          filtered ? 'Clear a filter to see more.' : 'Add photos from Search ("Add to index"), start a crawl, or run: visage ingest --server http://127.0.0.1:8080 FOLDER'));
      } else {
        list.replaceChildren(el('div.grid', imgs.map(card)));
      }
      nav.replaceChildren(imgs.length || cursor ? pager(st, load) : '');
    } catch (e) { list.replaceChildren(failed(e)); nav.replaceChildren(); }
  }

  function card(i) {
    const img = i.thumbnail_url ? el('img', { src: i.thumbnail_url, alt: 'photo', loading: 'lazy' }) : el('div.noimg', i.status === 'failed' ? '!' : '…');
    const faces = i.faces_indexed !== undefined ? i.faces_indexed + ' face' + (i.faces_indexed === 1 ? '' : 's') + (i.faces_not_indexed ? ' (+' + i.faces_not_indexed + ' not indexed)' : '') : '';
    return el('div.card.image', { dataset: { sha: i.image_sha256 } },
      el('button.imgbtn', { type: 'button', title: 'Open', onclick: () => openImage(i.image_sha256, { onChange: () => load(st.cursor) }) }, img),
      el('div.meta', el('span', el('span.tag.' + i.status, i.status), ' ', faces),
        i.site ? el('span', i.site) : null, urlLink(i.source_url, null), el('span.muted', when(i.created_at))));
  }

  load(null);
  if (params.get('image')) openImage(params.get('image'), { onChange: () => load(st.cursor) });
}
