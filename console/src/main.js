// main.js: the console's entry: picks the page for the URL's path, gives it a
// fresh abort signal (leaving a page cancels its requests and timers), and
// wires the token prompt to every 401.
import { el, clear } from './util.js';
import { setUnauthorizedHandler, getToken } from './api.js';
import { askToken, setRerender, interceptLinks } from './ui.js';
import { renderWorkloads } from './workloads.js';
import { renderWorkload } from './workload.js';
import { renderTelemetry } from './telemetry.js';
import { renderReports } from './reports.js';

let current = null;

function route() {
  if (current) current.leave();
  const ctl = new AbortController();
  const timers = [];
  const page = {
    main: document.getElementById('main'),
    signal: ctl.signal,
    every(ms, fn) { timers.push(setInterval(fn, ms)); },
    leave() { ctl.abort(); timers.forEach(clearInterval); },
  };
  current = page;
  const path = location.pathname;
  let section = 'workloads';
  const wl = path.match(/^\/workloads\/([^/]+)$/);
  if (path === '/' || path === '/workloads') renderWorkloads(page);
  else if (wl) renderWorkload(page, decodeURIComponent(wl[1]));
  else if (path === '/telemetry') { section = 'telemetry'; renderTelemetry(page); }
  else if (path === '/reports') { section = 'reports'; renderReports(page); }
  else {
    section = '';
    clear(page.main, el('h1', { text: 'Not found' }), el('p', {}, 'No console page at ' + path + '. ',
      el('a', { href: '/', text: 'Workloads' })));
  }
  for (const a of document.querySelectorAll('nav a'))
    if (a.dataset.section === section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
}

function start() {
  setRerender(route);
  setUnauthorizedHandler((err) => askToken(err));
  interceptLinks();
  const tb = document.getElementById('token-button');
  tb.hidden = !getToken();
  tb.addEventListener('click', () => askToken(null));
  route();
}

start();
