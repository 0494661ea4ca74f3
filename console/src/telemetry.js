// telemetry.js: the four telemetry types for now, over the workloads that are
// not deleted, grouped by up to two keys, as bars or as a table.  The URL keeps
// the API's own parameters (groupBy, clusterId, nodepoolName, departmentId,
// filterByPhases) and the view.
import { el, clear, fmtNum } from './util.js';
import { apiGet } from './api.js';
import { errorBox, setQuery, pageTitle } from './ui.js';
import { PHASES } from './workloads.js';

export const TELEMETRY_TYPES = [
  ['WORKLOADS_COUNT', 'Workloads'], ['GPU_ALLOCATION', 'Allocated GPUs'],
  ['IDLE_ALLOCATED_GPUS', 'Idle allocated GPUs'], ['PENDING_TIME_DISTRIBUTION', 'Time in Pending'],
];
const KEYS = ['ClusterId', 'DepartmentId', 'ProjectId', 'Type', 'CurrentNodepools', 'RequestedNodepools', 'Phase', 'Category'];

function readState() {
  const q = new URLSearchParams(location.search);
  return {
    groupBy: (q.get('groupBy') || '').split(',').filter((k) => KEYS.includes(k)).slice(0, 2),
    clusterId: q.get('clusterId') || '', nodepoolName: q.get('nodepoolName') || '',
    departmentId: q.get('departmentId') || '', filterByPhases: q.get('filterByPhases') || '',
    view: q.get('view') === 'table' ? 'table' : 'bars',
  };
}

export function groupText(g) {
  return (g || []).map((x) => (x.name ? `${x.name} (${x.value})` : x.value)).join(' · ') || 'all';
}

export function renderTelemetry(page) {
  pageTitle('Telemetry');
  let st = readState();
  const out = el('div', { id: 'telemetry' });
  const commit = (next) => {
    st = { ...st, ...next };
    setQuery({ groupBy: st.groupBy.join(','), clusterId: st.clusterId, nodepoolName: st.nodepoolName,
      departmentId: st.departmentId, filterByPhases: st.filterByPhases, view: st.view === 'table' ? 'table' : '' }, true);
    draw();
  };
  const keySel = (i) => el('label.field', { for: 'tm-group' + i }, i ? 'then by' : 'Group by',
    el('select', { id: 'tm-group' + i, onchange: (e) => {
      const g = st.groupBy.slice();
      g[i] = e.target.value;
      commit({ groupBy: g.filter(Boolean).filter((k, j, a) => a.indexOf(k) === j) });
    } }, [['', 'none'], ...KEYS.map((k) => [k, k])].map(([v, t]) => el('option', { value: v, text: t, selected: (st.groupBy[i] || '') === v }))));
  const text = (id, label, key, ph) => el('label.field', { for: id }, label, el('input', { id, value: st[key], placeholder: ph, size: 14,
    onchange: (e) => commit({ [key]: e.target.value.trim() }) }));
  const view = el('div.seg', { role: 'group', 'aria-label': 'View' }, ['bars', 'table'].map((v) =>
    el('button', { type: 'button', id: 'tm-view-' + v, text: v === 'bars' ? 'Bars' : 'Table', 'aria-pressed': String(st.view === v),
      onclick: () => { commit({ view: v }); view.querySelectorAll('button').forEach((b) => b.setAttribute('aria-pressed', String(b.id === 'tm-view-' + v))); } })));
  clear(page.main, el('div.page-head', {}, el('h1', { text: 'Telemetry' }), el('span.muted', { id: 'tm-time' })),
    el('div.toolbar', {}, keySel(0), keySel(1), text('tm-cluster', 'clusterId', 'clusterId', 'uuid'),
      text('tm-nodepool', 'nodepoolName', 'nodepoolName', 'h200'), text('tm-dept', 'departmentId', 'departmentId', '2'),
      text('tm-phases', 'filterByPhases', 'filterByPhases', PHASES.slice(3, 6).join(',')), view),
    out);

  async function draw() {
    const base = { groupBy: st.groupBy.join(','), clusterId: st.clusterId, nodepoolName: st.nodepoolName,
      departmentId: st.departmentId, filterByPhases: st.filterByPhases };
    const sections = TELEMETRY_TYPES.map(([type, title]) => {
      const body = el('div.note', { text: 'Loading…' });
      const sec = el('section.panel', { id: 'tm-' + type, 'data-type': type }, el('h3', { text: title }), body);
      return { type, sec, body };
    });
    clear(out, el('div.charts', {}, sections.map((s) => s.sec)));
    await Promise.all(sections.map(async (s) => {
      const p = { ...base, telemetryType: s.type };
      // PENDING_TIME_DISTRIBUTION is grouped by its 4 buckets first, so it takes one more key only
      if (s.type === 'PENDING_TIME_DISTRIBUTION') p.groupBy = st.groupBy.slice(0, 1).join(',');
      s.sec.dataset.groupBy = p.groupBy;
      try {
        const r = await apiGet('/workloads/telemetry', p, { signal: page.signal });
        document.getElementById('tm-time').textContent = 'as of ' + r.timestamp;
        clear(s.body);
        s.body.className = '';
        s.body.append(st.view === 'table' ? table(r.values, s.type) : bars(r.values, s.type));
        if (s.type === 'PENDING_TIME_DISTRIBUTION' && st.groupBy.length > 1)
          s.body.append(el('p.note', { text: `Grouped by its 4 buckets and ${st.groupBy[0]} only.` }));
      } catch (e) {
        if (e.name !== 'AbortError') clear(s.body, errorBox(e, s.type));
      }
    }));
  }
  draw();
}

function valueText(v, type) {
  return type === 'WORKLOADS_COUNT' || type === 'PENDING_TIME_DISTRIBUTION' ? v : fmtNum(v);
}

function bars(values, type) {
  if (!values.length) return el('p.note', { text: 'No workloads.' });
  const max = Math.max(1e-9, ...values.map((v) => Number(v.value)));
  return el('div.bars', {}, values.map((v) => {
    const fill = el('div.fill');
    fill.style.width = (100 * Number(v.value) / max).toFixed(2) + '%';
    return el('div.bar.tm-row', { 'data-value': v.value, 'data-groups': JSON.stringify(v.groups || []) },
      el('span', { text: groupText(v.groups) }), el('div.track', { role: 'presentation' }, fill),
      el('span.val', { text: valueText(v.value, type) }));
  }));
}

function table(values, type) {
  const keys = [...new Set(values.flatMap((v) => (v.groups || []).map((g) => g.key)))];
  return el('div.table-wrap', {}, el('table.grid', {},
    el('thead', {}, el('tr', {}, keys.map((k) => el('th', { scope: 'col', text: k })), el('th.num', { scope: 'col', text: 'Value' }))),
    el('tbody', {}, values.length ? values.map((v) => el('tr.tm-row', { 'data-value': v.value, 'data-groups': JSON.stringify(v.groups || []) },
      keys.map((k) => {
        const g = (v.groups || []).find((x) => x.key === k);
        return el('td', { text: g ? (g.name ? `${g.name} (${g.value})` : g.value) : '' });
      }), el('td.num', { text: valueText(v.value, type) })))
      : el('tr', {}, el('td.empty', { colspan: keys.length + 1, text: 'No workloads.' })))));
}
