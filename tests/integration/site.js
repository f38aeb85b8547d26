'use strict';
// A local web site for the crawler tests and bench/crawl.js, on loopback only:
// the main host on 127.0.0.1 and a second host on 127.0.0.2 (out of scope;
// nothing may ever be requested there). Every request is logged with its
// host, path, arrival time, User-Agent and Accept-Encoding.
//
//   const site = await startSite({ ... });   // { base, other, log, stats, expect, close() }
//
// Two layouts:
//   full (default): the feature tour below, with the expected outcome of a
//     `--depth 3` crawl in FULL / site.expect.
//   flat ({ flat: { pages: N, images: K } }): "/" links to /p/1/ ... /p/N/,
//     each with K images (real photos with distinct bytes appended, so each
//     URL is a distinct image; `tag` makes them differ between sites too);
//     for politeness, API, resume and bench runs.
//
// Options: delayMs (wait before answering each request, default 0),
// crawlDelay (seconds: a "Crawl-delay:" line in the robots.txt group that
// applies to visage), slowMs (how long /slow.jpg stalls, default 15000),
// bigBytes (size of /big.jpg, default 30 MB), bigContentLength (send a
// Content-Length for /big.jpg, default false: chunked, so the crawler must
// count and abort mid-transfer).
const http = require('node:http');
const zlib = require('node:zlib');
const fs = require('node:fs');
const path = require('node:path');

const FACES = path.join(__dirname, '..', '..', '..', 'shared', 'data', 'faces');
const photo = (rel) => fs.readFileSync(path.join(FACES, rel));
const UA = 'visage/0.1 (+https://github.com/visage/visage)';

// ---- the full site: what a `visage crawl BASE/ --depth 3` must do ---------
// images: stored (images_saved), path -> shared photo and the page it is on
// (page_url). /img/x.jpg is reached through the redirect /old.jpg.
const FULL_IMAGES = {
  '/img/large.jpg': { file: 'knn_examples/train/obama/obama.jpg', page: '/', via: 'largest srcset candidate of an <img>' },
  '/img/pic-large.jpg': { file: 'knn_examples/train/biden/biden.jpg', page: '/', via: '<picture><source srcset>, largest' },
  '/img/og.jpg': { file: 'knn_examples/train/rose_leslie/img1.jpg', page: '/', via: 'og:image and twitter:image meta' },
  '/img/lazy.jpg': { file: 'knn_examples/train/kit_harington/john2.jpeg', page: '/', via: 'data-src (src is a data: placeholder)' },
  '/img/x.jpg': { file: 'knn_examples/train/kit_harington/john1.jpeg', page: '/', via: '<img src=/old.jpg>, 301 to here' },
  '/img/linked.jpg': { file: 'knn_examples/test/obama1.jpg', page: '/', via: '<a href> to a .jpg' },
  '/members/public/face.jpg': { file: 'knn_examples/test/kit_with_rose.jpg', page: '/', via: 'robots Allow beats a shorter Disallow' },
  '/base/in-base.jpg': { file: 'knn_examples/train/obama/obama2.jpg', page: '/a/', via: 'relative src under <base href="/base/">' },
  '/a/b/b.jpg': { file: 'knn_examples/train/biden/biden2.jpg', page: '/a/b/', via: 'relative src, page at depth 2' },
  '/a/b/c/c.jpg': { file: 'knn_examples/train/rose_leslie/img2.jpg', page: '/a/b/c/', via: 'relative src, page at depth 3' },
  '/img/gz.jpg': { file: 'obama-240p.jpg', page: '/gz/', via: 'on a gzip-compressed page' },
};
// the same bytes at two URLs: the first (document order) is saved, the
// second counted in images_duplicate
const FULL_DUPLICATE = { paths: ['/img/dup-a.jpg', '/photos/dup-b.jpg'], file: 'two_people.jpg', page: '/' };
// files served only if (wrongly) requested
const NEVER_FILES = {
  '/img/small.jpg': 'obama_small.jpg',                              // srcset small candidate
  '/img/pic-small.jpg': 'knn_examples/train/alex_lacamoire/img1.jpg', // <source srcset> small candidate
  '/a/b/c/d/d.jpg': 'knn_examples/test/johnsnow_test1.jpg',         // on the depth-4 page
  '/private/secret.jpg': 'test_images/obama3.jpg',                   // robots Disallow
  '/private/inner.jpg': 'test_images/obama3.jpg',
};
const FULL = {
  images: FULL_IMAGES,
  duplicate: FULL_DUPLICATE,
  // pages fetched and parsed (pages_fetched) with --depth 3
  pages: ['/', '/a/', '/a/b/', '/a/b/c/', '/gz/'],
  // images_skipped: 30 MB body over --max-image-mb 16 (aborted), text behind .jpg (aborted after its first bytes)
  skipped: ['/big.jpg', '/fake.jpg'],
  // errors: HTTP 404 page, image slower than --timeout 2
  errors: ['/missing.html', '/slow.jpg'],
  // 3xx answers (redirects): /old.jpg -> /img/x.jpg, /loop1 -> /loop2 -> /loop1 (not requested again)
  redirects: ['/old.jpg', '/loop1', '/loop2'],
  // robots_blocked: queued, refused by robots.txt, never requested
  robotsBlocked: ['/private/', '/private/secret.jpg', '/members/', '/tracker.cgi'],
  // never requested on the main host, whatever the reason
  neverRequested: ['/img/small.jpg', '/img/pic-small.jpg', '/private/', '/private/secret.jpg', '/private/inner.jpg',
    '/members/', '/tracker.cgi', '/a/b/c/d/', '/a/b/c/d/d.jpg',
    '/a/in-base.jpg' /* what in-base.jpg resolves to when <base> is ignored */],
  // URLs on 127.0.0.2 the pages point at: out_of_scope, never requested (nothing at all may reach that host)
  outOfScope: ['/', '/img/ext.jpg'],
  // every request the crawl should send to the main host (robots.txt first), each once
  requested: null, // filled below
};
FULL.requested = ['/robots.txt', ...FULL.pages, ...Object.keys(FULL_IMAGES), '/old.jpg', ...FULL_DUPLICATE.paths,
  ...FULL.skipped, ...FULL.errors, '/loop1', '/loop2'];
