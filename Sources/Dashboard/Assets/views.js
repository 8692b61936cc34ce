// The run page (status, samples by step, prompts × steps grid, curves, checkpoints, config), the compare page
// (overlaid val-loss curves, samples side by side at a picked step beside the base model's) and the pipeline page (summary.json, compare grid,
// plots). The run page keeps the log rows it has and asks only for rows after its last step; it reloads
// the run's details when the samples or the best step change.
'use strict';
class RunView {
  constructor(id) { this.id = id; this.rows = []; this.lastStep = -1; this.detail = null; this.pickedStep = null; this.signature = ''; }

  async load() {
    const q = encodeURIComponent(this.id);
    const [detail, log] = await Promise.all([getJSON('/api/run?id=' + q), getJSON('/api/log?id=' + q + '&since=-1')]);
    this.detail = detail;
    this.rows = log.rows;
    this.lastStep = log.lastStep == null ? -1 : log.lastStep;
    this.signature = this.signatureOf(log);
    this.render();
  }

  signatureOf(log) { return JSON.stringify([log.sampleSteps, log.bestStep, log.status]); }

  // The status fields of a log answer onto the summary the head shows; true when they changed.
  takeStatus(log) {
    const run = this.detail.summary, before = JSON.stringify([run.status, run.statusGuessed, run.trainer]);
    run.status = log.status; run.statusGuessed = log.statusGuessed; run.trainer = log.trainer;
    return JSON.stringify([run.status, run.statusGuessed, run.trainer]) !== before;
  }

  async poll() {
    const q = encodeURIComponent(this.id);
    const log = await getJSON('/api/log?id=' + q + '&since=' + this.lastStep);
    if (app.view !== this) return;
    const grew = log.rows.length > 0 || log.reset;
    if (log.reset) this.rows = log.rows; else this.rows.push(...log.rows);
    if (log.lastStep != null) this.lastStep = log.lastStep;
    const signature = this.signatureOf(log);
    const detailChanged = signature !== this.signature;
    if (detailChanged) {
      this.signature = signature;
      this.detail = await getJSON('/api/run?id=' + q);
      if (app.view !== this) return;
      this.renderHead(); this.renderSamples(); this.renderProgression(); this.renderCheckpoints();
    } else if (this.takeStatus(log) || grew) {
      this.detail.summary.lastStep = this.lastStep;
      this.renderHead();
    }
    if (grew || detailChanged) this.renderCharts();
  }

  render() {
    this.parts = {
      head: h('div'), samples: h('section', { class: 'panel', id: 'samples' }),
      progression: h('section', { class: 'panel', id: 'progression' }),
      charts: h('section', { class: 'panel', id: 'curves' }), checkpoints: h('section', { class: 'panel', id: 'checkpoints' }),
      config: h('section', { class: 'panel', id: 'config' }),
    };
    document.getElementById('main').replaceChildren(...Object.values(this.parts));
    this.renderHead(); this.renderSamples(); this.renderProgression(); this.renderCharts(); this.renderCheckpoints(); this.renderConfig();
  }

  get bestStep() { return this.detail.best ? this.detail.best.step : null; }

