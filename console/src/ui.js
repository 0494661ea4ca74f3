// ui.js: what every page shares: error boxes, the token prompt, navigation
// without reloads (links stay real links: a new tab opens the same URL), and
// the one place a page's state is written to the URL.
import { el, clear } from './util.js';
import { getToken, setToken } from './api.js';

// An error box with the API's status, message and details, as the API gave them.
export function errorBox(err, what) {
  const text = err && err.text ? err.text : String((err && err.message) || err);
  return el('div.error', { role: 'alert' },
    el('strong', { text: what ? what + ': ' : 'Error: ' }), el('span.error-text', { text }));
}

export function showError(node, err, what) {
  if (err && err.name === 'AbortError') return;
  clear(node, errorBox(err, what));
}

// ---- the token prompt (--auth=jwt) ----

let rerender = () => {};
export function setRerender(fn) { rerender = fn; }

export function askToken(err) {
  const box = document.getElementById('auth');
  const input = el('input', { type: 'password', id: 'token-input', name: 'token', autocomplete: 'off',
    spellcheck: 'false', required: true, placeholder: 'eyJhbGciOi…' });
  const form = el('form.auth-form', { role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'auth-title',
    onsubmit: (e) => {
      e.preventDefault();
      setToken(input.value.trim());
      box.hidden = true;
      document.getElementById('token-button').hidden = false;
      rerender();
    },
  },
  el('h2', { id: 'auth-title', text: 'Sign in with a token' }),
  el('p', { text: 'This strata runs with --auth=jwt: paste a bearer token with the metrics:read scope '
    + '(reports:write to create or delete reports). It is kept for this browser tab only.' }),
  err ? el('p.error', { role: 'alert', id: 'auth-error' }, el('strong', { text: err.text })) : null,
  el('label', { for: 'token-input', text: 'Token' }), input,
  el('div.row', {}, el('button', { type: 'submit', text: 'Use token' }),
    getToken() ? el('button.ghost', { type: 'button', text: 'Forget token',
      onclick: () => { setToken(''); input.value = ''; } }) : null));
  clear(box, form);
  box.hidden = false;
  input.focus();
}

// ---- navigation ----

export function navigate(href, replace) {
  if (replace) history.replaceState(null, '', href);
  else history.pushState(null, '', href);
  rerender();
}

// A page's state into the URL without a new history entry per keystroke.
export function setQuery(params, push) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '' || v === false) continue;
    for (const x of Array.isArray(v) ? v : [v]) q.append(k, String(x));
  }
  const s = q.toString();
  const href = location.pathname + (s ? '?' + s : '');
  if (href === location.pathname + location.search) return;
  if (push) history.pushState(null, '', href);
  else history.replaceState(null, '', href);
}

// Plain clicks on links marked data-nav (or inside main) stay in the page;
// modified clicks (new tab, new window) do what the browser does.
export function interceptLinks() {
  document.addEventListener('click', (e) => {
    const a = e.target.closest && e.target.closest('a[href]');
    if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    if (a.target || a.hasAttribute('download') || a.origin !== location.origin) return;
    if (a.pathname.startsWith('/api/') || a.pathname.startsWith('/console/')) return;
    e.preventDefault();
    navigate(a.pathname + a.search);
  });
  window.addEventListener('popstate', () => rerender());
}

export function pageTitle(t) {
  document.title = t ? t + ' · strata' : 'strata';
}
