// reports.js: consumption reports: the create form, the list (following each
// report from Pending through Processing to Ready or Failed by polling, no
// reload), CSV download and delete.
import { el, clear, iso, toLocalInput, fromLocalInput } from './util.js';
import { apiGet, apiPost, apiDelete, apiBlob } from './api.js';
import { errorBox, pageTitle } from './ui.js';

const GROUPS = ['', 'Project', 'Department', 'Cluster', 'Nodepool'];

// "2026-12-04 00:00": the list's times, to the minute (UTC, as the column says)
function short(t) {
  const d = new Date(t);
  return isNaN(d) ? String(t || '–') : d.toISOString().slice(0, 16).replace('T', ' ');
}

export function renderReports(page) {
  pageTitle('Reports');
  const formErr = el('div', { id: 'rp-form-error' });
  const listErr = el('div');
  const tbody = el('tbody');
  const count = el('span.muted', { id: 'rp-count' });
  const day = 86400000;
  const today = Math.floor(Date.now() / day) * day; // the API refuses an end past now + 10m
  const f = {
    name: el('input', { id: 'rp-name', required: true, size: 24, value: 'report-' + new Date().toISOString().slice(0, 10) }),
    start: el('input', { id: 'rp-start', type: 'datetime-local', required: true, value: toLocalInput(today - 7 * day) }),
    end: el('input', { id: 'rp-end', type: 'datetime-local', required: true, value: toLocalInput(Math.floor(Date.now() / 60000) * 60000) }),
    groupBy: el('select', { id: 'rp-group' }, GROUPS.map((g) => el('option', { value: g, text: g || 'none (per workload)' }))),
    filterBy: el('input', { id: 'rp-filter', size: 30, placeholder: 'projectName==team-a,clusterId==…' }),
  };
  const lab = (id, text, input) => el('label.field', { for: id }, text, input);
  const form = el('form.toolbar', { id: 'rp-form', onsubmit: async (e) => {
    e.preventDefault();
    clear(formErr);
    const s = fromLocalInput(f.start.value), t = fromLocalInput(f.end.value);
    const body = { name: f.name.value.trim(), start: s === null ? f.start.value : iso(s), end: t === null ? f.end.value : iso(t) };
    if (f.groupBy.value) body.groupBy = f.groupBy.value;
    const filters = f.filterBy.value.split(',').map((x) => x.trim()).filter(Boolean);
    if (filters.length) body.filterBy = filters;
    try {
      await apiPost('/org-unit/reports', body);
      load();
    } catch (err) {
      formErr.append(errorBox(err, 'Create report'));
    }
  } }, lab('rp-name', 'Name', f.name), lab('rp-start', 'Start (UTC)', f.start), lab('rp-end', 'End (UTC)', f.end),
  lab('rp-group', 'groupBy', f.groupBy), lab('rp-filter', 'filterBy', f.filterBy), el('button', { type: 'submit', text: 'Create report' }));

  clear(page.main, el('div.page-head', {}, el('h1', { text: 'Reports' }), count),
    el('h2', { text: 'New consumption report' }), form, formErr,
    el('h2', { text: 'Reports' }), listErr,
    el('div.table-wrap', {}, el('table.grid', { id: 'reports' }, el('thead', {}, el('tr', {},
      ['Name', 'Status', 'Range (UTC)', 'groupBy', 'filterBy', 'Created (UTC)', 'By', ''].map((h) => el('th', { scope: 'col', text: h })))), tbody)));

  let busy = false, pending = false, last = 0;
  async function load() {
    if (busy) return;
    busy = true;
    try {
      const [r, c] = await Promise.all([
        apiGet('/org-unit/reports', { sortBy: 'createdAt', sortOrder: 'desc', limit: 100 }, { signal: page.signal }),
        apiGet('/org-unit/reports/count', null, { signal: page.signal })]);
      clear(listErr);
      count.textContent = `${c.count} report${c.count === 1 ? '' : 's'}`;
      const list = r.reports || [];
      pending = list.some((x) => x.status === 'Pending' || x.status === 'Processing');
      clear(tbody, list.length ? list.map(row) : el('tr', {}, el('td.empty', { colspan: 8, text: 'No reports yet.' })));
    } catch (e) {
      if (e.name !== 'AbortError') clear(listErr, errorBox(e, 'Reports'));
    } finally {
      busy = false;
      last = Date.now();
    }
  }

  function row(x) {
    const dl = el('button.ghost', { type: 'button', text: 'CSV', 'aria-label': 'Download the CSV of ' + x.name,
      title: 'Download the CSV', 'data-action': 'download', disabled: x.status !== 'Ready',
      onclick: async () => {
        try {
          const { blob, disposition } = await apiBlob(`/org-unit/reports/${encodeURIComponent(x.id)}/file`, 'text/csv');
          const m = disposition.match(/filename="?([^";]+)"?/);
          const a = el('a', { href: URL.createObjectURL(blob), download: m ? m[1] : x.name + '.csv' });
          document.body.append(a);
          a.click();
          a.remove();
          setTimeout(() => URL.revokeObjectURL(a.href), 10000);
        } catch (e) {
          clear(listErr, errorBox(e, 'Download ' + x.name));
        }
      } });
    const del = el('button.ghost', { type: 'button', text: 'Delete', 'aria-label': 'Delete report ' + x.name,
      'data-action': 'delete', onclick: async () => {
      if (!confirm(`Delete report ${x.name}?`)) return;
      try {
        await apiDelete(`/org-unit/reports/${encodeURIComponent(x.id)}`);
        load();
      } catch (e) {
        clear(listErr, errorBox(e, 'Delete ' + x.name));
      }
    } });
    return el('tr', { 'data-id': x.id, 'data-name': x.name },
      el('td', { text: x.name }),
      el('td', {}, el('span.status', { 'data-status': x.status, text: x.status }), x.statusMessage ? el('div.muted', { text: x.statusMessage }) : null),
      el('td', { text: `${short(x.start)} → ${short(x.end)}` }),
      el('td', { text: x.groupBy || '–' }),
      el('td', { text: (x.filterBy || []).join(', ') || '–' }),
      el('td', { title: x.createdAt, text: short(x.createdAt) }),
      el('td', { text: x.createdBy }),
      el('td', {}, el('div.row', {}, dl, del)));
  }

  load();
  // each second while a report is being made, else every 10 s (others' reports)
  page.every(1000, () => {
    if (document.hidden) return;
    if (pending || Date.now() - last >= 10000) load();
  });
}