  renderHead() {
    const d = this.detail, run = d.summary;
    const last = this.rows.length ? this.rows[this.rows.length - 1] : null;
    const pct = run.maxSteps ? Math.min(100, 100 * (this.lastStep < 0 ? 0 : this.lastStep) / run.maxSteps) : 0;
    const stat = (k, v, extra) => h('div', { class: 'stat' }, h('div', { class: 'k', text: k }), h('div', { class: 'v' }, v), extra || null);
    const bestText = d.best ? h('span', {}, h('span', { class: 'star', text: '★ ' }), 'step ' + d.best.step) : '—';
    this.parts.head.replaceChildren(
      h('div', { class: 'page-head' },
        h('div', {}, h('h1', { text: run.name }),
          h('div', { class: 'sub' }, statusPill(run), h('span', { text: progressText({ ...run, lastStep: this.lastStep < 0 ? null : this.lastStep }) }),
            run.maxSteps ? h('div', { class: 'progress', title: Math.round(pct) + '%' }, h('span', { style: 'width:' + pct.toFixed(1) + '%' })) : null,
            run.pipeline ? h('a', { href: pipelineHref(run.pipeline), text: 'pipeline ' + run.pipeline }) : null,
            run.updated ? h('span', { text: 'updated ' + ago(run.updated) }) : null),
          // Training's rate and ETA are in the progress text already.
          run.status !== 'training' && statusDetail(run) ? h('div', { class: 'status-line status-' + run.status, 'data-status-detail': run.status, text: statusDetail(run) }) : null),
        h('div', {}, h('a', { class: 'button', href: compareHref([run.id, ...[...app.selected].filter(id => id !== run.id)]) }, 'Compare…'))),
      h('div', { class: 'stats' },
        stat('best checkpoint', bestText),
        stat('best val loss', fmt(d.best ? d.best.valLoss : null)),
        stat('last val loss', fmt(run.lastValLoss)),
        stat('smoothed loss', fmt(last ? last.smoothed_loss : null)),
        stat('learning rate', fmt(last ? last.lr : null, 3)),
        last && last.non_finite ? stat('non-finite steps', String(last.non_finite)) : null));
  }

  caption(image) {
    const prompt = this.detail.samples.prompts.find(p => p.index === image.prompt);
    return (prompt && prompt.parameters) || ((prompt ? prompt.text : 'prompt ' + image.prompt) + '\nseed ' + image.seed + ', step ' + image.step);
  }

  renderSamples() {
    const set = this.detail.samples, part = this.parts.samples;
    if (set.steps.length === 0) {
      part.replaceChildren(h('h2', { text: 'Samples' }), h('p', { class: 'muted', text: 'No sample images yet: they are rendered every samples.every steps (and at step 0 for the base model).' }));
      return;
    }
    const steps = set.steps;
    const step = this.pickedStep != null && steps.includes(this.pickedStep) ? this.pickedStep : steps[steps.length - 1];
    const slider = h('input', { type: 'range', min: 0, max: steps.length - 1, value: steps.indexOf(step), 'aria-label': 'sample step' });
    slider.addEventListener('input', () => { this.pickedStep = steps[Number(slider.value)]; this.renderSamples(); });
    const pick = s => { this.pickedStep = s; this.renderSamples(); };
    const isBest = step === this.bestStep;
    const controls = h('div', { class: 'step-controls' },
      h('span', { class: 'step-label' }, 'step ' + step, step === 0 ? ' (base model)' : '', isBest ? h('span', { class: 'star', text: ' ★ best' }) : ''),
      slider,
      this.bestStep != null && steps.includes(this.bestStep) ? h('button', { onclick: () => pick(this.bestStep) }, '★ Best') : null,
      h('button', { onclick: () => { this.pickedStep = null; this.renderSamples(); } }, 'Latest'),
      stencilToggle());
    const blocks = set.prompts.map(prompt => {
      const images = set.images.filter(i => i.step === step && i.prompt === prompt.index);
      return h('div', { class: 'prompt-block' },
        h('div', { class: 'prompt-text' }, h('b', { text: 'p' + prompt.index }), prompt.text),
        h('div', { class: 'shots' }, images.map(image => h('figure', { class: 'shot' + (isBest ? ' best' : '') },
          sampleImage(image.path, 384, this.caption(image)), h('figcaption', { text: 'seed ' + image.seed })))));
    });
    part.replaceChildren(h('div', { class: 'panel-head' }, h('h2', { text: 'Samples' }), controls), ...blocks);
  }

