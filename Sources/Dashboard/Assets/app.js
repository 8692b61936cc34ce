// The hash router, the poll loop, the sidebar of runs (with the compare selection), the overview and the
// image lightbox. One loop polls every POLL_MS: the runs index (so new runs appear) and then the open
// view's own update; a failed poll marks the page offline and the next one retries. Loaded last: it
// starts the page once the views are defined.
'use strict';
const POLL_MS = 2000;
const app = { index: null, indexKey: '', view: null, timer: null, ticking: false, selected: new Set() };

try { for (const id of JSON.parse(localStorage.getItem('inkwell.compare') || '[]')) app.selected.add(id); } catch (e) { /* ignore */ }
function saveSelection() { try { localStorage.setItem('inkwell.compare', JSON.stringify([...app.selected])); } catch (e) { /* ignore */ } }

function parseRoute() {
  const hash = location.hash.slice(1) || '/';
  const [path, query] = hash.split('?');
  const params = new URLSearchParams(query || '');
  if (path.startsWith('/run/')) return { name: 'run', id: decodeURIComponent(path.slice(5)) };
  if (path.startsWith('/pipeline/')) return { name: 'pipeline', id: decodeURIComponent(path.slice(10)) };
  if (path === '/compare') return { name: 'compare', ids: params.getAll('run'), pick: params.get('step') };
  return { name: 'home' };
}

const runHref = id => '#/run/' + enc(id);
const pipelineHref = id => '#/pipeline/' + enc(id);
const compareHref = (ids, pick) => {
  const query = ids.map(id => 'run=' + encodeURIComponent(id)).concat(pick ? ['step=' + encodeURIComponent(pick)] : []);
  return '#/compare' + (query.length ? '?' + query.join('&') : '');
};

// A run's status (RunSummary/LogResponse: status, statusGuessed, trainer) as a pill; a status guessed from
// the log's age (a run without status.json) says so.
const STATUS_WORDS = { training: 'training', finished: 'finished', stopped: 'stopped', new: 'starting',
  notResponding: 'not responding', failed: 'failed' };
function statusPill(run) {
  const status = run.status;
  return h('span', { class: 'pill ' + status, 'data-status': status, title: statusDetail(run) || null }, h('span', { class: 'dot ' + status }),
    STATUS_WORDS[status] || status, run.statusGuessed ? h('span', { class: 'guess', text: ' (guess)' }) : null);
}

const clock = d => new Date(d * 1000).toLocaleString();

// What status.json adds to the pill: rate and ETA while training, since when a run is not responding, what
// stopped it, the error it failed with.
function statusDetail(run) {
  const t = run.trainer;
  if (run.statusGuessed) return 'guessed from when log.csv last changed (this run has no status.json)';
  if (!t) return '';
  switch (run.status) {
    case 'training': return [t.stepsPerSecond != null ? t.stepsPerSecond.toFixed(2) + ' it/s' : null,
      t.etaSeconds != null ? 'ETA ' + duration(t.etaSeconds) : null].filter(Boolean).join(' · ');
    case 'notResponding': return 'not responding since ' + clock(t.heartbeat) + ' (' + (t.unresponsive === 'processGone'
      ? 'process ' + t.pid + ' on ' + t.host + ' is gone' : 'no heartbeat from ' + t.host + ' for ' + ago(t.heartbeat).replace(' ago', '')) + ')';
    case 'stopped': return 'stopped' + (t.signal ? ' by ' + t.signal : ' on request') + ' at step ' + t.step + '; --resume continues it';
    case 'failed': return 'failed at step ' + t.step + ': ' + (t.error || 'unknown error');
    case 'finished': return t.elapsedSeconds != null ? 'trained in ' + duration(t.elapsedSeconds) : '';
  }
  return '';
}

