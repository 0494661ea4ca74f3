// workload.js: one workload: its facts, charts of every metric type over a
// chosen range, phase history, pods, endpoints and elements.
//
// The range is in the URL: range=15m|1h|6h|24h|7d (ends now: the charts
// refresh while the page is open) or start/end (RFC 3339, a fixed range; a drag
// on any chart sets one).  Each chart asks the metrics API for its types with
// numberOfSamples = its plot width in CSS pixels (one point per pixel, at most
// the API's 1000), and draws as soon as its own answer arrives.
import { el, clear, fmtNum, fmtBytes, fmtTime, fmtDuration, ageOf, iso, toLocalInput, fromLocalInput } from './util.js';
import { apiGet, apiExport } from './api.js';
import { errorBox, setQuery, pageTitle } from './ui.js';
import { lineChart, heatmapChart, noData, FORMATS, color } from './charts.js';

const ROLLUP_MS = 300000;

// numberOfSamples for a plot `width` CSS pixels wide: one point per pixel (at most the
// API's 1000); for a range on the 5-minute grid, the largest count <= that whose buckets
// are whole multiples of 5 minutes, which the API answers from rollups (docs/console.md).
export function samplesFor(width, start, end) {
  const n = Math.max(1, Math.min(1000, width));
  const steps = (end - start) / ROLLUP_MS;
  if (start % ROLLUP_MS || end % ROLLUP_MS || steps < 2 * n) return n;
  for (let k = n; k > n / 2; k--) if (steps % k === 0) return k;
  return n;
}

export const RANGES = { '15m': 900, '1h': 3600, '6h': 21600, '24h': 86400, '7d': 604800 };

// Every metric type of the API, each on one chart.
export const PANELS = [
  { id: 'gpu-util', title: 'GPU utilization', types: ['GPU_UTILIZATION'], fmt: 'pct' },
  { id: 'gpu-mem', title: 'GPU memory used', types: ['GPU_MEMORY_USAGE_BYTES'], fmt: 'bytes' },
  { id: 'nvlink', title: 'NVLink bandwidth (TX + RX)', types: ['NVLINK_BANDWIDTH_TOTAL'], fmt: 'bps' },
  { id: 'gpu-alloc', title: 'GPU allocation (devices)', types: ['GPU_ALLOCATION'], fmt: 'num' },
  { id: 'gpu-mem-req', title: 'GPU memory requested', types: ['GPU_MEMORY_REQUEST_BYTES'], fmt: 'bytes' },
  { id: 'cpu', title: 'CPU cores', types: ['CPU_USAGE_CORES', 'CPU_REQUEST_CORES', 'CPU_LIMIT_CORES'], fmt: 'num' },
  { id: 'cpu-mem', title: 'CPU memory', types: ['CPU_MEMORY_USAGE_BYTES', 'CPU_MEMORY_REQUEST_BYTES', 'CPU_MEMORY_LIMIT_BYTES'], fmt: 'bytes' },
  { id: 'pods', title: 'Pods', types: ['POD_COUNT', 'RUNNING_POD_COUNT'], fmt: 'num' },
  { id: 'nim-req', title: 'NIM requests in flight', types: ['NIM_NUM_REQUESTS_RUNNING', 'NIM_NUM_REQUESTS_WAITING', 'NIM_NUM_REQUEST_MAX'], fmt: 'num' },
  { id: 'nim-done', title: 'NIM requests finished (per step)', types: ['NIM_REQUEST_SUCCESS_TOTAL', 'NIM_REQUEST_FAILURE_TOTAL'], fmt: 'num' },
  { id: 'nim-cache', title: 'NIM KV cache usage', types: ['NIM_GPU_CACHE_USAGE_PERC'], fmt: 'frac' },
  { id: 'nim-pct', title: 'NIM latency percentiles', types: ['NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES', 'NIM_E2E_REQUEST_LATENCY_SECONDS_PERCENTILES'], fmt: 'sec', kind: 'pct' },
  { id: 'nim-ttft', title: 'Time to first token (histogram)', types: ['NIM_TIME_TO_FIRST_TOKEN_SECONDS'], kind: 'heat' },
  { id: 'nim-e2e', title: 'End-to-end request latency (histogram)', types: ['NIM_E2E_REQUEST_LATENCY_SECONDS'], kind: 'heat' },
];

