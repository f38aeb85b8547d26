// crawls.js - start a crawl of a site, follow every job with live counts
// (pages, images saved / duplicate / skipped, processed, faces, errors),
// cancel one that is queued or running.
import { api } from './api.js';
import { el, loading, empty, failed, setStatus, table, when } from './ui.js';

const LIVE = new Set(['queued', 'running']);

export function render(main) {
  const url = el('input#crawlurl', { type: 'url', placeholder: 'https://example.org/', required: true, 'aria-label': 'address of the first page' });
  const depth = el('input#depth', { type: 'number', min: '0', max: '10', value: '1' });
  const pages = el('input#maxpages', { type: 'number', min: '1', max: '100000', value: '100' });
  const face = el('input#requireface', { type: 'checkbox' });
  const status = el('p.status#crawlstatus', { role: 'status' });
  const jobs = el('div#jobs', loading());
  const form = el('form.stack', { onsubmit: start },
    el('label.field', 'First page', url),
    el('div.row', el('label.field', 'Link depth', depth), el('label.field', 'At most pages', pages)),
    el('label.check', face, 'keep only images with a face'),
    el('button#crawl', { type: 'submit' }, 'Start crawl'), status);
  main.append(el('div.layout',
    el('section.panel.stack', el('h1', 'Crawl a site'),
      el('p.small.muted', 'visage follows links on the same site up to the depth, honours robots.txt, and indexes the faces of every image it finds.'), form),
    el('section.panel', el('h2', 'Jobs'), jobs)));

  async function start(e) {
    e.preventDefault();
    setStatus(status, 'Starting…');
    try {
      const j = await api('/api/v1/crawl', { json: { url: url.value.trim(), depth: Number(depth.value), max_pages: Number(pages.value), require_face: face.checked } });
      setStatus(status, 'Crawl ' + j.id.slice(0, 8) + ' queued.');
      refresh();
    } catch (err) { setStatus(status, err.message, true); }
  }

  const counts = (j) => el('span', j.pages_fetched + ' pages · ' + j.images_saved + ' saved · ' + j.images_duplicate + ' duplicate · ' +
    j.images_skipped + ' skipped · ' + j.images_processed + ' processed · ' + j.faces_found + ' faces' +
    (j.errors ? ' · ' + j.errors + ' errors' : '') + (j.robots_blocked ? ' · ' + j.robots_blocked + ' blocked by robots.txt' : ''));

  function row(j) {
    const cancel = LIVE.has(j.state) ? el('button.small.danger.cancel', { type: 'button', onclick: async () => {
      cancel.disabled = true;
      try { await api('/api/v1/crawl/' + j.id, { method: 'DELETE' }); refresh(); } catch (e) { setStatus(status, e.message, true); cancel.disabled = false; }
    } }, 'Cancel') : '';
    const stateCell = el('span', el('span.tag.' + j.state, j.state), j.error ? el('div.small.muted', j.error) : null);
    return [el('span.mono', { title: j.seed_url }, j.seed_url), stateCell, j.pages_fetched, j.images_saved, j.images_duplicate, j.images_skipped,
      j.images_processed, j.faces_found, j.errors, when(j.started_at || j.created_at), cancel];
  }

  let timer = null, stopped = false;
  async function refresh() {
    clearTimeout(timer);
    try {
      const j = await api('/api/v1/crawl?limit=50');
      if (stopped) return;
      if (!j.jobs.length) jobs.replaceChildren(empty('No crawl yet.', 'Give the address of a page to start one.'));
      else {
        const t = table(['site', 'state', 'pages', 'saved', 'duplicate', 'skipped', 'processed', 'faces', 'errors', 'started', ''], j.jobs.map(row),
          { num: ['pages', 'saved', 'duplicate', 'skipped', 'processed', 'faces', 'errors'] });
        t.querySelectorAll('tbody tr').forEach((tr, i) => { tr.dataset.job = j.jobs[i].id; tr.dataset.state = j.jobs[i].state; tr.title = counts(j.jobs[i]).textContent; });
        jobs.replaceChildren(t);
      }
      // live while a job runs or its images are still being processed
      const busy = j.jobs.some((x) => LIVE.has(x.state) || (x.state === 'done' && x.images_processed < x.images_saved));
      timer = setTimeout(refresh, busy ? 1000 : 5000);
    } catch (e) { if (!stopped) { jobs.replaceChildren(failed(e)); timer = setTimeout(refresh, 5000); } }
  }
  refresh();
  return () => { stopped = true; clearTimeout(timer); };
}
