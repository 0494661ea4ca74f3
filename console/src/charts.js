// charts.js: uPlot charts for the workload page: time-series lines (one per
// GPU or per metric type), and a heatmap of a latency histogram (a cell per
// step and `le` bucket, darker = more requests).  Every chart has a live
// legend (hover shows values and the time), shares its cursor with the other
// charts, and reports a drag selection as a new time range instead of
// zooming itself, so the page can ask the API for that range at full detail.
import { el, fmtNum, fmtBytes, fmtTime } from './util.js';

/* global uPlot */

const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7',
  '#9c755f', '#bab0ac'];
export function color(i) { return PALETTE[i % PALETTE.length]; }

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

export const FORMATS = {
  pct: (v) => fmtNum(v, 1) + ' %',
  bytes: (v) => fmtBytes(v),
  bps: (v) => fmtBytes(v) + '/s',
  frac: (v) => fmtNum(v * 100, 1) + ' %',
  sec: (v) => (v < 1 ? fmtNum(v * 1000, 0) + ' ms' : fmtNum(v, 2) + ' s'),
  num: (v) => fmtNum(v),
};

// Times on the axes are UTC, as everywhere in the console.
const tzDate = (ts) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC');

function axes(fmt) {
  const stroke = cssVar('--muted'), grid = { stroke: cssVar('--line'), width: 1 };
  return [
    { stroke, grid, ticks: grid },
    { stroke, grid, ticks: grid, size: 84, values: (u, vals) => vals.map((v) => (v === null ? '' : fmt(v))) },
  ];
}

function common(width, height, onZoom, extraHooks) {
  return {
    width, height, tzDate,
    legend: { live: true },
    cursor: { drag: { x: true, y: false, setScale: false }, sync: { key: 'workload' }, focus: { prox: 16 } },
    scales: { x: { time: true } },
    hooks: {
      setSelect: [(u) => {
        if (u.select.width < 4) return;
        const a = u.posToVal(u.select.left, 'x'), b = u.posToVal(u.select.left + u.select.width, 'x');
        u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
        onZoom(Math.floor(a), Math.ceil(b));
      }],
      ...extraHooks,
    },
  };
}

// lines: [{label, points: [[tsSec, value]...]}], all on one y axis formatted by fmt.
export function lineChart(target, lines, { fmt = FORMATS.num, width, height = 200, onZoom, range }) {
  const xs = [...new Set(lines.flatMap((l) => l.points.map((p) => p[0])))].sort((a, b) => a - b);
  const pos = new Map(xs.map((x, i) => [x, i]));
  const data = [xs];
  for (const l of lines) {
    const ys = new Array(xs.length).fill(null);
    for (const [t, v] of l.points) ys[pos.get(t)] = v;
    data.push(ys);
  }
  const opts = common(width, height, onZoom);
  opts.scales.x.range = () => range;
  opts.series = [{ value: (u, v) => (v === null ? '–' : fmtTime(v * 1000)) }].concat(lines.map((l, i) => ({
    label: l.label, stroke: color(i), width: 1.5, points: { show: xs.length < 60 },
    value: (u, v) => (v === null || v === undefined ? '–' : fmt(v)),
  })));
  opts.axes = axes(fmt);
  return new uPlot(opts, data, target);
}

function leValue(le) { return le === '+Inf' ? Infinity : Number(le); }

// steps: the API's histogram values [{timestamp, data: {le: cumulative}}]; stepSec: bucket width.
export function heatmapChart(target, steps, { width, height = 220, onZoom, range, stepSec, readout }) {
  const les = [...new Set(steps.flatMap((s) => Object.keys(s.data)))].sort((a, b) => leValue(a) - leValue(b));
  const xs = steps.map((s) => Date.parse(s.timestamp) / 1000);
  const counts = steps.map((s) => les.map((le, b) => {
    const c = Number(s.data[le] || 0) - (b ? Number(s.data[les[b - 1]] || 0) : 0);
    return Math.max(0, c);
  }));
  const totals = steps.map((s) => Number(s.data['+Inf'] !== undefined ? s.data['+Inf'] : s.data[les[les.length - 1]] || 0));
  let max = 0;
  for (const row of counts) for (const c of row) if (c > max) max = c;
  const accent = cssVar('--accent');
  const draw = (u) => {
    const ctx = u.ctx;
    ctx.save();
    ctx.beginPath();
    ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
    ctx.clip();
    ctx.fillStyle = accent;
    for (let i = 0; i < xs.length; i++) {
      const x0 = u.valToPos(xs[i] - stepSec, 'x', true), x1 = u.valToPos(xs[i], 'x', true);
      for (let b = 0; b < les.length; b++) {
        const c = counts[i][b];
        if (!c) continue;
        const y0 = u.valToPos(b + 1, 'y', true), y1 = u.valToPos(b, 'y', true);
        ctx.globalAlpha = 0.08 + 0.92 * Math.sqrt(c / max);
        ctx.fillRect(x0, y0, Math.max(1, x1 - x0 - 0.5), Math.max(1, y1 - y0 - 0.5));
      }
    }
    ctx.restore();
  };
  const labels = les.map((le) => (le === '+Inf' ? '+Inf' : '≤ ' + FORMATS.sec(Number(le))));
  const opts = common(width, height, onZoom, {
    draw: [draw],
    setCursor: [(u) => {
      const i = u.cursor.idx;
      if (!readout) return;
      if (i === null || i === undefined || !counts[i]) { readout.textContent = 'Hover for the buckets of a step.'; return; }
      readout.textContent = fmtTime(xs[i] * 1000) + ': ' + les.map((le, b) => `${labels[b]}: ${counts[i][b]}`)
        .filter((s, b) => counts[i][b]).join(', ');
    }],
  });
  opts.scales.x.range = () => range;
  opts.scales.y = { auto: false, range: [0, les.length] };
  opts.scales.n = { auto: true };
  opts.series = [{ value: (u, v) => (v === null ? '–' : fmtTime(v * 1000)) },
    { label: 'requests in step', scale: 'n', stroke: accent, width: 0, paths: () => null, points: { show: false },
      value: (u, v) => (v === null || v === undefined ? '–' : fmtNum(v)) }];
  const stroke = cssVar('--muted'), grid = { stroke: cssVar('--line'), width: 1 };
  opts.axes = [{ stroke, grid, ticks: grid },
    { scale: 'y', stroke, grid: { show: false }, ticks: grid, size: 84,
      // every k-th bucket labelled, so labels never overlap (about 13 px each)
      splits: (u) => {
        const k = Math.max(1, Math.ceil(les.length * 13 / Math.max(1, u.bbox.height / devicePixelRatio)));
        return les.map((_, b) => b + 0.5).filter((_, b) => b % k === 0 || b === les.length - 1);
      },
      values: (u, vals) => vals.map((v) => labels[Math.floor(v)] || '') }];
  const u = new uPlot(opts, [xs, totals], target);
  return { u, buckets: les.length };
}

export function noData(target, text) {
  target.append(el('p.note', { text: text || 'No data in this range.' }));
}