FULL.counts = {
  pages_fetched: FULL.pages.length,                         // 5
  images_saved: Object.keys(FULL_IMAGES).length + 1,        // 11 + one of the duplicate pair = 12
  images_duplicate: 1,
  images_skipped: FULL.skipped.length,                      // 2
  redirects: FULL.redirects.length,                         // 3
  robots_blocked: FULL.robotsBlocked.length,                // 4 (asserted as a minimum)
  out_of_scope: FULL.outOfScope.length,                     // 2 (asserted as a minimum)
  errors: FULL.errors.length,                               // 2 (asserted as a minimum)
  requests: FULL.requested.length,                          // 26
};

const ROBOTS_FULL = (crawlDelay) => [
  '# visage test site',
  'User-agent: otherbot',
  'Disallow:',
  '',
  '# a crawler that used this group instead of its own would fetch nothing',
  'User-agent: *',
  'Disallow: /',
  '',
  'User-agent: visage',
  'Disallow: /private/',
  'Disallow: /members/',
  'Allow: /members/public/',
  'Disallow: /*.cgi$',
  ...(crawlDelay !== undefined ? ['Crawl-delay: ' + crawlDelay] : []),
  '',
].join('\n');

const ROBOTS_FLAT = (crawlDelay) => [
  'User-agent: *',
  'Disallow: /private/',
  ...(crawlDelay !== undefined ? ['Crawl-delay: ' + crawlDelay] : []),
  '',
].join('\n');

const page = (title, head, body) => '<!doctype html>\n<html><head><meta charset="utf-8"><title>' + title + '</title>' + head +
  '</head>\n<body>\n' + body + '\n</body></html>\n';