  renderProgression() {
    const set = this.detail.samples, part = this.parts.progression;
    if (set.steps.length < 2) { part.replaceChildren(); part.hidden = true; return; }
    part.hidden = false;
    const byKey = new Map(set.images.map(i => [i.prompt + '/' + i.seed + '/' + i.step, i]));
    const head = h('tr', {}, h('th', {}), set.steps.map(st => h('th', { class: st === this.bestStep ? 'best' : '' }, (st === this.bestStep ? '★ ' : '') + st)));
    const rows = [];
    for (const prompt of set.prompts) {
      for (const seed of set.seeds) {
        if (!set.images.some(i => i.prompt === prompt.index && i.seed === seed)) continue;
        rows.push(h('tr', {}, h('th', { class: 'rowhead', title: prompt.text }, 'p' + prompt.index + ' · seed ' + seed),
          set.steps.map(st => {
            const image = byKey.get(prompt.index + '/' + seed + '/' + st);
            return h('td', { class: st === this.bestStep ? 'best' : '' }, image ? sampleImage(image.path, 160, this.caption(image)) : h('div', { class: 'empty-cell' }));
          })));
      }
    }
    part.replaceChildren(h('div', { class: 'panel-head' }, h('h2', { text: 'Prompts × steps' }),
      h('span', { class: 'muted', text: 'each row is one prompt and seed; ★ marks the best checkpoint' })),
      h('div', { class: 'grid-scroll' }, h('table', { class: 'progression' }, h('thead', {}, head), h('tbody', {}, rows))));
  }

  renderCharts() {
    const rows = this.rows, best = this.bestStep;
    const pts = key => rows.filter(r => r[key] != null).map(r => [r.step, r[key]]);
    const xMax = this.detail.summary.maxSteps || 0;
    const markers = best != null ? [{ x: best, label: 'best ' + best }] : [];
    const clip = pts('clip_score');
    this.parts.charts.replaceChildren(h('h2', { text: 'Curves' }), h('div', { class: 'charts' },
      chartCard('Training loss', lineChart({ title: 'Training loss', xMax, markers, series: [
        { key: 'train_loss', label: 'raw', color: '#8fb3dc', width: 1.2, points: pts('train_loss'), robust: true },
        { key: 'smoothed_loss', label: 'smoothed', color: '#1f5fa8', width: 2.4, points: pts('smoothed_loss') }] })),
      chartCard('Validation loss', lineChart({ title: 'Validation loss', xMax, markers,
        empty: 'no validation loss logged yet', series: [
        { key: 'val_loss', label: 'val loss', color: '#c2410c', width: 2.2, dots: true, points: pts('val_loss'), highlight: best != null ? [best] : [] }] })),
      chartCard('CLIP score', lineChart({ title: 'CLIP score', xMax, markers,
        empty: 'no CLIP score logged (samples.clip_score is off)', series: [
        { key: 'clip_score', label: 'CLIP score', color: '#1a7f37', width: 2.2, dots: true, points: clip }] })),
      chartCard('Learning rate', lineChart({ title: 'Learning rate', xMax, series: [
        { key: 'lr', label: 'lr', color: '#7c3aed', width: 2, points: pts('lr') }] }))));
  }

  renderCheckpoints() {
    const list = this.detail.checkpoints, part = this.parts.checkpoints;
    if (list.length === 0) { part.replaceChildren(h('h2', { text: 'Checkpoints' }), h('p', { class: 'muted', text: 'No LoRA files yet.' })); return; }
    const mb = b => (b / 1048576).toFixed(1) + ' MB';
    const best = this.detail.best;
    part.replaceChildren(h('h2', { text: 'Checkpoints' }), h('table', { class: 'data' },
      h('thead', {}, h('tr', {}, h('th', { text: 'file' }), h('th', { text: 'step' }), h('th', { text: 'size' }), h('th', {}))),
      h('tbody', {}, list.map(c => h('tr', { class: c.kind === 'best' ? 'best' : '' },
        h('td', {}, c.kind === 'best' ? h('span', { class: 'star', text: '★ ' }) : null, h('span', { class: 'mono', text: c.name })),
        h('td', { text: c.kind === 'best' && best ? String(best.step) : c.step != null ? String(c.step) : c.kind === 'final' ? String(this.lastStep) : '' }),
        h('td', { text: mb(c.bytes) }),
        h('td', {}, h('a', { href: fileURL(c.path), text: 'download' })))))));
  }

