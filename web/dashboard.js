// dashboard.js - what the server holds for this tenant and how processing
// goes: images by status, faces, people, queue depth, rate, dead letters
// with their errors. Refreshed every 2 s while shown.
import { api } from './api.js';
import { el, loading, empty, failed, table, when } from './ui.js';

export function render(main) {
  const stats = el('div#stats.stats', loading());
  const dead = el('div#dead', loading());
  main.append(el('section.panel.stack', el('h1', 'Dashboard'), stats),
    el('section.panel', el('h2', 'Dead letters: images that could not be processed'), dead));
  const stat = (n, label, id) => el('div.stat', { dataset: { stat: id } }, el('b', String(n ?? '–')), el('span', label));
  let timer = null, stopped = false;
  async function refresh() {
    try {
      const [s, d] = await Promise.all([api('/api/v1/stats'), api('/api/v1/dead-letters')]);
      if (stopped) return;
      const im = s.images || {};
      stats.replaceChildren(
        stat(s.faces_indexed, 'faces indexed', 'faces_indexed'), stat(im.done, 'images indexed', 'images_done'),
        stat(im.failed, 'images failed', 'images_failed'),
        stat(s.identities, 'people', 'identities'), stat(s.queue_depth, 'queue depth (queued + processing)', 'queue_depth'),
        stat(s.processed_last_minute, 'processed in the last minute', 'rate'), stat(s.crawl_jobs_running, 'crawls running', 'crawls'),
        stat(s.dead_letters, 'dead letters', 'dead_letters'));
      const list = d.dead_letters || [];
      dead.replaceChildren(list.length ? table(['when', 'image', 'error', 'attempts'], list.map((x) => [when(x.failed_at),
        el('span.mono', (x.message && x.message.image_sha256) || ''), x.last_error || '', x.attempts ?? '']))
        : empty('No dead letter: every image was processed or is waiting.'));
    } catch (e) { if (!stopped) stats.replaceChildren(failed(e)); }
    if (!stopped) timer = setTimeout(refresh, 2000);
  }
  refresh();
  return () => { stopped = true; clearTimeout(timer); };
}
