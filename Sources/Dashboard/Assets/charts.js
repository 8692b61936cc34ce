// The SVG line chart. Charts are drawn in the browser from the log rows (the page already has them for
// live updates), as inline SVG: each series path carries data-series, data-points and data-last-step so
// a test can read what was drawn.
'use strict';
const PALETTE = ['#1f5fa8', '#c2410c', '#1a7f37', '#7c3aed', '#b7791f', '#0e7490', '#be185d', '#4b5563'];

// Round tick values; `integer` ticks (steps) never fall between two steps.
function niceTicks(lo, hi, count, integer) {
  const span = hi - lo;
  const raw = span / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  let step = [1, 2, 2.5, 5, 10].map(m => m * mag).find(v => span / v <= count) || 10 * mag;
  if (integer) step = Math.max(1, Math.round(step));
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function quantile(values, q) {
  const sorted = values.slice().sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * (sorted.length - 1)))];
}

// opts: { title, series: [{ key, label, color, points: [[step, value]], width, dots, faint, robust }],
//         xMax, markers: [{ x, label }], empty, size: [width, height] }
// The view box is about the size the chart is shown at, so its text stays readable.
// A series marked robust sets the top of the y range to its 98th percentile, so one early spike
// of the raw loss does not flatten everything else; points above are drawn on the top edge.
function lineChart(opts) {
  const [W, H] = opts.size || [520, 240];
  const L = 56, R = 16, T = 30, B = 30;
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': opts.title });
  const series = opts.series.filter(se => se.points.length > 0);
  const all = series.flatMap(se => se.points);
  if (all.length === 0) {
    svg.append(s('text', { class: 'empty', x: W / 2, y: H / 2, 'text-anchor': 'middle', text: opts.empty || 'waiting for data' }));
    return svg;
  }
  const xs = all.map(p => p[0]);
  let x0 = Math.min(0, ...xs), x1 = Math.max(opts.xMax || 0, ...xs);
  if (x1 <= x0) x1 = x0 + 1;
  const ys = all.map(p => p[1]);
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  const robust = series.filter(se => se.robust).flatMap(se => se.points.map(p => p[1]));
  if (robust.length > 20) {
    const cap = quantile(robust, 0.98);
    const others = series.filter(se => !se.robust).flatMap(se => se.points.map(p => p[1]));
    y1 = Math.max(cap, ...others);
  }
  if (y1 - y0 < 1e-12) { const pad = Math.abs(y0) * 0.1 || 1; y0 -= pad; y1 += pad; }
  const pad = (y1 - y0) * 0.06;
  y0 -= pad; y1 += pad;
  const X = x => L + (x - x0) / (x1 - x0) * (W - L - R);
  const Y = y => T + (1 - (Math.min(y, y1) - y0) / (y1 - y0)) * (H - T - B);

  const grid = s('g', {});
  for (const t of niceTicks(y0, y1, 5)) {
    grid.append(s('line', { class: 'grid', x1: L, x2: W - R, y1: Y(t), y2: Y(t) }));
    grid.append(s('text', { x: L - 6, y: Y(t) + 4, 'text-anchor': 'end', text: fmt(t, 3) }));
  }
  for (const t of niceTicks(x0, x1, 6, true)) {
    if (t < x0 || t > x1) continue;
    grid.append(s('line', { class: 'grid', x1: X(t), x2: X(t), y1: T, y2: H - B }));
    grid.append(s('text', { x: X(t), y: H - B + 15, 'text-anchor': 'middle', text: String(t) }));
  }
  grid.append(s('line', { class: 'axis', x1: L, x2: W - R, y1: H - B, y2: H - B }));
  grid.append(s('text', { x: W - R, y: H - 3, 'text-anchor': 'end', text: 'step' }));
  svg.append(grid);

  for (const m of opts.markers || []) {
    if (m.x == null || m.x < x0 || m.x > x1) continue;
    svg.append(s('line', { class: 'marker', x1: X(m.x), x2: X(m.x), y1: T, y2: H - B, stroke: '#b7791f', 'stroke-dasharray': '4 3', 'data-marker': m.label }));
    // Near the right edge the label goes to the left of its line.
    const left = X(m.x) > W - R - 80;
    svg.append(s('text', { class: 'marker-label', x: X(m.x) + (left ? -4 : 4), y: T + 11, 'text-anchor': left ? 'end' : 'start', text: '★ ' + m.label }));
  }

  for (const se of series) {
    const d = se.points.map((p, i) => (i ? 'L' : 'M') + X(p[0]).toFixed(1) + ' ' + Y(p[1]).toFixed(1)).join(' ');
    svg.append(s('path', {
      d, fill: 'none', stroke: se.color, 'stroke-width': se.width || 2, 'stroke-linejoin': 'round',
      opacity: se.faint ? 0.45 : 1, 'data-series': se.key, 'data-points': se.points.length,
      'data-last-step': se.points[se.points.length - 1][0],
    }));
    if (se.dots) {
      const g = s('g', { fill: se.color });
      for (const p of se.points) g.append(s('circle', { cx: X(p[0]), cy: Y(p[1]), r: se.points.length > 60 ? 2 : 3.2 }));
      svg.append(g);
    }
    for (const hl of se.highlight || []) {
      const p = se.points.find(q => q[0] === hl);
      if (p) svg.append(s('circle', { cx: X(p[0]), cy: Y(p[1]), r: 6, fill: 'none', stroke: '#b7791f', 'stroke-width': 2.5 }));
    }
  }

  const legend = s('g', { class: 'legend' });
  let lx = L;
  for (const se of opts.series) {
    legend.append(s('rect', { x: lx, y: 9, width: 12, height: 4, rx: 1, fill: se.color, opacity: se.faint ? 0.5 : 1 }));
    const label = s('text', { x: lx + 17, y: 15, text: se.label });
    legend.append(label);
    lx += 28 + se.label.length * 7;
  }
  svg.append(legend);
  addHover(svg, series, X, Y, x0, x1, L, R, W, T, H, B);
  return svg;
}