  renderConfig() {
    const config = this.detail.config, part = this.parts.config;
    if (!config) { part.replaceChildren(h('h2', { text: 'Config' }), h('p', { class: 'muted', text: 'No config.toml in this run.' })); return; }
    const show = v => Array.isArray(v) ? (v.length && v.every(x => typeof x === 'string') && v.some(x => x.length > 24)
      ? h('ul', {}, v.map(x => h('li', { text: x }))) : h('span', { class: 'mono', text: JSON.stringify(v) }))
      : typeof v === 'string' ? h('span', { text: v }) : h('span', { class: 'mono', text: String(v) });
    part.replaceChildren(h('div', { class: 'panel-head' }, h('h2', { text: 'Config' }),
      this.detail.configPath ? h('a', { href: fileURL(this.detail.configPath), target: '_blank', text: 'config.toml ↗' }) : null),
      h('div', { class: 'config-grid' }, config.sections.map(sec => h('div', {}, h('h3', { text: sec.name ? '[' + sec.name + ']' : '(top level)' }),
        h('table', { class: 'data' }, h('tbody', {}, sec.entries.map(e => h('tr', {}, h('td', { text: e.key }), h('td', {}, show(e.value))))))))));
  }
}

class CompareView {
  // `pick` is the step picker's choice ('latest', 'best' or a step); null asks for the default (the newest
  // step every run has sampled).
  constructor(ids, pick) { this.ids = ids; this.pick = pick || null; this.key = ''; }

  chosen() {
    const known = app.index.runs.map(r => r.id);
    const ids = this.ids.filter(id => known.includes(id));
    return ids.length ? ids : known.slice(0, 8);
  }

  async load() { await this.refresh(true); }
  async poll() { await this.refresh(false); }

  async refresh(force) {
    const ids = this.chosen();
    if (ids.length === 0) {
      document.getElementById('main').replaceChildren(h('h1', { text: 'Compare' }), h('p', { class: 'muted', text: 'No runs to compare yet.' }));
      return;
    }
    const query = ids.map(id => 'id=' + encodeURIComponent(id)).join('&') + (this.pick ? '&step=' + encodeURIComponent(this.pick) : '');
    const data = await getJSON('/api/compare?' + query);
    if (app.view !== this) return;
    const key = JSON.stringify(data);
    if (!force && key === this.key) return;
    this.key = key;
    this.render(data, ids);
  }

  // The step picker: each run's newest or best samples, or one step (those every run has first, marked).
  picker(data, ids) {
    const common = new Set(data.commonSteps);
    // A step from the address that no run has sampled stays selectable, so the picker shows what the page shows.
    const steps = /^\d+$/.test(data.pick) && !data.steps.includes(Number(data.pick)) ? [...data.steps, Number(data.pick)].sort((a, b) => a - b) : data.steps;
    const options = [['latest', 'newest of each run'], ['best', '★ best checkpoint of each run'],
      ...steps.slice().reverse().map(st => [String(st), 'step ' + st + (common.has(st) ? '' : ' (not every run)')])];
    const select = h('select', { 'aria-label': 'samples at', 'data-pick': data.pick },
      options.map(([value, text]) => h('option', { value, selected: value === data.pick }, text)));
    select.addEventListener('change', () => { location.hash = compareHref(ids, select.value); });
    return h('label', { class: 'picker' }, 'samples at ', select);
  }