function fullPages(base, other) {
  return {
    '/': page('visage test site', '\n<meta property="og:image" content="/img/og.jpg">\n<meta name="twitter:image" content="/img/og.jpg">\n', [
      '<h1>Home</h1>',
      '<img src="/img/small.jpg" srcset="/img/small.jpg 320w, /img/large.jpg 1200w" sizes="100vw" alt="srcset">',
      '<picture><source media="(min-width: 600px)" srcset="/img/pic-small.jpg 1x, /img/pic-large.jpg 2x"><img alt="picture"></picture>',
      '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" data-src="/img/lazy.jpg" alt="lazy">',
      '<img src="/old.jpg" alt="moved">',
      '<img src="/img/dup-a.jpg" alt="dup a"> <img src="/photos/dup-b.jpg" alt="dup b">',
      '<img src="/slow.jpg" alt="slow"> <img src="/big.jpg" alt="big"> <img src="/fake.jpg" alt="fake">',
      '<img src="/private/secret.jpg" alt="private"> <img src="/members/public/face.jpg" alt="allowed">',
      '<img src="' + other + '/img/ext.jpg" alt="other host">',
      '<p><a href="a/">A</a> <a href="/a/#section">A again</a> <a href="' + base + '/a/">A absolute</a>',
      '<a href="/gz/">compressed</a> <a href="/img/linked.jpg">full size</a>',
      '<a href="/private/">private</a> <a href="/members/">members</a> <a href="/tracker.cgi">tracker</a>',
      '<a href="/loop1">loop</a> <a href="/missing.html">missing</a> <a href="' + other + '/">other host</a>',
      '<a href="mailto:nobody@example.invalid">mail</a> <a href="javascript:void(0)">js</a> <a href="#top">top</a></p>',
    ].join('\n')),
    // relative URLs resolve against <base href="/base/">: in-base.jpg -> /base/in-base.jpg
    '/a/': page('A', '<base href="/base/">', '<img src="in-base.jpg" alt="base"> <a href="../a/b/">B</a> <a href="/">home</a>'),
    '/a/b/': page('B', '', '<img src="b.jpg" alt="b"> <a href="c/">C</a> <a href="../">up</a>'),
    '/a/b/c/': page('C', '', '<img src="c.jpg" alt="c"> <a href="d/">D</a>'),
    '/a/b/c/d/': page('D', '', '<img src="d.jpg" alt="d"> <a href="/">home</a>'), // depth 4
    '/gz/': page('compressed', '', '<img src="/img/gz.jpg" alt="gz"> <a href="/">home</a>'),
    '/private/': page('private', '', '<img src="/private/inner.jpg" alt="inner">'),
    '/members/': page('members', '', '<p>members only</p>'),
  };
}

// Flat layout: the photos cycled through, each with a distinct suffix.
const FLAT_PHOTOS = ['obama_small.jpg', 'knn_examples/train/rose_leslie/img1.jpg', 'knn_examples/train/kit_harington/john2.jpeg',
  'obama-240p.jpg', 'knn_examples/test/obama1.jpg'];

function flatLayout(opts) {
  const n = opts.pages === undefined ? 10 : opts.pages;
  const k = opts.images === undefined ? 1 : opts.images;
  const photos = (opts.photos || FLAT_PHOTOS).map(photo);
  const pages = { '/': null };
  const images = {}; // path -> { bytes, page }
  const links = [];
  let seq = 0;
  for (let i = 1; i <= n; i++) {
    const p = '/p/' + i + '/';
    links.push('<a href="' + p + '">page ' + i + '</a>');
    const imgs = [];
    const ki = typeof k === 'function' ? k(i) : k;
    for (let j = 1; j <= ki; j++) {
      const ip = '/i/' + i + '-' + j + '.jpg';
      images[ip] = { bytes: Buffer.concat([photos[seq % photos.length], Buffer.from('visage-site-' + (opts.tag || '') + i + '-' + j)]), page: p };
      seq++;
      imgs.push('<img src="' + ip + '" alt="' + i + '-' + j + '">');
    }
    pages[p] = page('page ' + i, '', imgs.join('\n') + '\n<a href="/">home</a> <a href="/p/' + (i % n + 1) + '/">next</a>');
  }
  pages['/'] = page('flat site', '', links.join('\n'));
  return { pages, images };
}

