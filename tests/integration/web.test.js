'use strict';
// The web app in a real browser (Debian's chromium driven by playwright-core)
// against `visage serve` over loopback, as a new user would use it: search a
// two-face photo and pick the second face; every face; open the source photo
// with the match outlined; add a photo; a bad file; a person enrolled from
// two photos, verifying a third (yes) and a stranger (no); the library across
// two pages; a crawl of a loopback site with rising counts, cancelled; erase
// from a result; the dashboard; the API key; no horizontal overflow at 390 px.
// A screenshot of every view goes to docs/screenshots/.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const L = require('./lib');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = path.join(__dirname, '..', '..', 'docs', 'screenshots');
const F = (p) => path.join(L.FACES, p);
const sha = (file) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

// The photos indexed before the browser starts: 16, on two sites
// (obama-240p.jpg after the others: a near-duplicate is linked to a face
// indexed before it, not to one processed at the same time).
const INDEXED = ['knn_examples/train/obama/obama.jpg', 'knn_examples/train/obama/obama2.jpg', 'knn_examples/train/biden/biden.jpg',
  'knn_examples/train/kit_harington/john2.jpeg', 'knn_examples/train/rose_leslie/img1.jpg', 'knn_examples/train/rose_leslie/img2.jpg',
  'knn_examples/train/alex_lacamoire/img1.jpg', 'two_people.jpg', 'obama-1080p.jpg', 'obama_small.jpg',
  'test_images/obama3.jpg', 'knn_examples/test/kit_with_rose.jpg', 'knn_examples/test/obama_and_biden.jpg',
  'test_images/32bit.png', 'knn_examples/test/johnsnow_test1.jpg'];

