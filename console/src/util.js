// util.js: small DOM and formatting helpers shared by every page.

// el('div.a.b', {attrs}, children...): an element; attrs starting with "on" are listeners.
export function el(tag, attrs, ...kids) {
  const [name, ...classes] = tag.split('.');
  const e = document.createElement(name || 'div');
  if (classes.length) e.className = classes.join(' ');
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'text') e.textContent = v;
    else if (k in e && typeof v !== 'string') e[k] = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) if (kid !== null && kid !== undefined && kid !== false)
    e.append(kid instanceof Node ? kid : String(kid));
  return e;
}

export function clear(node, ...kids) {
  node.replaceChildren(...kids.flat().filter((k) => k !== null && k !== undefined && k !== false));
  return node;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
export function fmtBytes(v) {
  if (v === null || v === undefined || v === '' || isNaN(v)) return '–';
  let x = Number(v), i = 0;
  while (Math.abs(x) >= 1024 && i < UNITS.length - 1) { x /= 1024; i++; }
  return (i ? x.toFixed(Math.abs(x) < 10 ? 2 : 1) : String(Math.round(x))) + ' ' + UNITS[i];
}

// Up to 3 significant decimals, no trailing zeros.
export function fmtNum(v, digits = 3) {
  if (v === null || v === undefined || v === '' || isNaN(v)) return '–';
  const x = Number(v);
  if (Number.isInteger(x)) return x.toLocaleString('en-US');
  const a = Math.abs(x);
  const d = a >= 100 ? 1 : a >= 1 ? 2 : digits;
  return x.toLocaleString('en-US', { maximumFractionDigits: d });
}

export function fmtDuration(sec) {
  if (sec === null || sec === undefined || isNaN(sec)) return '–';
  sec = Math.max(0, Math.round(sec));
  const d = Math.floor(sec / 86400), h = Math.floor((sec % 86400) / 3600);
  const m = Math.floor((sec % 3600) / 60), s = sec % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}

export function ageOf(iso, nowMs = Date.now()) {
  return iso ? fmtDuration((nowMs - Date.parse(iso)) / 1000) : '–';
}

// "2026-12-04 22:14:00 UTC": the API's times are UTC and so is the console.
export function fmtTime(iso) {
  if (!iso) return '–';
  const d = typeof iso === 'number' ? new Date(iso) : new Date(iso);
  if (isNaN(d)) return String(iso);
  return d.toISOString().replace('T', ' ').replace(/\.000Z$|Z$/, '').replace(/(\.\d+)$/, '$1') + ' UTC';
}

// RFC 3339 with whole seconds, as the API writes it.
export function iso(ms) {
  return new Date(Math.round(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

// <input type=datetime-local> value (UTC) <-> ms.
export function toLocalInput(ms) {
  return new Date(ms).toISOString().slice(0, 16);
}
export function fromLocalInput(v) {
  const t = Date.parse(v + ':00Z');
  return isNaN(t) ? null : t;
}

export function debounce(fn, ms) {
  let t = 0;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}
