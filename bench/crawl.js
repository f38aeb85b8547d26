#!/usr/bin/env node
'use strict';
// bench/crawl.js - `visage crawl` speed on this machine, against a local site
// on loopback (tests/integration/site.js, flat layout): N pages (default 200),
// each with K images (default 3): small real JPEGs, each URL with its own
// bytes appended (distinct sha256, so every one is stored and processed).
// Two runs with --delay 0:
//   crawl+index   the normal command: crawl, store, queue, and wait until the
//                 face pipeline has processed every image (end to end);
//   crawl only    VISAGE_CRAWL_NO_INGEST=1: images are fetched and counted,
//                 not stored or processed (the crawler's own cost).
// Prints a JSON line per run and a small table; asserts nothing.
//   node bench/crawl.js [N_PAGES] [K_IMAGES]
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const L = require('../tests/integration/lib');
const { startSite } = require('../tests/integration/site');

const N = parseInt(process.argv[2] || '200', 10);
const K = parseInt(process.argv[3] || '3', 10);
const PHOTOS = ['obama_small.jpg', 'obama-240p.jpg', 'knn_examples/train/rose_leslie/img1.jpg'];
const TIME = fs.existsSync('/usr/bin/time') ? '/usr/bin/time' : null;

// Runs `visage crawl` under a CPU timer; resolves with wall/user/sys seconds,
// peak RSS (MB, /usr/bin/time only) and the job JSON.
function crawl(args, env) {
  const timeFile = path.join(os.tmpdir(), 'visage-bench-crawl-time-' + process.pid);
  const errFile = timeFile + '.err';
  let cmd, argv;
  if (TIME) {
    cmd = TIME;
    argv = ['-o', timeFile, '-f', '%e %U %S %M', L.BIN, 'crawl', ...args];
  } else {
    cmd = 'bash';
    argv = ['-c', 'TIMEFORMAT="%R %U %S 0"; { time "$0" "$@" 2>"' + errFile + '"; } 2>"' + timeFile + '"', L.BIN, 'crawl', ...args];
  }
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const p = spawn(cmd, argv, { env: { ...process.env, VISAGE_MODELS: L.MODELS, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('close', (code) => {
      const wall = (Date.now() - t0) / 1000;
      let t = [wall, NaN, NaN, 0];
      try { t = fs.readFileSync(timeFile, 'utf8').trim().split('\n').pop().split(/\s+/).map(Number); } catch (e) { /* no timing */ }
      if (!TIME) try { err += fs.readFileSync(errFile, 'utf8'); } catch (e) { /* none */ }
      fs.rmSync(timeFile, { force: true });
      fs.rmSync(errFile, { force: true });
      let job = null;
      try { job = JSON.parse(out.trim().split('\n').pop()); } catch (e) { /* below */ }
      if (code !== 0 || !job) return reject(new Error('visage crawl exited ' + code + ': ' + out.slice(0, 500) + err.slice(-1500)));
      resolve({ wall, user: t[1], sys: t[2], rssMb: t[3] / 1024, job });
    });
  });
}

const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : '-');

(async () => {
  const site = await startSite({ flat: { pages: N, images: K, photos: PHOTOS } });
  const rows = [];
  try {
    const runs = [['crawl+index', {}], ['crawl only', { VISAGE_CRAWL_NO_INGEST: '1' }]];
    for (const [label, env] of runs) {
      const dir = L.tmpDir('bench-crawl');
      const from = site.log.length;
      try {
        const r = await crawl([site.base + '/', '--data', dir, '--depth', '1', '--delay', '0', '--max-pages', String(N + 1),
          '--max-images', String(N * K), '--timeout', '30'], env);
        const reqs = site.log.slice(from);
        const crawlS = reqs.length > 1 ? (reqs[reqs.length - 1].t - reqs[0].t) / 1000 : NaN;
        const j = r.job;
        const cpu = r.user + r.sys;
        const row = {
          bench: 'crawl', run: label, pages: j.pages_fetched, images: j.images_fetched, images_saved: j.images_saved,
          images_processed: j.images_processed, faces_found: j.faces_found, requests: j.requests, errors: j.errors,
          mb: +(j.bytes / 1048576).toFixed(1), seconds: +r.wall.toFixed(2), crawl_phase_seconds: +crawlS.toFixed(2),
          pages_per_s: +(j.pages_fetched / r.wall).toFixed(1), images_per_s: +(j.images_fetched / r.wall).toFixed(1),
          cpu_user_s: r.user, cpu_sys_s: r.sys,
          cpu_ms_per_page: +((cpu * 1000) / j.pages_fetched).toFixed(2), // a page and its K images
          cpu_ms_per_image: +((cpu * 1000) / Math.max(1, j.images_fetched)).toFixed(2),
          peak_rss_mb: +r.rssMb.toFixed(0),
        };
        console.log(JSON.stringify(row));
        rows.push(row);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    await site.close();
  }
  console.log('\n' + N + ' pages x ' + K + ' images, --delay 0, ' + os.cpus().length + ' cores (the site runs in this process, on the same cores)');
  const head = ['run', 'pages', 'images', 'seconds', 'pages/s', 'images/s', 'CPU s', 'CPU ms/page', 'peak RSS MB'];
  const body = rows.map((r) => [r.run, r.pages, r.images, f2(r.seconds), f1(r.pages_per_s), f1(r.images_per_s),
    f2(r.cpu_user_s + r.cpu_sys_s), f2(r.cpu_ms_per_page), r.peak_rss_mb || '-'].map(String));
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  for (const line of [head, w.map((n) => '-'.repeat(n)), ...body]) console.log(line.map((c, i) => (i ? c.padStart(w[i]) : c.padEnd(w[i]))).join('  '));
})().catch((e) => { console.error(e); process.exit(1); });
