'use strict';
// The web UI in a real browser (Debian's chromium driven by playwright-core):
// choose a photo, search, see the matching faces with their thumbnails;
// add a photo to the index from the page; a bad key shows the error; erase
// a person after a preview; crawl a (loopback) site from the page and find
// its face with a link to its page.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const L = require('./lib');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

describe('web UI', () => {
  let s, dir, browser, page;
  before(async () => {
    dir = L.tmpDir('web');
    s = await L.startServer(dir, { VISAGE_FETCH_ALLOW: '127.0.0.1/32' });
    const items = ['knn_examples/train/obama/obama.jpg', 'knn_examples/train/obama/obama2.jpg', 'knn_examples/train/biden/biden.jpg']
      .map((f) => ({ image_b64: L.b64(path.join(L.FACES, f)), source_url: 'https://example.org/' + path.basename(f) }));
    const r = await L.api(s, 'POST', '/api/v1/ingest/batch', { json: { items } });
    await L.waitDone(s, undefined, r.data.accepted.map((a) => a.image_sha256));
    const { chromium } = require('playwright-core');
    assert.ok(fs.existsSync(CHROMIUM), 'chromium is installed at ' + CHROMIUM + ' (apt-get install chromium)');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
             '--disable-component-update', '--disable-sync'] });
    page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  });
  after(async () => {
    if (browser) await browser.close();
    await L.stopServer(s);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('searches with a chosen photo and shows the matches', async () => {
    await page.goto(s.base + '/');
    assert.equal(await page.title(), 'visage — face search');
    await page.setInputFiles('#file', path.join(L.FACES, 'knn_examples/test/obama1.jpg'));
    await page.click('#search');
    await page.waitForSelector('#results .card', { timeout: 20000 });
    const cards = await page.$$eval('#results .card', (els) => els.map((e) => ({
      score: e.querySelector('.score').textContent, same: e.querySelector('.score').classList.contains('same'),
      link: e.querySelector('a') ? e.querySelector('a').href : null,
      imgOk: e.querySelector('img').complete && e.querySelector('img').naturalWidth > 0 })));
    assert.equal(cards.length, 3);
    assert.ok(cards[0].same && cards[1].same, 'the two Obama photos come first, marked same person');
    assert.ok(!cards[2].same, 'Biden last, not the same person');
    assert.match(cards[0].link, /^https:\/\/example\.org\/obama2?\.jpg$/);
    await page.waitForFunction(() => [...document.querySelectorAll('#results .card img')].every((i) => i.complete && i.naturalWidth > 0));
    assert.match(await page.textContent('#status'), /1 face\(s\) in the photo/);
    await page.screenshot({ path: path.join(require('node:os').tmpdir(), 'visage-web-search.png') });
  });

  it('adds a photo to the index from the page', async () => {
    await page.setInputFiles('#file', path.join(L.FACES, 'knn_examples/train/biden/biden2.jpg'));
    await page.click('#ingest');
    await page.waitForFunction(() => /Queued/.test(document.querySelector('#status').textContent), null, { timeout: 10000 });
    const sha = require('node:crypto').createHash('sha256').update(fs.readFileSync(path.join(L.FACES, 'knn_examples/train/biden/biden2.jpg'))).digest('hex');
    const rec = await L.waitDone(s, undefined, [sha]);
    assert.equal(rec[sha].faces_indexed.length, 1);
  });

  it('shows a clear error for an image that is not an image', async () => {
    const bogus = path.join(dir, 'notes.jpg');
    fs.writeFileSync(bogus, 'this is text, not a photo');
    await page.setInputFiles('#file', bogus);
    await page.click('#search');
    await page.waitForFunction(() => document.querySelector('#status').classList.contains('error'), null, { timeout: 10000 });
    assert.match(await page.textContent('#status'), /not a JPEG, PNG, WebP or GIF/);
  });

  it('erases a person from the page: preview first, nothing gone on cancel, then erased and blocked', async () => {
    await page.setInputFiles('#file', path.join(L.FACES, 'knn_examples/train/biden/biden.jpg'));
    await page.click('#erase');
    await page.waitForSelector('#erasebar:not([hidden])', { timeout: 20000 });
    // biden.jpg (earlier test) and biden2.jpg (added from the page) are Biden; the Obama photos are not
    assert.match(await page.textContent('#rtitle'), /^2 image\(s\) of this person would be erased$/);
    const cards = await page.$$eval('#results .card', (els) => els.map((e) => e.querySelector('a') && e.querySelector('a').href));
    assert.equal(cards.length, 2);
    assert.ok(cards.includes('https://example.org/biden.jpg'), cards.join());
    await page.waitForFunction(() => [...document.querySelectorAll('#results .card img')].every((i) => i.complete && i.naturalWidth > 0));
    await page.screenshot({ path: path.join(require('node:os').tmpdir(), 'visage-web-erase.png'), fullPage: true });
    await page.click('#erasecancel');
    assert.match(await page.textContent('#status'), /Nothing erased/);
    const q = async () => (await L.api(s, 'POST', '/api/v1/search', { json: { image_b64: L.b64(path.join(L.FACES, 'knn_examples/train/biden/biden.jpg')) } }))
      .data.results.filter((x) => x.same_person).length;
    assert.equal(await q(), 2, 'cancel erased nothing');
    await page.click('#erase');
    await page.waitForSelector('#erasebar:not([hidden])', { timeout: 20000 });
    assert.ok(await page.isChecked('#block'), 'blocking new photos is the default');
    await page.click('#eraseconfirm');
    await page.waitForFunction(() => /^Erased 2 image\(s\)/.test(document.querySelector('#status').textContent), null, { timeout: 20000 });
    assert.match(await page.textContent('#status'), /new photos of this person will be erased on arrival/);
    assert.equal(await q(), 0, 'no photo of Biden is left');
    const blocks = await L.api(s, 'GET', '/api/v1/erase/blocks');
    assert.equal(blocks.data.blocks.length, 1);
    // the block and the erasure log, from the page; lifting the block
    await page.click('#showblocks');
    await page.waitForSelector('#results table.list button.lift', { timeout: 10000 });
    assert.match(await page.textContent('#rtitle'), /^1 block\(s\)/);
    await page.click('#results button.lift');
    await page.waitForFunction(() => document.querySelector('#rtitle').textContent === 'No block', null, { timeout: 10000 });
    assert.equal((await L.api(s, 'GET', '/api/v1/erase/blocks')).data.blocks.length, 0);
    await page.click('#showlog');
    await page.waitForFunction(() => /Erasure log/.test(document.querySelector('#rtitle').textContent), null, { timeout: 10000 });
    const rows = await page.$$eval('#results table.list tr', (trs) => trs.slice(1).map((tr) => [...tr.children].map((td) => td.textContent)));
    assert.deepEqual(rows.map((r) => r[1]), ['block lifted', 'person']);
    assert.match(rows[1][2], /^2 image\(s\), 2 face\(s\), blocked/);
    await page.screenshot({ path: path.join(require('node:os').tmpdir(), 'visage-web-erasure-log.png'), fullPage: true });
    // a photo with two faces: the page shows the server's reason
    await page.setInputFiles('#file', path.join(L.FACES, 'two_people.jpg'));
    await page.click('#erase');
    await page.waitForFunction(() => document.querySelector('#status').classList.contains('error'), null, { timeout: 20000 });
    assert.match(await page.textContent('#status'), /shows 2 faces/);
  });

  it('crawls a site from the page, then finds its face with a link to the page it is on', async () => {
    const photo = fs.readFileSync(path.join(L.FACES, 'knn_examples/train/kit_harington/john1.jpeg'));
    const site = require('node:http').createServer((req, res) => {
      if (req.url === '/') { res.writeHead(200, { 'Content-Type': 'text/html' }); return res.end('<a href="/gallery.html">g</a>'); }
      if (req.url === '/gallery.html') { res.writeHead(200, { 'Content-Type': 'text/html' }); return res.end('<img src="/kit.jpg">'); }
      if (req.url === '/kit.jpg') { res.writeHead(200, { 'Content-Type': 'image/jpeg' }); return res.end(photo); }
      res.writeHead(404); res.end();
    });
    await new Promise((r) => site.listen(0, '127.0.0.1', r));
    const base = 'http://127.0.0.1:' + site.address().port;
    try {
      await page.fill('#crawlurl', base + '/');
      await page.fill('#depth', '1');
      await page.click('#crawl');
      await page.waitForFunction(() => /^done .*1 images saved \(1 processed, 1 faces\)/.test(document.querySelector('#crawlstatus').textContent),
        null, { timeout: 60000 });
      assert.match(await page.textContent('#crawlstatus'), /2 pages/);
      await page.setInputFiles('#file', path.join(L.FACES, 'knn_examples/train/kit_harington/john2.jpeg'));
      await page.click('#search');
      await page.waitForFunction((u) => [...document.querySelectorAll('#results .card a.page')].some((a) => a.href === u),
        base + '/gallery.html', { timeout: 20000 });
      const first = await page.$eval('#results .card', (e) => ({ same: e.querySelector('.score').classList.contains('same'),
        page: e.querySelector('a.page') && e.querySelector('a.page').href }));
      assert.ok(first.same, 'the crawled face is the best match, marked same person');
      assert.equal(first.page, base + '/gallery.html');
    } finally {
      site.close();
    }
  });
});
