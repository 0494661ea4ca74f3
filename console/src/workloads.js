// workloads.js: the workloads table.  Filters, sort, search and paging are the
// API's own parameters (filterBy, sortBy, sortOrder, search, offset, limit,
// deleted), kept in the page's URL under the same names, so a URL is a query.
import { el, clear, fmtNum, ageOf, iso, debounce } from './util.js';
import { apiGet } from './api.js';
import { errorBox, setQuery, pageTitle } from './ui.js';

export const PHASES = ['Creating', 'Initializing', 'Resuming', 'Pending', 'Deleting', 'Running', 'Updating',
  'Stopped', 'Stopping', 'Degraded', 'Failed', 'Completed', 'Terminating', 'Unknown'];
const TYPES = ['Training', 'Distributed', 'Inference', 'Workspace'];
const LIMITS = [25, 50, 100, 200];

// Columns: header, the API's sortBy for it (null: the API cannot sort by it).
const COLS = [
  ['Name', 'name'], ['Type', 'type'], ['Project', 'projectName'], ['Department', 'departmentName'],
  ['Phase', 'phase'], ['In phase for', 'phaseUpdatedAt'], ['GPUs', 'allocatedGPU'], ['GPU util now', null],
  ['Pods', null],
];

function readState() {
  const q = new URLSearchParams(location.search);
  return {
    filterBy: q.getAll('filterBy').flatMap((f) => f.split(',')).filter(Boolean),
    sortBy: q.get('sortBy') || '', sortOrder: q.get('sortOrder') || '', search: q.get('search') || '',
    offset: Math.max(0, parseInt(q.get('offset') || '0', 10) || 0),
    limit: parseInt(q.get('limit') || '50', 10) || 50, deleted: q.get('deleted') === 'true',
  };
}

// The one filter term on field with ==, if any (what the selects show).
function eqTerm(st, field) {
  const t = st.filterBy.find((f) => f.startsWith(field + '=='));
  return t ? t.slice(field.length + 2) : '';
}
function withEq(st, field, value) {
  const rest = st.filterBy.filter((f) => !f.startsWith(field + '=='));
  return value ? rest.concat(field + '==' + value) : rest;
}

export function apiParams(st) {
  return { filterBy: st.filterBy.length ? st.filterBy.join(',') : '', sortBy: st.sortBy, sortOrder: st.sortOrder,
    search: st.search, offset: st.offset || '', limit: st.limit, deleted: st.deleted ? 'true' : '' };
}

