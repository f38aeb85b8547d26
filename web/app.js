// app.js - the web app's shell: hash routes (#/view/arg?k=v, so a reload or
// a shared link opens the same view and no server route is needed), the API
// key dialog, and the banner that asks for a key when the server wants one.
import { apiKey, setApiKey, onAuthNeeded } from './api.js';
import { failed } from './ui.js';
import * as search from './search.js';
import * as library from './library.js';
import * as people from './people.js';
import * as crawls from './crawls.js';
import * as erasure from './erasure.js';
import * as dashboard from './dashboard.js';

const VIEWS = { search, library, people, crawls, erasure, dashboard };
const TITLES = { search: 'Search', library: 'Library', people: 'People', crawls: 'Crawls', erasure: 'Erasure', dashboard: 'Dashboard' };
let cleanup = null;

// "#/people/abc?x=1" -> {name: 'people', arg: 'abc', params: URLSearchParams}
function parseHash() {
  const h = location.hash.replace(/^#\/?/, '');
  const [p, q] = h.split('?');
  const [name, ...rest] = p.split('/');
  return { name: VIEWS[name] ? name : 'search', arg: rest.join('/') ? decodeURIComponent(rest.join('/')) : '', params: new URLSearchParams(q || '') };
}

async function route() {
  const { name, arg, params } = parseHash();
  if (cleanup) { try { cleanup(); } catch { /* a view's timer */ } cleanup = null; }
  document.querySelectorAll('#nav a').forEach((a) => a.toggleAttribute('aria-current', false));
  const link = document.querySelector('#nav a[data-view="' + name + '"]');
  if (link) link.setAttribute('aria-current', 'page');
  document.title = 'visage — ' + TITLES[name];
  for (const d of document.querySelectorAll('dialog[open]')) d.close();
  const main = document.getElementById('view');
  main.replaceChildren();
  main.dataset.view = name;
  try {
    cleanup = (await VIEWS[name].render(main, { arg, params })) || null;
  } catch (e) {
    main.replaceChildren(failed(e));
  }
}

function keyDialog() {
  const d = document.getElementById('keydlg');
  const input = document.getElementById('keyinput');
  input.value = apiKey();
  d.showModal();
  input.focus();
}

function updateKeyButton() {
  document.getElementById('keybtn').textContent = apiKey() ? 'API key ✓' : 'API key';
}

document.getElementById('keybtn').addEventListener('click', keyDialog);
document.getElementById('keydlg').addEventListener('close', () => {
  const d = document.getElementById('keydlg');
  if (d.returnValue === 'save') setApiKey(document.getElementById('keyinput').value.trim());
  if (d.returnValue === 'clear') setApiKey('');
  if (d.returnValue === 'save' || d.returnValue === 'clear') {
    document.getElementById('banner').hidden = true;
    updateKeyButton();
    route();
  }
});
onAuthNeeded((msg) => {
  const b = document.getElementById('banner');
  b.replaceChildren(document.createTextNode((msg || 'The server needs an API key') + '. '));
  const btn = document.createElement('button');
  btn.type = 'button'; btn.className = 'small'; btn.textContent = 'Enter the API key';
  btn.addEventListener('click', keyDialog);
  b.append(btn);
  b.hidden = false;
});
window.addEventListener('hashchange', route);
updateKeyButton();
route();