  render(data, ids) {
    const color = i => PALETTE[i % PALETTE.length];
    // Runs are named by folder; two pipelines may both have an "r1", then the full id tells them apart.
    const label = run => data.runs.filter(r => r.name === run.name).length > 1 ? run.id : run.name;
    const chooser = h('div', { class: 'chooser' }, app.index.runs.map(run => {
      const box = h('input', { type: 'checkbox', checked: ids.includes(run.id) });
      box.addEventListener('change', () => {
        const next = box.checked ? [...ids, run.id] : ids.filter(id => id !== run.id);
        location.hash = compareHref(next, this.pick);
      });
      return h('label', {}, box, run.id);
    }));
    const chart = lineChart({ title: 'Validation loss', size: [940, 330], empty: 'none of these runs has logged a validation loss yet',
      series: data.runs.map((run, i) => ({ key: 'val_loss:' + run.id, label: label(run), color: color(i), width: 2.2, dots: true,
        points: run.valLoss.map(p => [p.step, p.value]), highlight: run.bestStep != null ? [run.bestStep] : [] })) });
    // The base model's column(s) first: step 0, before any update.
    const baseLabel = b => data.base.length > 1 ? 'base · ' + (b.model.split('/').pop() || b.run) : 'base model';
    const shot = (image, caption, swatch, text) => h('figure', { class: 'shot' + (swatch ? '' : ' base') },
      image ? sampleImage(image.path, 256, caption) : h('div', { class: 'no-sample', text: 'no sample' + (data.pick.match(/^\d+$/) ? ' at step ' + data.pick : '') }),
      h('figcaption', {}, swatch ? h('span', { class: 'swatch', style: 'background:' + swatch }) : null, text));
    const rows = data.keys.map(k => h('div', { class: 'compare-row' },
      h('div', { class: 'prompt-text' }, h('b', { text: 'p' + k.prompt + ' · seed ' + k.seed }), k.text),
      h('div', { class: 'shots' },
        data.base.map(b => {
          const image = b.samples.find(x => x.prompt === k.prompt && x.seed === k.seed);
          return shot(image, baseLabel(b) + ' (step 0 of ' + b.run + ')\n' + k.text, null, baseLabel(b));
        }),
        data.runs.map((run, i) => {
          const image = run.samples.find(x => x.prompt === k.prompt && x.seed === k.seed);
          return shot(image, image ? label(run) + ' · step ' + image.step + '\n' + k.text : '', color(i),
            label(run) + (image ? ' · step ' + image.step : ''));
        }))));
    const title = data.pick === 'latest' ? 'Newest samples, side by side' : data.pick === 'best' ? 'Best checkpoints\' samples, side by side'
      : 'Samples at step ' + data.pick + ', side by side';
    const main = [
      h('div', { class: 'page-head' }, h('div', {}, h('h1', { text: 'Compare runs' }),
        h('div', { class: 'sub', text: 'validation loss on the same held-out images, and the runs\' samples for the same prompt and seed beside the base model\'s' }))),
      h('section', { class: 'panel' }, h('h2', { text: 'Runs' }), chooser),
      h('section', { class: 'panel chart-big' }, h('div', { class: 'panel-head' }, h('h2', { text: 'Validation loss' }),
        h('span', { class: 'muted', text: 'rings mark each run\'s best checkpoint' })), h('div', { class: 'chart-card' }, chart)),
      h('section', { class: 'panel', id: 'compare-samples' }, h('div', { class: 'panel-head' }, h('h2', { text: title }), this.picker(data, ids), stencilToggle()),
        data.base.length ? null : h('p', { class: 'muted', text: 'No base-model column: none of these runs has step-0 samples.' }),
        rows.length ? rows : h('p', { class: 'muted', text: 'No samples yet.' })),
    ];
    for (const grid of data.grids) {
      main.push(h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', { text: 'Pipeline grid' }),
        h('a', { href: fileURL(grid), target: '_blank', text: grid + ' ↗' })),
        h('img', { class: 'wide-image', src: fileURL(grid), alt: 'comparison grid ' + grid })));
    }
    document.getElementById('main').replaceChildren(...main);
  }
}