function progressText(run) {
  const t = run.trainer;
  const step = run.lastStep != null ? run.lastStep : t ? t.step : null;
  if (step == null) return 'no steps logged yet';
  const total = run.maxSteps || (t ? t.totalSteps : null);
  let text = 'step ' + step + (total ? ' / ' + total : '');
  if (t && run.status === 'training' && t.stepsPerSecond != null) {
    text += ' · ' + t.stepsPerSecond.toFixed(2) + ' it/s' + (t.etaSeconds != null ? ' · ETA ' + duration(t.etaSeconds) : '');
  }
  return text;
}

function setLive(ok, error) {
  const el = document.getElementById('live');
  el.className = 'live ' + (ok ? 'ok' : 'bad');
  el.textContent = ok ? 'live · updated ' + new Date().toLocaleTimeString() : 'offline — retrying (' + error.message + ')';
}

// MARK: sidebar

function groupRuns(runs) {
  const groups = new Map();
  for (const run of runs) {
    const key = run.group || '';
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(run);
  }
  return groups;
}

function renderSidebar() {
  const side = document.getElementById('sidebar');
  const index = app.index;
  const route = parseRoute();
  const pipelines = new Set(index.pipelines.map(p => p.id));
  const children = [];
  if (index.runs.length === 0) {
    children.push(h('p', { class: 'muted' }, 'No runs yet. Start one with ', h('code', { text: 'inkwell train' }), '; it appears here by itself.'));
  }
  for (const [group, runs] of groupRuns(index.runs)) {
    const title = h('div', { class: 'side-title' }, h('span', { text: group || 'runs' }),
      pipelines.has(group) ? h('a', { href: pipelineHref(group), text: 'summary →' }) : null);
    const items = runs.map(run => {
      const box = h('input', { type: 'checkbox', title: 'Select for comparison', checked: app.selected.has(run.id) });
      box.addEventListener('change', () => { box.checked ? app.selected.add(run.id) : app.selected.delete(run.id); saveSelection(); renderSidebar(); });
      const meta = [progressText(run)];
      if (run.status === 'notResponding' || run.status === 'failed') meta.unshift(STATUS_WORDS[run.status]);
      if (run.bestValLoss != null) meta.push('best ' + fmt(run.bestValLoss) + ' @ ' + run.bestStep);
      return h('div', { class: 'run-item' + (route.name === 'run' && route.id === run.id ? ' current' : '') },
        box,
        h('a', { class: 'run-link', href: runHref(run.id), 'data-run': run.id, title: run.id }, h('span', { class: 'dot ' + run.status, title: STATUS_WORDS[run.status] }), run.name),
        h('div', { class: 'run-meta', 'data-status': run.status, title: statusDetail(run) || null, text: meta.join(' · ') }));
    });
    children.push(h('div', { class: 'side-group' }, title, items));
  }
  for (const p of index.pipelines.filter(p => !index.runs.some(r => (r.group || '') === p.id))) {
    children.push(h('div', { class: 'side-group' }, h('div', { class: 'side-title' }, h('span', { text: p.id }), h('a', { href: pipelineHref(p.id), text: 'summary →' }))));
  }
  const chosen = [...app.selected].filter(id => index.runs.some(r => r.id === id));
  const button = h('button', { class: 'primary compare-button', disabled: chosen.length < 2,
    onclick: () => { location.hash = compareHref(chosen); } }, 'Compare selected (' + chosen.length + ')');
  children.push(button);
  side.replaceChildren(...children);
  for (const a of document.querySelectorAll('[data-nav]')) a.classList.toggle('active', a.dataset.nav === route.name);
}

// MARK: lightbox

function openLightbox(path, caption) {
  const box = document.getElementById('lightbox');
  const figure = h('figure', { onclick: ev => ev.stopPropagation() },
    h('img', { src: fileURL(path), alt: caption || path }),
    h('figcaption', { text: caption || path }),
    h('a', { href: fileURL(path), target: '_blank', text: 'open full size ↗' }));
  box.replaceChildren(figure);
  box.hidden = false;
}
document.getElementById('lightbox').addEventListener('click', () => { document.getElementById('lightbox').hidden = true; });
document.addEventListener('keydown', ev => { if (ev.key === 'Escape') document.getElementById('lightbox').hidden = true; });