const SHORT = {
  CPU_USAGE_CORES: 'usage', CPU_REQUEST_CORES: 'request', CPU_LIMIT_CORES: 'limit',
  CPU_MEMORY_USAGE_BYTES: 'usage', CPU_MEMORY_REQUEST_BYTES: 'request', CPU_MEMORY_LIMIT_BYTES: 'limit',
  POD_COUNT: 'pods', RUNNING_POD_COUNT: 'running', NIM_NUM_REQUESTS_RUNNING: 'running',
  NIM_NUM_REQUESTS_WAITING: 'waiting', NIM_NUM_REQUEST_MAX: 'max', NIM_REQUEST_SUCCESS_TOTAL: 'success',
  NIM_REQUEST_FAILURE_TOTAL: 'failure', NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES: 'TTFT',
  NIM_E2E_REQUEST_LATENCY_SECONDS_PERCENTILES: 'E2E', GPU_ALLOCATION: 'allocated',
  GPU_MEMORY_REQUEST_BYTES: 'requested', NIM_GPU_CACHE_USAGE_PERC: 'KV cache',
};

function seriesLabel(m) {
  const l = m.labels || {};
  if (l.gpu !== undefined) return `GPU ${l.gpu}` + (l.node ? ` · ${l.node}` : '');
  return SHORT[m.type] || m.type;
}

// The range the URL asks for: {start, end} in ms, live when it ends now.
function readRange() {
  const q = new URLSearchParams(location.search);
  const s = Date.parse(q.get('start') || ''), e = Date.parse(q.get('end') || '');
  if (!isNaN(s) && !isNaN(e) && e > s) return { start: s, end: e, live: false, key: 'custom' };
  const key = RANGES[q.get('range')] ? q.get('range') : '1h';
  // 7 days ends on the 5-minute grid, so its buckets can be read from the store's rollups
  const grid = RANGES[key] >= 3 * 86400 ? ROLLUP_MS : 1000;
  const end = Math.floor(Date.now() / grid) * grid;
  return { start: end - RANGES[key] * 1000, end, live: true, key };
}

window.__strata = window.__strata || {};