describe('web app', () => {
  let s, dir, browser, page;
  const pageErrors = [];
  const shot = (name, opts = {}) => page.screenshot({ path: path.join(SHOTS, name + '.jpg'), type: 'jpeg', quality: 70, ...opts });
  const go = async (hash) => { await page.goto(s.base + '/' + hash); await page.waitForSelector('main[data-view]'); };
  const noSpinner = () => page.waitForFunction(() => !document.querySelector('main .spinner'), null, { timeout: 30000 });

  before(async () => {
    dir = L.tmpDir('web');
    fs.mkdirSync(SHOTS, { recursive: true });
    s = await L.startServer(dir, { VISAGE_FETCH_ALLOW: '127.0.0.1/32', VISAGE_PEOPLE_TICK_MS: '300' });
    const items = INDEXED.map((f, i) => ({ image_b64: L.b64(F(f)), source_url: 'https://' + (i % 2 ? 'photos.test' : 'example.org') + '/' + path.basename(f),
      site: i % 2 ? 'photos.test' : 'example.org' }));
    const r = await L.api(s, 'POST', '/api/v1/ingest/batch', { json: { items } });
    assert.equal(r.status, 202, JSON.stringify(r.data));
    await L.waitDone(s, undefined, r.data.accepted.map((a) => a.image_sha256));
    const late = await L.api(s, 'POST', '/api/v1/ingest/batch', { json: { items: [{ image_b64: L.b64(F('obama-240p.jpg')),
      source_url: 'https://photos.test/obama-240p.jpg', site: 'photos.test' }] } });
    await L.waitDone(s, undefined, late.data.accepted.map((a) => a.image_sha256));
    const { chromium } = require('playwright-core');
    assert.ok(fs.existsSync(CHROMIUM), 'chromium is installed at ' + CHROMIUM + ' (apt-get install chromium)');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
             '--disable-component-update', '--disable-sync'] });
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });
  after(async () => {
    if (browser) await browser.close();
    await L.stopServer(s);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the page is served with a strict CSP, its files from the binary', async () => {
    const r = await fetch(s.base + '/');
    const csp = r.headers.get('content-security-policy') || '';
    assert.match(csp, /default-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.match(csp, /frame-ancestors 'none'/);
    const js = await fetch(s.base + '/web/app.js');
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type'), /^text\/javascript/);
    assert.equal((await fetch(s.base + '/web/nope.js')).status, 404);
    assert.equal((await fetch(s.base + '/web/..%2fcatalog.db')).status, 404);
  });

  it('search: a two-face photo shows two boxes; the best is chosen, a click searches the other (its own match first)', async () => {
    await go('#/search');
    assert.equal(await page.title(), 'visage — Search');
    await page.setInputFiles('#file', F('two_people.jpg'));
    await page.waitForSelector('#results .card', { timeout: 30000 });
    assert.equal(await page.locator('#preview .facebox').count(), 2, 'both faces boxed');
    const selected = await page.$eval('#preview .facebox.selected', (b) => b.dataset.face);
    const other = selected === '0' ? '1' : '0';
    const two = sha(F('two_people.jpg'));
    const first = () => page.$eval('#results .card', (c) => ({ sha: c.dataset.sha, band: c.dataset.band, text: c.textContent }));
    let top = await first();
    assert.equal(top.sha, two, 'the photo itself (indexed) is the best match of its chosen face');
    assert.equal(top.band, 'same_person');
    // the title counts what is shown
    const shown = await page.locator('#results .card').count();
    assert.match(await page.textContent('#rtitle'), new RegExp('^' + shown + ' photos?: '));
    // the other face, chosen by keyboard: its own match first again
    await page.focus('#preview .facebox[data-face="' + other + '"]');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#preview .facebox.selected[data-face="' + other + '"]');
    top = await first();
    assert.equal(top.sha, two);
    assert.match(top.text, /Same person · 1\.000/);
    await page.waitForFunction(() => [...document.querySelectorAll('#results img')].every((i) => i.complete && i.naturalWidth > 0));
    await shot('search');
  });

  it('search: "every face" shows a group per face; near-duplicates fold under one photo', async () => {
    await page.check('#all');
    await page.waitForFunction(() => document.querySelectorAll('#results h3.facegroup').length === 2);
    await page.uncheck('#all');
    // the 1080p and 240p copies of one photo are near-duplicates: one card, the other folded under it
    await page.setInputFiles('#file', F('obama_small.jpg'));
    await page.waitForFunction(() => document.querySelector('#results .card details.dups'), null, { timeout: 30000 });
    const cards = await page.$$eval('#results .card', (cs) => cs.map((c) => c.dataset.sha));
    assert.equal(new Set(cards).size, cards.length, 'one card per photo');
    const big = sha(F('obama-1080p.jpg')), low = sha(F('obama-240p.jpg'));
    assert.equal([big, low].filter((x) => cards.includes(x)).length, 1, 'the two copies show as one card');
    const folded = await page.$$eval('#results .card details.dups', (ds) => ds.map((d) => d.textContent));
    assert.ok(folded.some((t) => /240p|1080p/.test(t)), folded.join('|'));
    // the threshold slider hides weaker matches, and the title follows
    const before = await page.locator('#results .card').count();
    await page.$eval('#minscore', (r) => { r.value = '0.99'; r.dispatchEvent(new Event('input')); });
    const after = await page.locator('#results .card').count();
    assert.ok(after < before, `slider at 0.99 hides matches (${before} -> ${after})`);
    assert.match(await page.textContent('#rtitle'), new RegExp('^(' + after + ' photos?|No match)'));
    await page.$eval('#minscore', (r) => { r.value = '0'; r.dispatchEvent(new Event('input')); });
  });

  it('opens the whole source photo with the matched face outlined and its other faces', async () => {
    await page.setInputFiles('#file', F('knn_examples/test/obama1.jpg'));
    await page.waitForSelector('#results .card', { timeout: 30000 });
    // a result from obama_and_biden.jpg: a photo with two faces
    const target = sha(F('knn_examples/test/obama_and_biden.jpg'));
    await page.click('#results .card[data-sha="' + target + '"] button.imgbtn');
    await page.waitForSelector('#viewer[open] .photo img');
    await page.waitForFunction(() => { const i = document.querySelector('#viewer .photo img'); return i.complete && i.naturalWidth > 0; });
    // two faces indexed, a third (turned away) boxed as not indexed, with its reason
    assert.equal(await page.locator('#viewer .photo .facebox:not(.notindexed)').count(), 2, 'both indexed faces boxed');
    assert.equal(await page.locator('#viewer .photo .facebox.match').count(), 1, 'the matched face outlined');
    assert.equal(await page.locator('#viewer .card.face').count(), 2);
    assert.equal(await page.locator('#viewer .photo .facebox.notindexed').count(), 1);
    assert.match(await page.textContent('#viewer ul.notindexed'), /Not indexed: extreme pose/);
    await shot('photo');
    await page.click('#viewer button.close');
    await page.waitForSelector('#viewer', { state: 'hidden' });
  });

  it('a bad file: a clear error, no stale title, no broken preview', async () => {
    const bogus = path.join(dir, 'notes.jpg');
    fs.writeFileSync(bogus, 'this is text, not a photo');
    await page.setInputFiles('#file', bogus);
    await page.waitForFunction(() => document.querySelector('#status').classList.contains('error'), null, { timeout: 10000 });
    assert.match(await page.textContent('#status'), /not a JPEG, PNG, WebP or GIF/);
    assert.equal(await page.textContent('#rtitle'), 'Where else does this face appear?');
    assert.equal(await page.locator('#preview img').count(), 0);
    assert.equal(await page.locator('#results .card').count(), 0);
  });

  it('adds a photo to the index and says what processing found', async () => {
    await page.setInputFiles('#file', F('knn_examples/train/biden/biden2.jpg'));
    await page.waitForSelector('#results .card', { timeout: 30000 });
    await page.click('#ingest');
    await page.waitForFunction(() => /^Indexed 1 face/.test(document.querySelector('#status').textContent), null, { timeout: 60000 });
  });

  it('people: enroll two photos, verify a third (yes) and a stranger (no), remove a sample', async () => {
    await go('#/people');
    await page.waitForSelector('#people .state');
    await page.fill('#newname', 'Barack Obama');
    await page.click('button:text("New person")');
    await page.waitForSelector('#personname');
    await page.setInputFiles('#enrollfiles', [F('knn_examples/train/obama/obama.jpg'), F('knn_examples/train/obama/obama2.jpg')]);
    await page.waitForFunction(() => document.querySelectorAll('#samples .card').length === 2, null, { timeout: 30000 });
    assert.match(await page.textContent('#personstatus'), /Added 2 photos/);
    const verify = async (file) => {
      await page.locator('.drop', { hasText: 'Is this' }).locator('input').setInputFiles(file);
      await page.waitForSelector('#verdict .verdict', { timeout: 30000 });
      return page.$eval('#verdict .verdict', (v) => ({ cls: v.className, text: v.textContent }));
    };
    let v = await verify(F('knn_examples/test/obama1.jpg'));
    assert.match(v.cls, /yes/); assert.match(v.text, /^Yes — this is Barack Obama \(similarity 0\.\d+/);
    await shot('person');
    v = await verify(F('knn_examples/test/alex_lacamoire1.jpg'));
    assert.match(v.cls, /no/); assert.match(v.text, /^No — not Barack Obama/);
    await page.waitForFunction(() => [...document.querySelectorAll('#samples img')].every((i) => i.complete && i.naturalWidth > 0));
    await page.click('#samples .card:last-child button.danger');
    await page.waitForFunction(() => document.querySelectorAll('#samples .card').length === 1);
    // enrolling from a search result: the "Add to person" picker
    await go('#/search?face=' + (await L.api(s, 'GET', '/api/v1/images/' + sha(F('obama-1080p.jpg')))).data.faces_indexed[0].face_id);
    await page.waitForSelector('#results .card', { timeout: 30000 });
    await page.click('#results .card button:text("Add to person")');
    await page.waitForSelector('#picker[open] select option:text("Barack Obama (1)")', { state: 'attached' });
    await page.selectOption('#picker select', { label: 'Barack Obama (1)' });
    await page.click('#picker button[type=submit]');
    await page.waitForFunction(() => document.querySelector('#picker .status').textContent, null, { timeout: 20000 });
    assert.match(await page.textContent('#picker .status'), /^Added: 2 sample/);
    await go('#/people');
    await page.waitForSelector('#people .card.person');
    assert.match(await page.textContent('#people .card.person'), /Barack Obama2 samples/);
  });

  it('people found in the photos: the largest is Obama; naming him from his page', async () => {
    await go('#/people');
    await page.waitForFunction(() => document.querySelectorAll('#found .card.person').length >= 3, null, { timeout: 30000 });
    await page.click('#found .card.person');
    await page.waitForSelector('#foundfaces .card');
    const n = await page.locator('#foundfaces .card').count();
    assert.ok(n >= 6, 'Obama\'s photos: ' + n);
    await page.fill('#personname', 'Obama (found)');
    await page.click('button:text("Name")');
    await page.waitForFunction(() => /^Named Obama \(found\)/.test(document.querySelector('#foundstatus').textContent), null, { timeout: 20000 });
    assert.equal(await page.textContent('#foundname'), 'Obama (found)');
    await page.check('#watch');
    await page.waitForFunction(() => /^Watching/.test(document.querySelector('#foundstatus').textContent));
    await page.waitForFunction(() => [...document.querySelectorAll('#foundfaces img')].every((i) => i.complete && i.naturalWidth > 0));
    await shot('found-person');
    await go('#/people');
    await page.waitForSelector('#found .card.person');
    assert.match(await page.textContent('#found .card.person'), /^Obama \(found\)/);
    await shot('people');
  });

  it('library: newest first across two pages, and back', async () => {
    const all = [];
    for (let cursor = null; ;) {
      const r = await L.api(s, 'GET', '/api/v1/images?limit=200' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
      all.push(...r.data.images.map((i) => i.image_sha256));
      if (!r.data.next_cursor) break;
      cursor = r.data.next_cursor;
    }
    assert.ok(all.length > 12 && all.length <= 24, 'between one and two pages of 12: ' + all.length);
    await go('#/library');
    await page.selectOption('#pagesize', '12');
    await page.waitForFunction(() => document.querySelectorAll('#library .card').length === 12);
    const p1 = await page.$$eval('#library .card', (cs) => cs.map((c) => c.dataset.sha));
    await shot('library');
    await page.click('button:text("Older →")');
    await page.waitForFunction((n) => document.querySelectorAll('#library .card').length === n && /Page 2/.test(document.querySelector('.pager').textContent), all.length - 12);
    const p2 = await page.$$eval('#library .card', (cs) => cs.map((c) => c.dataset.sha));
    assert.deepEqual(p1.concat(p2), all, 'the two pages are the whole library, newest first, no repeat');
    assert.ok(await page.isDisabled('button:text("Older →")'), 'no third page');
    await page.click('button:text("← Newer")');
    await page.waitForFunction(() => /Page 1/.test(document.querySelector('.pager').textContent));
    assert.deepEqual(await page.$$eval('#library .card', (cs) => cs.map((c) => c.dataset.sha)), p1);
    // a site filter
    await page.fill('#site', 'photos.test');
    await page.click('button:text("Filter")');
    await page.waitForFunction(() => !document.querySelector('#library .spinner'));
    const sites = await page.$$eval('#library .card .meta', (ms) => ms.map((m) => m.textContent));
    assert.ok(sites.length >= 1 && sites.every((t) => t.includes('photos.test')), sites.join('|'));
    // an image opened from the library shows its faces and the reasons for the others
    await page.fill('#site', '');
    await page.click('button:text("Filter")');
    await page.waitForSelector('#library .card[data-sha="' + sha(F('two_people.jpg')) + '"]');
    await page.click('#library .card[data-sha="' + sha(F('two_people.jpg')) + '"] button.imgbtn');
    await page.waitForSelector('#viewer[open] .card.face');
    assert.equal(await page.locator('#viewer .card.face').count(), 2);
    await page.click('#viewer button.close');
  });

  it('crawls: a loopback site with live counts, then cancelled', async () => {
    const face = fs.readFileSync(F('knn_examples/train/kit_harington/john1.jpeg'));
    const dup = fs.readFileSync(F('knn_examples/train/obama/obama.jpg'));
    const site = http.createServer((req, res) => {
      const page = (html) => { res.writeHead(200, { 'Content-Type': 'text/html' }); res.end(html); };
      if (req.url === '/robots.txt') { res.writeHead(200, { 'Content-Type': 'text/plain' }); return res.end('User-agent: *\nCrawl-delay: 0.3\n'); }
      // the images first: the crawler takes what a page names in order
      if (req.url === '/') return page('<img src="/kit.jpg"><img src="/dup.jpg"><img src="/text.jpg">' +
        [...Array(40).keys()].map((i) => `<a href="/p${i}.html">${i}</a>`).join(' '));
      if (/^\/p\d+\.html$/.test(req.url)) return page('<p>nothing here</p>');
      if (req.url === '/kit.jpg') { res.writeHead(200, { 'Content-Type': 'image/jpeg' }); return res.end(face); }
      if (req.url === '/dup.jpg') { res.writeHead(200, { 'Content-Type': 'image/jpeg' }); return res.end(dup); }
      if (req.url === '/text.jpg') { res.writeHead(200, { 'Content-Type': 'image/jpeg' }); return res.end('not an image'); }
      res.writeHead(404); res.end();
    });
    await new Promise((r) => site.listen(0, '127.0.0.1', r));
    const base = 'http://127.0.0.1:' + site.address().port;
    try {
      await go('#/crawls');
      await page.waitForSelector('#jobs .state');
      await page.fill('#crawlurl', base + '/');
      await page.fill('#depth', '1');
      await page.click('#crawl');
      await page.waitForSelector('#jobs tr[data-state="running"]', { timeout: 30000 });
      const pages = () => page.$eval('#jobs tbody tr', (tr) => Number(tr.children[2].textContent));
      const seen = [await pages()];
      for (let i = 0; i < 60 && new Set(seen).size < 3; i++) { await page.waitForTimeout(500); seen.push(await pages()); }
      assert.ok(new Set(seen).size >= 3, 'the page count rises while the crawl runs: ' + seen.join(','));
      await page.waitForFunction(() => { const tr = document.querySelector('#jobs tbody tr');
        return [3, 4, 5].every((i) => Number(tr.children[i].textContent) >= 1); }, null, { timeout: 30000 });
      const row = await page.$eval('#jobs tbody tr', (tr) => [...tr.children].map((td) => td.textContent));
      assert.equal(row[3], '1', 'one image saved (kit.jpg)');
      assert.equal(row[4], '1', 'one duplicate (obama.jpg is indexed already)');
      assert.equal(row[5], '1', 'one skipped (text.jpg is not an image)');
      await shot('crawls');
      await page.click('#jobs tbody tr button.cancel');
      await page.waitForSelector('#jobs tr[data-state="cancelled"]', { timeout: 10000 });
      const after = await pages();
      assert.ok(after < 41, 'cancelled before every page was fetched: ' + after);
    } finally {
      site.close();
    }
  });

  it('erases a person from a search result: preview, confirm, and the library no longer has them', async () => {
    await go('#/search');
    await page.setInputFiles('#file', F('knn_examples/train/biden/biden2.jpg'));
    await page.waitForSelector('#results .card', { timeout: 30000 });
    const b1 = sha(F('knn_examples/train/biden/biden.jpg')), b2 = sha(F('knn_examples/train/biden/biden2.jpg'));
    await page.click('#results .card[data-sha="' + b1 + '"] a:text("Erase person")');
    await page.waitForSelector('#erasebar:not([hidden])', { timeout: 30000 });
    const listed = await page.$$eval('#eraseresults .card', (cs) => cs.map((c) => c.dataset.sha));
    assert.ok(listed.includes(b1) && listed.includes(b2), 'both Biden photos listed');
    await page.waitForFunction(() => [...document.querySelectorAll('#eraseresults img')].every((i) => i.complete && i.naturalWidth > 0));
    await shot('erasure', { fullPage: true });
    await page.click('#erasecancel');
    assert.match(await page.textContent('#erasestatus'), /Nothing erased/);
    await page.reload();
    await page.waitForSelector('#erasebar:not([hidden])', { timeout: 30000 });
    assert.ok(await page.isChecked('#block'), 'blocking new photos is the default');
    await page.click('#eraseconfirm');
    await page.waitForFunction(() => /^Erased \d+ image\(s\)/.test(document.querySelector('#erasestatus').textContent), null, { timeout: 30000 });
    await page.waitForSelector('#erasurelog tbody tr');
    const lib = (await L.api(s, 'GET', '/api/v1/images?limit=200')).data.images.map((i) => i.image_sha256);
    assert.ok(!lib.includes(b1) && !lib.includes(b2), 'the erased photos are gone from the library');
    await go('#/library');
    await page.waitForSelector('#library .card');
    assert.equal(await page.locator('#library .card[data-sha="' + b1 + '"]').count(), 0);
    // the block, lifted from the page
    await go('#/erasure');
    await page.waitForSelector('#blocks button.lift');
    await page.click('#blocks button.lift');
    await page.waitForSelector('#blocks .state');
    assert.equal((await L.api(s, 'GET', '/api/v1/erase/blocks')).data.blocks.length, 0);
  });

  it('dashboard: counts from the server and the dead letters', async () => {
    await go('#/dashboard');
    await page.waitForSelector('#stats .stat[data-stat="faces_indexed"]');
    const st = (await L.api(s, 'GET', '/api/v1/stats')).data;
    await page.waitForFunction((n) => document.querySelector('#stats [data-stat="faces_indexed"] b').textContent === String(n), st.faces_indexed);
    assert.ok(st.faces_indexed > 10);
    await shot('dashboard');
  });

  it('at 390 px every view fits the width (no horizontal scrolling)', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const v of ['#/search', '#/library', '#/people', '#/crawls', '#/erasure', '#/dashboard']) {
      await go(v);
      await noSpinner();
      const over = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(over <= 0, v + ' overflows by ' + over + ' px');
    }
    await go('#/search');
    await page.setInputFiles('#file', F('knn_examples/test/kit_with_rose.jpg'));
    await page.waitForSelector('#results .card', { timeout: 30000 });
    await page.waitForFunction(() => [...document.querySelectorAll('#results img')].every((i) => i.complete));
    const over = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(over <= 0, 'search results overflow by ' + over + ' px');
    const box = await page.$eval('#results', (r) => r.getBoundingClientRect().right);
    assert.ok(box <= 390, 'the results column is on screen');
    await shot('search-390', { fullPage: true });
    await page.setViewportSize({ width: 1440, height: 900 });
  });

  it('a server with tenants: the page asks for the key once and keeps it for the session', async () => {
    const key = L.createTenant(dir, 'acme');
    await go('#/library');
    await page.waitForSelector('#banner:not([hidden])', { timeout: 10000 });
    assert.match(await page.textContent('#banner'), /key/i);
    await page.click('#banner button');
    await page.fill('#keyinput', key);
    await page.click('#keydlg button[value=save]');
    // .state is also the loading state: wait for the listing's answer
    await page.waitForSelector('#library .state:not(:has(.spinner))', { timeout: 10000 });
    assert.match(await page.textContent('#library'), /Nothing indexed yet/, 'the new tenant sees none of the open-mode data');
    await go('#/people');
    await page.waitForSelector('#people .state');
    assert.ok(await page.isHidden('#banner'), 'the key is kept while the tab lives');
    assert.equal(await page.evaluate(() => sessionStorage.getItem('visage_key')), key);
    assert.equal(await page.evaluate(() => localStorage.getItem('visage_key')), null, 'never kept beyond the session');
  });

  it('no script error on any page', () => {
    assert.deepEqual(pageErrors, []);
  });
});