function sampleImage(path, width, caption) {
  const img = h('img', { src: thumbURL(path, width), alt: caption || path, title: caption || path, loading: 'lazy', class: 'sample',
    onclick: () => openLightbox(path, caption) });
  if (app.stencil) stencilize(img);
  return img;
}

// MARK: stencil toggle
// The samples and compare views can show samples as stencils, since that is how a tattoo artist judges line
// art: drawn here on a canvas as `inkwell stencil --threshold otsu --no-svg` thresholds a clean image
// (Pillow's "L" luma (R·19595 + G·38470 + B·7471 + 0x8000) >> 16, Otsu's level, ink at or below it). The
// choice is remembered in localStorage.
try { app.stencil = localStorage.getItem('inkwell.stencil') === '1'; } catch (e) { app.stencil = false; }

function otsuLevel(histogram, total) {
  let sumAll = 0;
  for (let t = 0; t < 256; t++) sumAll += t * histogram[t];
  let count0 = 0, sum0 = 0, best = -1, level = 127;
  for (let t = 0; t < 255; t++) {
    count0 += histogram[t]; sum0 += t * histogram[t];
    const count1 = total - count0;
    if (count0 === 0 || count1 === 0) continue;
    const d = sum0 / count0 - (sumAll - sum0) / count1, between = count0 * count1 * d * d;
    if (between > best) { best = between; level = t; }
  }
  return level;
}

function stencilize(img) {
  if (img.dataset.original) return;
  const draw = () => {
    if (img.dataset.original || !img.naturalWidth) return;
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
    const ctx = canvas.getContext('2d');
    ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, canvas.width, canvas.height); ctx.drawImage(img, 0, 0);
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height), px = data.data, n = canvas.width * canvas.height;
    const grey = new Uint8Array(n), histogram = new Float64Array(256);
    for (let i = 0; i < n; i++) {
      const y = (px[4 * i] * 19595 + px[4 * i + 1] * 38470 + px[4 * i + 2] * 7471 + 0x8000) >> 16;
      grey[i] = y; histogram[y]++;
    }
    const level = otsuLevel(histogram, n);
    for (let i = 0; i < n; i++) {
      const v = grey[i] <= level ? 0 : 255;
      px[4 * i] = px[4 * i + 1] = px[4 * i + 2] = v; px[4 * i + 3] = 255;
    }
    ctx.putImageData(data, 0, 0);
    img.dataset.original = img.src;
    img.dataset.stencil = String(level);
    img.src = canvas.toDataURL('image/png');
  };
  if (img.complete && img.naturalWidth) draw(); else img.addEventListener('load', draw, { once: true });
}

function unstencilize(img) {
  if (!img.dataset.original) return;
  img.src = img.dataset.original;
  delete img.dataset.original; delete img.dataset.stencil;
}

function stencilToggle() {
  return h('button', { class: 'stencil-toggle', 'aria-pressed': String(app.stencil), title: 'show samples as 1-bit stencils',
    onclick: () => {
      app.stencil = !app.stencil;
      try { localStorage.setItem('inkwell.stencil', app.stencil ? '1' : '0'); } catch (e) { /* ignore */ }
      for (const t of document.querySelectorAll('.stencil-toggle')) t.setAttribute('aria-pressed', String(app.stencil));
      for (const img of document.querySelectorAll('img.sample')) app.stencil ? stencilize(img) : unstencilize(img);
    } }, 'Stencil');
}

// MARK: overview