// The rows of a pipeline's summary.json: each run linked to its page and its LoRA files (the server resolves
// the summary's folders against runs/), the lowest best val loss in bold.
function summaryTable(rows) {
  const results = rows.map(row => row.result);
  const best = results.reduce((b, r) => (r.bestValidationLoss != null && (b == null || r.bestValidationLoss < b.bestValidationLoss)) ? r : b, null);
  const head = ['run', 'best step', 'best val loss', 'final val loss', 'CLIP score', 'ink: base → samples (data)', 'steps', 'train time', 'it/s', 'files'];
  // Ink coverage of the base model's and this run's grid cells and of the training images: the LoRA learned the
  // data's line weight when its samples move from the base value toward the data's.
  const pct = x => (100 * x).toFixed(1) + '%';
  const ink = r => (r.sampleInkCoverage == null || r.baseInkCoverage == null || r.datasetInkCoverage == null) ? '—'
    : pct(r.baseInkCoverage) + ' → ' + pct(r.sampleInkCoverage) + ' (' + pct(r.datasetInkCoverage) + ')'
      + (Math.abs(r.datasetInkCoverage - r.baseInkCoverage) > 1e-9
        ? ', ' + Math.round(100 * (r.sampleInkCoverage - r.baseInkCoverage) / (r.datasetInkCoverage - r.baseInkCoverage)) + '% of the way' : '');
  const file = (path, text) => path ? h('a', { href: fileURL(path), text }) : null;
  return h('table', { class: 'summary' },
    h('thead', {}, h('tr', {}, head.map(name => h('th', { text: name })))),
    h('tbody', {}, rows.map(({ result: r, run, best: bestFile, final }) => h('tr', {},
      h('td', {}, run ? h('a', { href: '#/run/' + run, text: r.variant }) : h('span', { title: 'no run at ' + r.folder, text: r.variant })),
      h('td', { text: r.bestStep == null ? '—' : String(r.bestStep) }),
      h('td', {}, r === best ? h('strong', { text: fmt(r.bestValidationLoss, 5) }) : fmt(r.bestValidationLoss, 5)),
      h('td', { text: fmt(r.finalValidationLoss, 5) }),
      h('td', { text: fmt(r.clipScore) + (r.clipScore != null && r.clipScoreNote ? ' (' + r.clipScoreNote + ')' : '') }),
      h('td', { text: ink(r) }),
      h('td', { text: String(r.steps) }),
      h('td', { text: Math.round(r.seconds) + ' s' }),
      h('td', { text: r.stepsPerSecond.toFixed(2) }),
      h('td', {}, file(bestFile, 'best'), bestFile && final ? ' · ' : null, file(final, 'final'))))));
}

class PipelineView {
  constructor(id) { this.id = id; this.key = ''; this.parts = new Map(); }
  async load() { await this.refresh(true); }
  async poll() { await this.refresh(false); }

  async refresh(force) {
    const data = await getJSON('/api/pipeline?id=' + encodeURIComponent(this.id));
    if (app.view !== this) return;
    const key = JSON.stringify(data);
    if (!force && key === this.key) return;
    this.key = key;
    const p = data.summary;
    const part = (name, value, build) => reuse(this.parts, name, value, build);
    const main = [
      part('head', p, p => h('div', { class: 'page-head' }, h('div', {}, h('h1', { text: p.name }), h('div', { class: 'sub', text: 'pipeline · ' + plural(p.runs.length, 'run') })),
        h('div', { class: 'stats' },
          p.runs.length > 1 ? h('a', { class: 'button primary', href: compareHref(p.runs) }, 'Compare these runs') : null,
          p.compareHTML ? h('a', { class: 'button', href: fileURL(p.compareHTML), target: '_blank' }, 'Open compare page ↗') : null))),
      part('summary', data.results, results => h('section', { class: 'panel' }, h('h2', { text: 'Summary' }),
        results.length ? summaryTable(results) : h('p', { class: 'muted', text: 'No summary.json yet: it is written when the pipeline finishes.' }))),
    ];
    // ?v= changes when a file is regenerated, so the browser fetches the new one.
    const version = p.updated ? '?v=' + Math.round(p.updated) : '';
    if (p.grid) main.push(part('grid', [p.grid, version], ([grid, v]) => h('section', { class: 'panel' }, h('div', { class: 'panel-head' }, h('h2', { text: 'Comparison grid' }),
      h('a', { href: fileURL(grid), target: '_blank', text: 'full size ↗' })), h('img', { class: 'wide-image', src: fileURL(grid) + v, alt: 'comparison grid' }))));
    if (p.plots.length) main.push(part('plots', [p.plots, version], ([plots, v]) => h('section', { class: 'panel' }, h('h2', { text: 'Plots' }),
      h('div', { class: 'plots' }, plots.map(path => h('a', { href: fileURL(path), target: '_blank' }, h('img', { src: fileURL(path) + v, alt: path.split('/').pop() })))))));
    if (data.runs.length) main.push(h('h2', { class: 'section-title', text: 'Runs' }),
      h('div', { class: 'cards' }, data.runs.map(run => part('run:' + run.id, run, runCard))));
    document.getElementById('main').replaceChildren(...main);
  }
}