// A crosshair and a tooltip with the values at the nearest logged step of each series.
function addHover(svg, series, X, Y, x0, x1, L, R, W, T, H, B) {
  const line = s('line', { class: 'hover-line', y1: T, y2: H - B, visibility: 'hidden' });
  const overlay = s('rect', { x: L, y: T, width: W - L - R, height: H - T - B, fill: 'transparent' });
  svg.append(line, overlay);
  let tip = null;
  overlay.addEventListener('mousemove', ev => {
    const box = svg.getBoundingClientRect();
    const step = x0 + ((ev.clientX - box.left) * W / box.width - L) / (W - L - R) * (x1 - x0);
    const rows = [];
    let nearest = null;
    for (const se of series) {
      let best = se.points[0];
      for (const p of se.points) if (Math.abs(p[0] - step) < Math.abs(best[0] - step)) best = p;
      if (nearest == null || Math.abs(best[0] - step) < Math.abs(nearest - step)) nearest = best[0];
      rows.push([se, best]);
    }
    line.setAttribute('x1', X(nearest)); line.setAttribute('x2', X(nearest));
    line.setAttribute('visibility', 'visible');
    const card = svg.parentElement;
    if (!tip) { tip = h('div', { class: 'tooltip' }); card.append(tip); }
    tip.replaceChildren(h('div', { text: 'step ' + nearest }),
      ...rows.map(([se, p]) => h('div', {}, h('span', { class: 'swatch', style: 'background:' + se.color }),
        se.label + ': ' + fmt(p[1]) + (p[0] !== nearest ? ' (step ' + p[0] + ')' : ''))));
    const cardBox = card.getBoundingClientRect();
    const left = ev.clientX - cardBox.left + 14;
    tip.style.left = Math.min(left, cardBox.width - 190) + 'px';
    tip.style.top = (ev.clientY - cardBox.top + 10) + 'px';
  });
  overlay.addEventListener('mouseleave', () => {
    line.setAttribute('visibility', 'hidden');
    if (tip) { tip.remove(); tip = null; }
  });
}

function chartCard(title, svg, extraClass) {
  return h('div', { class: 'chart-card ' + (extraClass || '') }, h('h3', { text: title }), svg);
}