function runCard(run) {
  const sample = run.latestSample;
  const meta = [progressText(run)];
  return h('a', { class: 'card', href: runHref(run.id), 'data-card': run.id },
    h('div', { class: 'thumb' }, sample ? h('img', { src: thumbURL(sample.path, 384), alt: run.name + ' latest sample', loading: 'lazy' })
      : h('span', { class: 'none', text: 'no samples yet' })),
    h('div', { class: 'body' },
      h('div', { class: 'title' }, run.name, ' ', statusPill(run)),
      h('div', { class: 'line', text: meta.join(' · ') + (run.updated ? ' · ' + ago(run.updated) : '') }),
      run.status === 'failed' || run.status === 'notResponding' ? h('div', { class: 'line status-' + run.status, text: statusDetail(run) }) : null,
      h('div', { class: 'line' }, run.bestStep != null ? h('span', { class: 'star', text: '★ ' }) : null,
        run.bestStep != null ? 'best val ' + fmt(run.bestValLoss) + ' at step ' + run.bestStep : 'no validation yet')));
}

// Returns the element built earlier for equal data, so that a poll which changes one run does
// not rebuild (and reload the images of) everything else on the page.
function reuse(cache, id, data, build) {
  const key = JSON.stringify(data);
  const hit = cache.get(id);
  if (hit && hit.key === key) return hit.el;
  const el = build(data);
  cache.set(id, { key, el });
  return el;
}

class HomeView {
  constructor() { this.cards = new Map(); }
  async load() { this.render(); }
  render() {
    const index = app.index;
    const main = [h('div', { class: 'page-head' }, h('div', {}, h('h1', { text: 'Runs' }),
      h('div', { class: 'sub', text: plural(index.runs.length, 'run') + ' · ' + plural(index.pipelines.length, 'pipeline') + ' · newest sample of each run' })))];
    if (index.runs.length === 0) main.push(h('div', { class: 'notice', text: 'The runs folder is empty. Runs appear here as soon as training starts.' }));
    for (const [group, runs] of groupRuns(index.runs)) {
      const pipeline = index.pipelines.find(p => p.id === group);
      main.push(h('h2', { class: 'section-title' }, group || 'Standalone runs',
        pipeline ? h('span', {}, ' · ', h('a', { href: pipelineHref(group), text: 'pipeline summary' })) : null,
        runs.length > 1 ? h('span', {}, ' · ', h('a', { href: compareHref(runs.map(r => r.id)), text: 'compare these' })) : null));
      main.push(h('div', { class: 'cards' }, runs.map(run => reuse(this.cards, run.id, run, runCard))));
    }
    document.getElementById('main').replaceChildren(...main);
  }
  async poll(indexChanged) { if (indexChanged) this.render(); }
}

// MARK: loop

async function refreshIndex() {
  const index = await getJSON('/api/index');
  const key = JSON.stringify(index);
  const changed = key !== app.indexKey;
  app.index = index;
  app.indexKey = key;
  if (changed) renderSidebar();
  return changed;
}

async function tick() {
  // One poll at a time: a visibility change may call in while the timer's poll is under way.
  if (app.ticking) return;
  app.ticking = true;
  clearTimeout(app.timer);
  try {
    const changed = await refreshIndex();
    if (app.view && app.view.poll) await app.view.poll(changed);
    setLive(true);
  } catch (error) {
    setLive(false, error);
  } finally {
    app.ticking = false;
    // A tab in the background polls less often, and catches up as soon as it is shown.
    app.timer = setTimeout(tick, document.hidden ? 5 * POLL_MS : POLL_MS);
  }
}
document.addEventListener('visibilitychange', () => { if (!document.hidden) tick(); });

async function route() {
  const r = parseRoute();
  const view = r.name === 'run' ? new RunView(r.id)
    : r.name === 'pipeline' ? new PipelineView(r.id)
    : r.name === 'compare' ? new CompareView(r.ids, r.pick)
    : new HomeView();
  app.view = view;
  window.scrollTo(0, 0);
  try {
    if (!app.index) await refreshIndex();
    renderSidebar();
    await view.load();
    setLive(true);
  } catch (error) {
    document.getElementById('main').replaceChildren(h('div', { class: 'notice', text: 'Could not load this page: ' + error.message }));
    setLive(false, error);
  }
}

window.addEventListener('hashchange', route);
window.addEventListener('DOMContentLoaded', async () => {
  await route();
  app.timer = setTimeout(tick, POLL_MS);
});
