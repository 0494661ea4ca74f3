// api.js: every call the console makes to strata's API.  The token (with
// --auth=jwt) lives in sessionStorage: kept for the tab's session, gone when it
// closes.  An answer other than 2xx becomes an ApiError carrying the API's own
// {"code","message","details"}, so pages show exactly what the API said.

const TOKEN_KEY = 'strata.token';
let onUnauthorized = () => {};

export class ApiError extends Error {
  constructor(status, message, details, path) {
    super(message);
    this.status = status;
    this.details = details || '';
    this.path = path;
  }
  get text() {
    return `${this.status} ${this.message}` + (this.details ? `: ${this.details}` : '');
  }
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}
export function setToken(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

// path under /api/v1, params: object (arrays repeat the name) or URLSearchParams.
export function apiUrl(path, params) {
  const q = params instanceof URLSearchParams ? params : new URLSearchParams();
  if (!(params instanceof URLSearchParams))
    for (const [k, v] of Object.entries(params || {})) {
      if (v === undefined || v === null || v === '') continue;
      for (const x of Array.isArray(v) ? v : [v]) q.append(k, x);
    }
  const s = q.toString();
  return '/api/v1' + path + (s ? '?' + s : '');
}

async function call(method, path, { params, body, accept, signal } = {}) {
  const headers = { Accept: accept || 'application/json' };
  const tok = getToken();
  if (tok) headers.Authorization = 'Bearer ' + tok;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const url = apiUrl(path, params);
  let r;
  try {
    r = await fetch(url, { method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, 'strata did not answer', String(e.message || e), url);
  }
  if (r.ok) return r;
  let msg = r.statusText, details = '';
  try {
    const j = await r.json();
    if (j && typeof j.message === 'string') { msg = j.message; details = j.details || ''; }
  } catch (e) { /* not the API's error body: keep the status text */ }
  const err = new ApiError(r.status, msg, details, url);
  if (r.status === 401) onUnauthorized(err);
  throw err;
}

export async function apiGet(path, params, opts = {}) {
  const r = await call('GET', path, { params, ...opts });
  return r.status === 204 ? null : r.json();
}
export async function apiText(path, params, accept) {
  return (await call('GET', path, { params, accept })).text();
}
export async function apiPost(path, body) {
  return (await call('POST', path, { body })).json();
}
export async function apiDelete(path) {
  await call('DELETE', path, {});
}
export async function apiBlob(path, accept) {
  const r = await call('GET', path, { accept });
  return { blob: await r.blob(), disposition: r.headers.get('Content-Disposition') || '' };
}

// Every line of /api/v1/export (JSON lines), parsed.
export async function apiExport(selector, startMs, endMs) {
  const text = await apiText('/export', { 'match[]': selector, start: startMs / 1000, end: endMs / 1000 });
  return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}