export function renderWorkloads(page) {
  pageTitle('Workloads');
  let st = readState();
  const status = el('p.muted', { id: 'wl-status', 'aria-live': 'polite' });
  const errors = el('div');
  const tbody = el('tbody');
  const pager = el('div.pager');
  const headRow = el('tr');

  const commit = (next, push) => {
    st = { ...st, ...next };
    setQuery(apiParams(st), push);
    load();
  };
  const search = el('input', { type: 'search', id: 'wl-search', value: st.search, placeholder: 'Search names…',
    'aria-label': 'Search', oninput: debounce((e) => commit({ search: e.target.value, offset: 0 }), 250) });
  const sel = (id, label, options, value, onchange) => el('label.field', { for: id }, label,
    el('select', { id, onchange }, options.map(([v, t]) => el('option', { value: v, text: t, selected: v === value }))));
  const phaseSel = sel('wl-phase', 'Phase', [['', 'any']].concat(PHASES.map((p) => [p, p])), eqTerm(st, 'phase'),
    (e) => commit({ filterBy: withEq(st, 'phase', e.target.value), offset: 0 }));
  const typeSel = sel('wl-type', 'Type', [['', 'any']].concat(TYPES.map((p) => [p, p])), eqTerm(st, 'type'),
    (e) => commit({ filterBy: withEq(st, 'type', e.target.value), offset: 0 }));
  const filterInput = el('input', { id: 'wl-filter', value: st.filterBy.join(','), size: 28,
    placeholder: 'projectName=@team,allocatedGPU>=1' });
  const filterForm = el('form.field', { onsubmit: (e) => {
    e.preventDefault();
    commit({ filterBy: filterInput.value.split(',').map((s) => s.trim()).filter(Boolean), offset: 0 }, true);
  } }, el('label', { for: 'wl-filter', text: 'filterBy' }), filterInput, el('button', { type: 'submit', text: 'Apply' }));
  const deleted = el('label.field.check', { for: 'wl-deleted' }, el('input', { type: 'checkbox', id: 'wl-deleted',
    checked: st.deleted, onchange: (e) => commit({ deleted: e.target.checked, offset: 0 }, true) }), 'Deleted only');

  // the headers show the sort in force, so they are drawn again on every load
  function drawHead() {
    clear(headRow, COLS.map(([name, key]) => {
      if (!key) return el('th', { scope: 'col', text: name });
      const on = st.sortBy === key;
      const dir = on ? (st.sortOrder === 'desc' ? 'descending' : 'ascending') : 'none';
      return el('th', { scope: 'col', 'aria-sort': dir }, el('button.sort', {
        type: 'button', 'data-sort': key, text: name + (on ? (st.sortOrder === 'desc' ? ' ▼' : ' ▲') : ''),
        onclick: () => commit({ sortBy: key, sortOrder: on && st.sortOrder !== 'desc' ? 'desc' : 'asc', offset: 0 }, true),
      }));
    }));
  }

  clear(page.main,
    el('div.page-head', {}, el('h1', { text: 'Workloads' }), status),
    el('div.toolbar', {}, search, phaseSel, typeSel, filterForm, deleted),
    errors,
    el('div.table-wrap', {}, el('table.grid', { id: 'workloads' }, el('thead', {}, headRow), tbody)),
    pager);

  // a newer load (typing in the search box) wins over answers still on their way
  let seq = 0;
  async function load() {
    const my = ++seq;
    clear(errors);
    drawHead();
    status.textContent = '';
    const p = apiParams(st);
    let list, count;
    try {
      [list, count] = await Promise.all([
        apiGet('/workloads', p, { signal: page.signal }),
        apiGet('/workloads/count', { filterBy: p.filterBy, search: p.search, deleted: p.deleted }, { signal: page.signal }),
      ]);
    } catch (e) {
      if (e.name === 'AbortError' || my !== seq) return;
      clear(tbody);
      errors.append(errorBox(e, 'Workloads'));
      status.textContent = '';
      return;
    }
    if (my !== seq) return;
    const rows = list.workloads || [];
    const n = count.count;
    status.textContent = rows.length ? `${st.offset + 1}–${st.offset + rows.length} of ${n}` : `none of ${n}`;
    const now = Date.now();
    clear(tbody, rows.length ? rows.map((w) => row(w, now)) :
      el('tr', {}, el('td.empty', { colspan: COLS.length, text: 'No workloads match.' })));
    clear(pager,
      el('button', { type: 'button', id: 'wl-prev', text: '← Previous', disabled: st.offset === 0,
        onclick: () => commit({ offset: Math.max(0, st.offset - st.limit) }, true) }),
      el('button', { type: 'button', id: 'wl-next', text: 'Next →', disabled: list.next === undefined,
        onclick: () => commit({ offset: list.next }, true) }),
      sel('wl-limit', 'Rows', LIMITS.map((l) => [String(l), String(l)]), String(st.limit),
        (e) => commit({ limit: parseInt(e.target.value, 10), offset: 0 }, true)));
    fillUtil(rows, tbody, page.signal);
  }
  load();
}

function row(w, now) {
  const gpu = w.allocatedResources ? w.allocatedResources.gpu : null;
  const req = w.requestedPods ? w.requestedPods.number : null;
  return el('tr', { 'data-id': w.id },
    el('td', {}, el('a', { href: '/workloads/' + encodeURIComponent(w.id), text: w.name })),
    el('td', { text: w.type }),
    el('td', { text: w.projectName }),
    el('td', { text: w.departmentName }),
    el('td', {}, el('span.phase', { 'data-phase': w.phase, text: w.phase }), w.deletedAt ? el('span.muted', { text: ' (deleted)' }) : null),
    el('td', { title: w.phaseUpdatedAt, text: ageOf(w.phaseUpdatedAt, now) }),
    el('td.num', { text: gpu === null || gpu === undefined ? '–' : fmtNum(gpu) }),
    el('td.num.util', { text: '' }),
    el('td.num', { text: `${w.runningPods}/${req === null || req === undefined ? '–' : req}` }));
}

// GPU utilization now: the mean over the workload's GPUs of the last 5 minutes,
// one metrics call per row that has GPUs (the list has no such field).
async function fillUtil(rows, tbody, signal) {
  const end = Math.floor(Date.now() / 1000) * 1000, start = end - 5 * 60 * 1000;
  await Promise.all(rows.map(async (w) => {
    const tr = tbody.querySelector(`tr[data-id="${w.id}"]`);
    const td = tr && tr.querySelector('.util');
    if (!td) return;
    td.dataset.start = iso(start);
    td.dataset.end = iso(end);
    if (w.deletedAt || !(w.allocatedResources && w.allocatedResources.gpu > 0)) { td.textContent = '–'; return; }
    try {
      const m = await apiGet(`/workloads/${w.id}/metrics`,
        { metricType: 'GPU_UTILIZATION', start: td.dataset.start, end: td.dataset.end, numberOfSamples: 1 }, { signal });
      const v = (m.measurements || []).filter((x) => x.values && x.values.length).map((x) => Number(x.values[x.values.length - 1].value));
      td.textContent = v.length ? fmtNum(v.reduce((a, b) => a + b, 0) / v.length, 1) + ' %' : '–';
    } catch (e) {
      if (e.name !== 'AbortError') { td.textContent = '!'; td.title = e.text || String(e); }
    }
  }));
}