export function renderWorkload(page, id) {
  pageTitle('Workload');
  const head = el('div');
  const rangeBar = el('div.toolbar', { id: 'range-bar' });
  const chartsNode = el('div.charts', { id: 'charts' });
  const phaseNode = el('div.panel', { id: 'phases' });
  const podsNode = el('div', { id: 'pods' });
  const epNode = el('div', { id: 'endpoints' });
  const elNode = el('div', { id: 'elements' });
  clear(page.main, head, rangeBar, chartsNode,
    el('h2', { text: 'Phase history' }), phaseNode,
    el('h2', { text: 'Pods' }), podsNode,
    el('h2', { text: 'Endpoints' }), epNode,
    el('h2', { text: 'Elements' }), elNode);

  const panels = PANELS.map((p) => {
    const plot = el('div.plot');
    const note = el('div.note');
    const node = el('section.panel', { id: 'chart-' + p.id, 'data-types': p.types.join(','), 'aria-label': p.title },
      el('h3', { text: p.title }), plot, note);
    chartsNode.append(node);
    return { ...p, node, plot, note, chart: null };
  });

  let range = readRange();
  let gen = 0;
  // endpoints and elements wait for the first chart: they matter less than it does
  let firstDone;
  const firstDrawn = new Promise((resolve) => { firstDone = resolve; });

  function drawRangeBar() {
    const buttons = Object.keys(RANGES).map((k) => el('button', { type: 'button', 'data-range': k, text: k,
      'aria-pressed': String(range.key === k), onclick: () => { setQuery({ range: k }, true); reload(); } }));
    const from = el('input', { type: 'datetime-local', id: 'range-start', value: toLocalInput(range.start), 'aria-label': 'Start (UTC)' });
    const to = el('input', { type: 'datetime-local', id: 'range-end', value: toLocalInput(range.end), 'aria-label': 'End (UTC)' });
    const custom = el('form.row', { onsubmit: (e) => {
      e.preventDefault();
      const s = fromLocalInput(from.value), t = fromLocalInput(to.value);
      if (s !== null && t !== null && t > s) { setQuery({ start: iso(s), end: iso(t) }, true); reload(); }
    } }, from, el('span', { text: '→' }), to, el('span.muted', { text: 'UTC' }),
    el('button', { type: 'submit', text: 'Apply', id: 'range-apply' }));
    clear(rangeBar, el('div.seg', { role: 'group', 'aria-label': 'Range' }, buttons), custom,
      el('span.muted', { id: 'range-text', text: `${fmtTime(range.start)} → ${fmtTime(range.end)}` +
        (range.live ? ' · live' : ' · fixed') }));
  }

  // every chart sharing the cursor reports the same selection: act once
  let lastZoom = '';
  function onZoom(a, b) {
    if (`${a}-${b}` === lastZoom) return;
    lastZoom = `${a}-${b}`;
    setQuery({ start: iso(a * 1000), end: iso(b * 1000) }, true);
    reload();
  }

  async function loadPanel(p, my) {
    const width = Math.max(200, Math.floor(p.plot.clientWidth || 500));
    const n = samplesFor(width, range.start, range.end);
    const params = { metricType: p.types.join(','), start: iso(range.start), end: iso(range.end), numberOfSamples: n };
    p.node.dataset.n = n;
    p.node.dataset.start = params.start;
    p.node.dataset.end = params.end;
    let m;
    try {
      m = await apiGet(`/workloads/${encodeURIComponent(id)}/metrics`, params, { signal: page.signal });
    } catch (e) {
      if (e.name === 'AbortError' || my !== gen) return;
      if (p.chart) { p.chart.destroy(); p.chart = null; }
      clear(p.plot, errorBox(e, 'Metrics'));
      p.node.dataset.series = '0';
      return;
    }
    if (my !== gen) return;
    const target = el('div');
    const errs = (m.measurements || []).filter((x) => x.values === null).map((x) => `${x.type}: ${(x.labels || {}).error || 'failed'}`);
    const xr = [range.start / 1000, range.end / 1000];
    let chart = null, count = 0;
    if (p.kind === 'heat') {
      const h = (m.histogram || []).find((x) => x.type === p.types[0]);
      if (h && h.values && h.values.length) {
        const r = heatmapChart(target, h.values, { width, onZoom, range: xr, stepSec: (range.end - range.start) / 1000 / n, readout: p.note });
        chart = r.u;
        count = r.buckets;
        p.note.textContent = 'Hover for the buckets of a step.';
      }
    } else if (p.kind === 'pct') {
      const lines = [];
      for (const h of m.histogram || []) {
        if (!p.types.includes(h.type) || !h.values || !h.values.length) continue;
        for (const q of ['p50', 'p90', 'p99'])
          lines.push({ label: `${SHORT[h.type]} ${q}`, points: h.values.filter((v) => v.data[q] !== undefined)
            .map((v) => [Date.parse(v.timestamp) / 1000, Number(v.data[q])]) });
      }
      if (lines.length) chart = lineChart(target, lines, { fmt: FORMATS[p.fmt], width, onZoom, range: xr });
      count = lines.length;
    } else {
      const lines = (m.measurements || []).filter((x) => p.types.includes(x.type) && x.values && x.values.length)
        .map((x) => ({ label: seriesLabel(x), points: x.values.map((v) => [Date.parse(v.timestamp) / 1000, Number(v.value)]) }));
      if (lines.length) chart = lineChart(target, lines, { fmt: FORMATS[p.fmt], width, onZoom, range: xr });
      count = lines.length;
    }
    if (p.chart) p.chart.destroy();
    p.chart = chart;
    clear(p.plot, target);
    if (!chart) noData(p.plot);
    if (errs.length) p.plot.append(errorBox({ text: errs.join('; ') }, 'Partial answer (207)'));
    p.node.dataset.series = String(count);
    p.node.dataset.drawn = chart ? '1' : '0';
    if (chart && window.__strata.firstChartMs === undefined) {
      window.__strata.firstChartMs = performance.now();
      performance.mark('strata-first-chart');
    }
  }

  async function loadPhases(my) {
    try {
      const rows = await apiExport(`runai_workload_phase{workload_id="${id}"}`, range.start, range.end);
      if (my !== gen) return;
      // at each scrape, the phase whose value is 1
      const at = new Map();
      for (const s of rows) s.values.forEach((v, i) => { if (v === 1) at.set(s.timestamps[i], s.metric.phase); });
      const ts = [...at.keys()].sort((a, b) => a - b);
      const runs = [];
      for (const t of ts) {
        const ph = at.get(t), last = runs[runs.length - 1];
        if (last && last.phase === ph) last.to = t;
        else runs.push({ phase: ph, from: t, to: t });
      }
      if (!runs.length) { clear(phaseNode, el('p.note', { text: 'No phase samples in this range.' })); return; }
      const span = Math.max(1, runs[runs.length - 1].to - runs[0].from);
      const names = [...new Set(runs.map((r) => r.phase))];
      // widths and colours through the CSSOM: the page's CSP allows no style attributes
      const strip = el('div.strip', { role: 'img', 'aria-label': 'Phases over the range' });
      runs.forEach((r, i) => {
        const to = runs[i + 1] ? runs[i + 1].from : r.to;
        const s = el('span', { title: `${r.phase}: ${fmtTime(r.from)} → ${fmtTime(to)}` });
        s.style.flex = String(Math.max(0.002, (to - r.from) / span));
        s.style.background = color(names.indexOf(r.phase));
        strip.append(s);
      });
      clear(phaseNode, strip, el('table.grid', {}, el('thead', {}, el('tr', {}, ['Phase', 'From', 'To', 'Duration'].map((h) => el('th', { scope: 'col', text: h })))),
        el('tbody', {}, runs.slice(-50).reverse().map((r, i) => {
          const next = runs[runs.length - i];
          const to = next ? next.from : r.to;
          return el('tr', {}, el('td', {}, el('span.phase', { 'data-phase': r.phase, text: r.phase })),
            el('td', { text: fmtTime(r.from) }), el('td', { text: next ? fmtTime(to) : fmtTime(to) + ' (last sample)' }),
            el('td.num', { text: fmtDuration((to - r.from) / 1000) }));
        }))));
    } catch (e) {
      if (e.name !== 'AbortError') clear(phaseNode, errorBox(e, 'Phase history'));
    }
  }

  async function loadPods(my) {
    try {
      const rows = await apiExport(`runai_pod_info{workload_id="${id}"}`, range.start, range.end);
      if (my !== gen) return;
      if (!rows.length) { clear(podsNode, el('p.note', { text: 'No pods in this range.' })); return; }
      clear(podsNode, el('div.table-wrap', {}, el('table.grid', {},
        el('thead', {}, el('tr', {}, ['Pod', 'Namespace', 'Node', 'Node pool', 'First seen', 'Last seen'].map((h) => el('th', { scope: 'col', text: h })))),
        el('tbody', {}, rows.map((s) => el('tr', {}, el('td', { text: s.metric.pod }), el('td', { text: s.metric.namespace }),
          el('td', { text: s.metric.node || '–' }), el('td', { text: s.metric.nodepool || '–' }),
          el('td', { text: fmtTime(Math.min(...s.timestamps)) }), el('td', { text: fmtTime(Math.max(...s.timestamps)) })))))));
    } catch (e) {
      if (e.name !== 'AbortError') clear(podsNode, errorBox(e, 'Pods'));
    }
  }

  // The first chart alone (nothing competes with it for the server's threads),
  // then the others three at a time, then phases and pods, whose exports of raw
  // samples are the largest answers of the page.
  async function reload() {
    range = readRange();
    const my = ++gen;
    drawRangeBar();
    await loadPanel(panels[0], my);
    firstDone();
    let next = 1;
    const worker = async () => {
      while (next < panels.length && my === gen) await loadPanel(panels[next++], my);
    };
    await Promise.all([worker(), worker(), worker()]);
    if (my !== gen) return;
    loadPhases(my);
    loadPods(my);
  }

  async function loadStatic() {
    try {
      const w = await apiGet(`/workloads/${encodeURIComponent(id)}`, null, { signal: page.signal });
      pageTitle(w.name);
      const ar = w.allocatedResources || {};
      const facts = [
        ['Type', w.type], ['Category', w.category], ['Project', w.projectName], ['Department', w.departmentName],
        ['Phase', `${w.phase} for ${ageOf(w.phaseUpdatedAt)}`], ['Submitted by', w.submittedBy],
        ['Created', fmtTime(w.createdAt)], ['Deleted', w.deletedAt ? fmtTime(w.deletedAt) : '–'],
        ['Allocated GPUs', ar.gpu === null || ar.gpu === undefined ? '–' : fmtNum(ar.gpu)],
        ['GPU memory', ar.gpuMemory ? fmtBytes(ar.gpuMemory) : '–'],
        ['Pods running / requested', `${w.runningPods} / ${w.requestedPods && w.requestedPods.number !== null ? w.requestedPods.number : '–'}`],
        ['Time pending / running', `${fmtDuration(w.totalPendingTimeSeconds)} / ${fmtDuration(w.totalRunningTimeSeconds)}`],
        ['Node pools', (w.currentNodePools || []).join(', ') || '–'], ['Priority', `${w.priorityClassName} (${w.priority})`],
        ['Image', (w.images || []).join(', ') || '–'], ['Id', w.id],
      ];
      clear(head, el('div.page-head', {}, el('h1', { text: w.name }), el('span.phase', { 'data-phase': w.phase, text: w.phase }),
        el('a', { href: '/', text: '← all workloads' })),
      el('dl.facts', {}, facts.map(([k, v]) => el('div', {}, el('dt', { text: k }), el('dd', { text: v === undefined || v === null ? '–' : String(v) })))),
      w.phaseMessage ? el('p.muted', { text: w.phaseMessage }) : null);
    } catch (e) {
      if (e.name !== 'AbortError') clear(head, el('h1', { text: 'Workload' }), errorBox(e, 'Workload ' + id));
    }
    await firstDrawn;
    try {
      const ep = await apiGet(`/workloads/${encodeURIComponent(id)}/endpoints`, null, { signal: page.signal });
      const list = ep.endpoints || [];
      clear(epNode, list.length ? el('ul', {}, list.map((x) => el('li', {}, el('code', { text: x.url || `${x.protocol}://${x.host}:${x.port}${x.path}` }),
        x.tlsEnabled ? ' (TLS)' : ''))) : el('p.note', { text: 'No endpoints.' }));
    } catch (e) {
      if (e.name !== 'AbortError') clear(epNode, errorBox(e, 'Endpoints'));
    }
    try {
      const r = await apiGet(`/workloads/${encodeURIComponent(id)}/elements`, { limit: 100 }, { signal: page.signal });
      const list = r.elements || [];
      clear(elNode, list.length ? el('div.table-wrap', {}, el('table.grid', {},
        el('thead', {}, el('tr', {}, ['Name', 'Level', 'Kind', 'Created'].map((h) => el('th', { scope: 'col', text: h })))),
        el('tbody', {}, list.map((x) => el('tr', {}, el('td', { text: '\u00a0'.repeat(2 * ((x.hierarchyLevel || 1) - 1)) + x.name }),
          el('td.num', { text: x.hierarchyLevel === null ? '–' : String(x.hierarchyLevel) }),
          el('td', { text: x.kubernetesRef && x.kubernetesRef.gvk ? x.kubernetesRef.gvk.kind : '–' }),
          el('td', { text: fmtTime(x.createdAt) })))))) : el('p.note', { text: 'No elements.' }),
      r.next !== undefined ? el('p.note', { text: 'First 100 shown.' }) : null);
    } catch (e) {
      if (e.name !== 'AbortError') clear(elNode, errorBox(e, 'Elements'));
    }
  }

  reload();
  loadStatic();
  // live: a range that ends now follows the clock
  page.every(15000, () => {
    if (document.hidden || !range.live) return;
    const dur = range.end - range.start;
    if (Date.now() - range.end >= Math.max(15000, dur / 200)) reload();
  });
}