function listen(server, host) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve(server.address().port));
  });
}

async function startSite(opts = {}) {
  const delayMs = opts.delayMs || 0;
  const slowMs = opts.slowMs || 15000;
  const bigBytes = opts.bigBytes || 30 * 1024 * 1024;
  const log = [];
  const stats = {
    big: null,          // the last /big.jpg response: { sent (bytes written), finished, aborted (client closed first) }
    bigRequests: [],
    slow: { started: 0, closedAt: 0, aborted: false },
  };
  const sockets = new Set();
  const timers = new Set();
  let closing = false;
  const t0 = process.hrtime.bigint();
  const now = () => Number(process.hrtime.bigint() - t0) / 1e6;

  const mainServer = http.createServer();
  const otherServer = http.createServer();
  for (const s of [mainServer, otherServer]) {
    s.keepAliveTimeout = 5000;
    s.on('connection', (sock) => { sockets.add(sock); sock.on('close', () => sockets.delete(sock)); });
  }
  const port = await listen(mainServer, '127.0.0.1');
  const otherPort = await listen(otherServer, '127.0.0.2');
  const base = 'http://127.0.0.1:' + port;
  const other = 'http://127.0.0.2:' + otherPort;

  let layout;
  const files = {}; // path -> Buffer (images of the main host)
  if (opts.flat) {
    layout = flatLayout(opts.flat);
    for (const [p, v] of Object.entries(layout.images)) files[p] = v.bytes;
  } else {
    layout = { pages: fullPages(base, other) };
    for (const [p, v] of Object.entries(FULL_IMAGES)) files[p] = photo(v.file);
    const dup = photo(FULL_DUPLICATE.file);
    for (const p of FULL_DUPLICATE.paths) files[p] = dup;
    for (const [p, f] of Object.entries(NEVER_FILES)) files[p] = photo(f);
  }
  const robots = opts.robots !== undefined ? opts.robots : (opts.flat ? ROBOTS_FLAT : ROBOTS_FULL)(opts.crawlDelay);

  const later = (ms, fn) => { const t = setTimeout(() => { timers.delete(t); fn(); }, ms); timers.add(t); };

  function send(res, status, type, body, extra = {}) {
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': body.length, ...extra });
    res.end(body);
  }

  function serveMain(req, res, entry) {
    const p = entry.path.split('?')[0];
    if (p === '/robots.txt') {
      if (robots === null) return send(res, 404, 'text/plain', Buffer.from('no robots.txt\n'));
      return send(res, 200, 'text/plain; charset=utf-8', Buffer.from(robots));
    }
    if (!opts.flat) {
      if (p === '/old.jpg') return send(res, 301, 'text/html', Buffer.from('moved'), { Location: '/img/x.jpg' });
      if (p === '/loop1') return send(res, 302, 'text/html', Buffer.from('loop'), { Location: '/loop2' });
      if (p === '/loop2') return send(res, 302, 'text/html', Buffer.from('loop'), { Location: base + '/loop1' });
      if (p === '/tracker.cgi') return send(res, 200, 'text/plain', Buffer.from('tracked\n'));
      if (p === '/fake.jpg') {
        // text behind an image name and an image Content-Type: only the bytes tell
        return send(res, 200, 'image/jpeg', Buffer.from('This is not a picture, just text. '.repeat(4000)));
      }
      if (p === '/slow.jpg') {
        // JPEG magic, then nothing for slowMs: the crawler's --timeout must end it
        stats.slow.started = now();
        res.writeHead(200, { 'Content-Type': 'image/jpeg' });
        res.write(Buffer.from([0xff, 0xd8, 0xff, 0xe0]));
        res.on('close', () => {
          stats.slow.closedAt = now();
          stats.slow.aborted = !res.writableFinished;
        });
        later(slowMs, () => { if (!res.destroyed) res.end(); });
        return;
      }
      if (p === '/big.jpg') {
        // JPEG magic, then zeros, streamed with back-pressure; records how far it got
        const st = { sent: 0, finished: false, aborted: false };
        stats.big = st;
        stats.bigRequests.push(st);
        const zeros = Buffer.alloc(64 * 1024);
        const first = Buffer.alloc(64 * 1024);
        Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01]).copy(first);
        const hdr = { 'Content-Type': 'image/jpeg' };
        if (opts.bigContentLength) hdr['Content-Length'] = bigBytes;
        res.writeHead(200, hdr);
        res.on('close', () => { st.aborted = !st.finished; });
        const pump = () => {
          while (!res.destroyed && st.sent < bigBytes) {
            const n = Math.min(zeros.length, bigBytes - st.sent);
            const piece = (st.sent === 0 ? first : zeros).subarray(0, n);
            st.sent += n;
            if (!res.write(piece)) return res.once('drain', pump);
          }
          if (!res.destroyed && st.sent >= bigBytes && !res.writableEnded) res.end(() => { st.finished = true; });
        };
        return pump();
      }
    }
    const html = layout.pages[p];
    if (html !== undefined) {
      const body = Buffer.from(html);
      const ae = String(req.headers['accept-encoding'] || '');
      if (p === '/gz/' && /\bgzip\b/.test(ae)) {
        entry.encoding = 'gzip';
        return send(res, 200, 'text/html; charset=utf-8', zlib.gzipSync(body), { 'Content-Encoding': 'gzip', Vary: 'Accept-Encoding' });
      }
      return send(res, 200, 'text/html; charset=utf-8', body);
    }
    if (files[p]) return send(res, 200, 'image/jpeg', files[p]);
    return send(res, 404, 'text/html', Buffer.from('<html><body>not found</body></html>'));
  }

  function serveOther(req, res, entry) {
    // served normally so that a crawler that (wrongly) goes here succeeds and is seen in the log
    const p = entry.path.split('?')[0];
    if (p === '/robots.txt') return send(res, 200, 'text/plain', Buffer.from('User-agent: *\nDisallow:\n'));
    if (p === '/img/ext.jpg') return send(res, 200, 'image/jpeg', photo('knn_examples/train/alex_lacamoire/img1.jpg'));
    return send(res, 200, 'text/html', Buffer.from(page('other host', '', '<img src="/img/ext.jpg">')));
  }

  const handler = (server) => (req, res) => {
    const entry = {
      server, host: req.headers.host, path: req.url, method: req.method, t: now(),
      ua: req.headers['user-agent'] || '', acceptEncoding: req.headers['accept-encoding'] || '',
    };
    log.push(entry);
    res.on('finish', () => { entry.status = res.statusCode; });
    const go = () => {
      if (closing || res.destroyed) return;
      try { (server === 'main' ? serveMain : serveOther)(req, res, entry); } catch (e) { res.destroy(e); }
    };
    if (delayMs > 0) later(delayMs, go); else go();
  };
  mainServer.on('request', handler('main'));
  otherServer.on('request', handler('other'));

  const expect = opts.flat
    ? { pages: Object.keys(layout.pages), images: layout.images }
    : FULL;

  return {
    base, other, port, otherPort, log, stats, expect, files,
    // log entries of the main host / of the other host
    main: () => log.filter((e) => e.server === 'main'),
    others: () => log.filter((e) => e.server === 'other'),
    close() {
      closing = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const s of sockets) s.destroy();
      return Promise.all([mainServer, otherServer].map((s) => new Promise((r) => {
        s.close(() => r());
        if (s.closeAllConnections) s.closeAllConnections();
      })));
    },
  };
}

module.exports = { startSite, FULL, FACES, UA, ROBOTS_FULL, ROBOTS_FLAT };
