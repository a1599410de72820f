// The Troupe dashboard page: lists runs, plots their metrics live (incremental polling of /api/series, several runs
// overlaid, EMA smoothing, log scale, step or wall-time axis, drag-to-zoom that refetches the visible range) and
// shows one run's config, config diff, events, Slurm jobs and sampled completions. Plain browser JS over Debian's
// Chart.js; not a framework app. Test and benchmark hooks: window.troupeDashboard.
'use strict';

const POLL_MS = 2000;
const POINTS = 2000;       // points per series the server downsamples the full range to
const MAX_HELD = 3 * POINTS; // a series that grew past this by appends is refetched downsampled
const COLORS = ['#2f6fdb', '#d9480f', '#2b8a3e', '#9c36b5', '#e67700', '#0b7285', '#c2255c', '#5c940d'];

const state = {
  runs: [],                 // /api/runs summaries
  selected: [],             // run names plotted, in selection order
  current: null,            // the run whose details show
  details: null,            // /api/run of the current run
  metricsOf: new Map(),     // run -> [metric names]
  metrics: [],              // metric names plotted
  series: new Map(),        // run \0 metric -> {rows, steps, values, wall}
  zoom: new Map(),          // metric -> {x0, x1, data: Map run -> series}
  charts: new Map(),        // metric -> Chart
  smoothing: 0.6,
  logScale: false,
  xAxis: 'step',
};

const hooks = { firstPlotMs: null, ready: false, polls: 0, errors: [] };
window.troupeDashboard = hooks;

const $ = (id) => document.getElementById(id);
const key = (run, metric) => run + '\u0000' + metric;

async function api(path, params) {
  const query = new URLSearchParams(params || {}).toString();
  const response = await fetch(path + (query ? '?' + query : ''), { credentials: 'same-origin' });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function el(tag, text, className) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (className) e.className = className;
  return e;
}

function fmt(v) {
  if (v === null || v === undefined) return '-';
  if (typeof v !== 'number') return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : String(Number(v.toPrecision(5)));
}

// ---- Runs table ---------------------------------------------------------------------------------------------------

function renderRuns() {
  const body = $('runs').tBodies[0];
  body.replaceChildren();
  const filter = $('run-filter').value.trim().toLowerCase();
  for (const run of state.runs) {
    if (filter && !run.name.toLowerCase().includes(filter)) continue;
    const tr = el('tr');
    tr.dataset.run = run.name;
    if (run.name === state.current) tr.className = 'current';
    const box = el('input');
    box.type = 'checkbox';
    box.checked = state.selected.includes(run.name);
    box.addEventListener('change', () => toggleRun(run.name, box.checked));
    const check = el('td');
    check.append(box);
    const name = el('td', run.name, 'name');
    name.addEventListener('click', () => showRun(run.name));
    const status = el('td');
    const label = run.status + (run.requeues ? ` (${run.requeues} requeue${run.requeues > 1 ? 's' : ''})` : '');
    status.append(el('span', label, 'status ' + run.status));
    const metrics = Object.entries(run.latest || {}).map(([k, v]) => `${k} ${fmt(v)}`).join('\n');
    const started = run.start_time ? run.start_time.replace('T', ' ').replace('Z', '') : '';
    tr.append(check, name, el('td', run.kind), status, el('td', run.step ?? '-'), el('td', metrics, 'metrics'),
              el('td', started));
    tr.querySelector('td.metrics').style.whiteSpace = 'pre';
    body.append(tr);
  }
}

async function refreshRuns() {
  const body = await api('/api/runs');
  $('root').textContent = body.root;
  state.runs = body.runs;
  renderRuns();
}

// ---- Metric data --------------------------------------------------------------------------------------------------

function seriesParams(run, metric, extra) {
  return Object.assign({ run, metric, max_points: POINTS }, extra);
}

// Fetches what a held series lacks (from = rows held), or the whole range downsampled.
async function pullSeries(run, metric) {
  const held = state.series.get(key(run, metric));
  const from = held && held.steps.length < MAX_HELD ? held.rows : 0;
  const body = await api('/api/series', seriesParams(run, metric, from ? { from } : {}));
  if (!held || !from || body.reset) {
    state.series.set(key(run, metric), { rows: body.rows, steps: body.steps, values: body.values, wall: body.wall });
    return true;
  }
  if (body.steps.length === 0) return false;
  held.rows = body.rows;
  held.steps.push(...body.steps);
  held.values.push(...body.values);
  held.wall.push(...body.wall);
  return true;
}

async function pullZoom(metric) {
  const z = state.zoom.get(metric);
  await Promise.all(state.selected.map(async (run) => {
    const full = state.series.get(key(run, metric));
    if (!full) return;
    const offset = state.xAxis === 'wall' ? full.wall[0] : 0;
    const body = await api('/api/series', seriesParams(run, metric, { x: state.xAxis, x0: z.x0 + offset,
                                                                      x1: z.x1 + offset }));
    z.data.set(run, body);
  }));
}

// TensorBoard's smoothing: an exponential moving average, debiased for its zero start; gaps (null) pass through.
function smooth(values, weight) {
  const out = new Array(values.length);
  let last = 0, count = 0;
  for (let i = 0; i < values.length; ++i) {
    const v = values[i];
    if (v === null || !Number.isFinite(v)) { out[i] = v; continue; }
    last = last * weight + (1 - weight) * v;
    count += 1;
    out[i] = weight === 0 ? v : last / (1 - Math.pow(weight, count));
  }
  return out;
}

function points(series, origin) {
  const xs = state.xAxis === 'wall' ? series.wall : series.steps;
  const x0 = state.xAxis === 'wall' ? origin : 0;
  return (ys) => ys.map((y, i) => ({ x: xs[i] - x0, y }));
}

function datasetsFor(metric) {
  const out = [];
  const zoom = state.zoom.get(metric);
  state.selected.forEach((run, index) => {
    const full = state.series.get(key(run, metric));
    if (!full) return;
    const series = zoom && zoom.data.get(run) ? zoom.data.get(run) : full;
    const color = COLORS[index % COLORS.length];
    const make = points(series, full.wall[0]);
    const smoothing = state.smoothing > 0;
    out.push({ label: run, data: make(series.values), borderColor: smoothing ? color + '40' : color,
               backgroundColor: color, borderWidth: 1, pointRadius: 0, spanGaps: false, troupeRaw: true });
    if (smoothing) {
      out.push({ label: run + ' (smoothed)', data: make(smooth(series.values, state.smoothing)), borderColor: color,
                 borderWidth: 1.8, pointRadius: 0 });
    }
  });
  return out;
}

// ---- Plots --------------------------------------------------------------------------------------------------------

function wallTick(seconds) {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(r).padStart(2, '0')}s` : `${r}s`;
}

function chartOptions(metric) {
  const zoom = state.zoom.get(metric);
  return {
    animation: false, parsing: false, normalized: true, responsive: true, maintainAspectRatio: false,
    interaction: { mode: 'nearest', axis: 'x', intersect: false },
    plugins: {
      title: { display: true, text: metric },
      legend: { labels: { boxWidth: 10, filter: (item) => !item.text.endsWith('(smoothed)') } },
      decimation: { enabled: false },
    },
    scales: {
      x: { type: 'linear', min: zoom ? zoom.x0 : undefined, max: zoom ? zoom.x1 : undefined,
           title: { display: true, text: state.xAxis === 'wall' ? 'wall time' : 'step' },
           ticks: { maxTicksLimit: 8, callback: state.xAxis === 'wall' ? wallTick : (v) => fmt(v) } },
      y: { type: state.logScale ? 'logarithmic' : 'linear', ticks: { maxTicksLimit: 7, callback: (v) => fmt(v) } },
    },
  };
}

function attachZoom(box, canvas, metric) {
  let start = null;
  const shade = el('div', null, 'zoom-box hidden');
  box.append(shade);
  canvas.addEventListener('mousedown', (e) => { start = e.offsetX; });
  canvas.addEventListener('mousemove', (e) => {
    if (start === null) return;
    shade.classList.remove('hidden');
    shade.style.left = Math.min(start, e.offsetX) + 4 + 'px';
    shade.style.width = Math.abs(e.offsetX - start) + 'px';
  });
  canvas.addEventListener('mouseup', async (e) => {
    shade.classList.add('hidden');
    if (start === null || Math.abs(e.offsetX - start) < 5) { start = null; return; }
    const scale = state.charts.get(metric).scales.x;
    const a = scale.getValueForPixel(Math.min(start, e.offsetX)), b = scale.getValueForPixel(Math.max(start, e.offsetX));
    start = null;
    state.zoom.set(metric, { x0: a, x1: b, data: new Map() });
    await pullZoom(metric);
    redraw(metric, true);
  });
  canvas.addEventListener('dblclick', () => { state.zoom.delete(metric); redraw(metric, true); });
}

function redraw(metric, rebuildOptions) {
  let chart = state.charts.get(metric);
  if (!chart) {
    const box = el('div', null, 'plot');
    box.dataset.metric = metric;
    const canvas = el('canvas');
    box.append(canvas);
    $('plots').append(box);
    chart = new Chart(canvas, { type: 'line', data: { datasets: datasetsFor(metric) }, options: chartOptions(metric) });
    state.charts.set(metric, chart);
    attachZoom(box, canvas, metric);
    return;
  }
  chart.data.datasets = datasetsFor(metric);
  if (rebuildOptions) chart.options = chartOptions(metric);
  chart.update('none');
}

function redrawAll(rebuildOptions) {
  for (const [metric, chart] of state.charts) {
    if (!state.metrics.includes(metric)) {
      chart.destroy();
      document.querySelector(`.plot[data-metric="${CSS.escape(metric)}"]`)?.remove();
      state.charts.delete(metric);
    }
  }
  for (const metric of state.metrics) redraw(metric, rebuildOptions);
}

function markFirstPlot() {
  if (hooks.firstPlotMs !== null || state.charts.size === 0) return;
  // The frame after the charts were drawn: what a person sees.
  requestAnimationFrame(() => {
    hooks.firstPlotMs = performance.now();
    performance.mark('troupe-first-plot');
    document.body.dataset.firstPlot = String(hooks.firstPlotMs);
  });
}

async function loadMetrics() {
  await Promise.all(state.selected.flatMap((run) => state.metrics.map((m) => pullSeries(run, m).catch(() => false))));
}

// ---- Selection ----------------------------------------------------------------------------------------------------

function renderMetricSelect() {
  const names = [...new Set(state.selected.flatMap((r) => state.metricsOf.get(r) || []))].sort();
  const select = $('metric-select');
  select.replaceChildren(...names.map((n) => {
    const o = el('option', n);
    o.value = n;
    o.selected = state.metrics.includes(n);
    return o;
  }));
}

function defaultMetrics(run) {
  const summary = state.runs.find((r) => r.name === run);
  const names = state.metricsOf.get(run) || [];
  const picked = Object.keys((summary && summary.latest) || {}).filter((n) => names.includes(n));
  return (picked.length ? picked : names.filter((n) => !n.startsWith('time/'))).slice(0, 4);
}

async function toggleRun(run, on) {
  state.selected = state.selected.filter((r) => r !== run);
  if (on) state.selected.push(run);
  if (on && !state.metricsOf.has(run)) {
    const details = await api('/api/run', { run });
    state.metricsOf.set(run, details.metrics.map((m) => m.name));
  }
  if (on && state.metrics.length === 0) state.metrics = defaultMetrics(run);
  renderMetricSelect();
  await loadMetrics();
  for (const z of state.zoom.keys()) await pullZoom(z);
  redrawAll(false);
}

// ---- Details ------------------------------------------------------------------------------------------------------

function fillTable(table, rows) {
  const body = table.tBodies[0];
  body.replaceChildren(...rows.map((cells) => {
    const tr = el('tr');
    for (const c of cells) tr.append(c instanceof Node ? c : el('td', c));
    return tr;
  }));
}

function renderEvents(events) {
  fillTable($('events'), events.slice().reverse().map((e) =>
    [e.step, new Date(e.wall_time * 1000).toLocaleString(), e.kind, e.message]));
}

async function renderDiff() {
  const other = $('diff-other').value;
  if (!state.current || !other) return;
  const d = await api('/api/diff', { a: state.current, b: other });
  $('diff-a').textContent = d.a;
  $('diff-b').textContent = d.b;
  $('diff-summary').textContent = `${d.differences.length} keys differ, ${d.equal} equal`;
  const cell = (v) => v === null ? el('td', 'absent', 'absent') : el('td', v);
  fillTable($('diff'), d.differences.map((x) => [x.key, cell(x.a), cell(x.b)]));
}

async function renderSlurm() {
  const box = $('slurm');
  box.replaceChildren(el('p', 'asking Slurm...', 'muted'));
  const s = await api('/api/slurm', { run: state.current });
  if (!s.slurm) { box.replaceChildren(el('p', s.message)); return; }
  const table = el('table');
  table.append(el('thead'), el('tbody'));
  table.tHead.append(el('tr'));
  for (const h of ['job', 'state', 'elapsed', 'reason / nodes', 'from']) table.tHead.rows[0].append(el('th', h));
  fillTable(table, s.jobs.map((j) => [j.id, j.state, j.elapsed, j.reason, j.source]));
  const parts = [table, el('p', `requeues: ${s.requeues} (${s.slurm_dir}/events)`, 'muted')];
  if (s.error) parts.push(el('p', s.error, 'muted'));
  parts.push(el('pre', s.events.join('\n')));
  box.replaceChildren(...parts);
}

let samples = null;

// One card per row of the chosen step: prompt, completion and reward (PPO/GRPO) set out; any other columns (the
// quickstart's example/target/prediction) as "name: value" lines.
function renderSampleStep() {
  const step = $('sample-step').value;
  const c = samples.columns;
  const others = Object.keys(c).filter((k) => !['step', 'prompt', 'completion', 'reward'].includes(k));
  const box = $('samples');
  box.replaceChildren();
  for (let i = 0; i < c.step.length; ++i) {
    if (c.step[i] !== step) continue;
    const card = el('div', null, 'sample');
    if (c.reward) card.append(el('span', 'reward ' + c.reward[i], 'reward'));
    if (c.prompt) card.append(el('div', c.prompt[i], 'prompt'));
    if (c.completion) card.append(el('div', c.completion[i], 'completion'));
    for (const k of others) card.append(el('div', `${k}: ${c[k][i]}`, 'prompt'));
    box.append(card);
  }
}

async function renderSamples() {
  const box = $('samples');
  if (!state.details.tables.includes('samples')) {
    $('sample-step').replaceChildren();
    box.replaceChildren(el('p', 'this run logged no samples (PPO and GRPO runs log a "samples" table)', 'muted'));
    return;
  }
  samples = await api('/api/table', { run: state.current, table: 'samples', last: 400 });
  const steps = [...new Set(samples.columns.step)].reverse();
  $('sample-step').replaceChildren(...steps.map((s) => { const o = el('option', s); o.value = s; return o; }));
  renderSampleStep();
}

function renderDetails() {
  const d = state.details;
  $('details-title').textContent = `${d.name} — ${d.kind || 'unknown kind'}, ${d.status}`;
  $('config').textContent = d.config;
  renderEvents(d.events);
  $('diff-other').replaceChildren(...state.runs.filter((r) => r.name !== d.name).map((r) => {
    const o = el('option', r.name);
    o.value = r.name;
    return o;
  }));
}

async function showRun(run) {
  state.current = run;
  state.details = await api('/api/run', { run });
  state.metricsOf.set(run, state.details.metrics.map((m) => m.name));
  renderRuns();
  renderDetails();
  const tab = document.querySelector('#tabs button.active').dataset.tab;
  await openTab(tab);
}

async function openTab(tab) {
  for (const b of document.querySelectorAll('#tabs button')) b.classList.toggle('active', b.dataset.tab === tab);
  for (const t of document.querySelectorAll('.tab')) t.classList.toggle('hidden', t.id !== 'tab-' + tab);
  if (!state.current) return;
  if (tab === 'diff') await renderDiff();
  if (tab === 'slurm') await renderSlurm();
  if (tab === 'samples') await renderSamples();
}

// ---- Live updates -------------------------------------------------------------------------------------------------

async function poll() {
  try {
    await refreshRuns();
    const changed = await Promise.all(state.selected.flatMap((run) =>
      state.metrics.map((m) => pullSeries(run, m).catch(() => false))));
    if (changed.some(Boolean)) redrawAll(false);
    if (state.current) {
      state.details = await api('/api/run', { run: state.current });
      renderEvents(state.details.events);
    }
    hooks.polls += 1;
    $('live').textContent = 'updated ' + new Date().toLocaleTimeString();
  } catch (e) {
    hooks.errors.push(String(e));
    $('live').textContent = 'update failed: ' + e.message;
  }
  setTimeout(poll, POLL_MS);
}

// Test hooks: what a chart plots for a run (the unsmoothed dataset) and what the page holds.
hooks.plotted = (metric, run) => {
  const chart = state.charts.get(metric);
  const ds = chart && chart.data.datasets.find((d) => d.troupeRaw && d.label === run);
  return ds ? { x: ds.data.map((p) => p.x), y: ds.data.map((p) => p.y) } : null;
};
hooks.smoothed = (metric, run) => {
  const chart = state.charts.get(metric);
  const ds = chart && chart.data.datasets.find((d) => d.label === run + ' (smoothed)');
  return ds ? ds.data.map((p) => p.y) : null;
};
hooks.held = (metric, run) => state.series.get(key(run, metric)) || null;
hooks.state = state;

function wireControls() {
  $('run-filter').addEventListener('input', renderRuns);
  $('smoothing').addEventListener('input', (e) => {
    state.smoothing = Number(e.target.value);
    $('smoothing-value').textContent = state.smoothing.toFixed(2);
    redrawAll(false);
  });
  $('log-scale').addEventListener('change', (e) => { state.logScale = e.target.checked; redrawAll(true); });
  $('x-axis').addEventListener('change', (e) => { state.xAxis = e.target.value; state.zoom.clear(); redrawAll(true); });
  $('metric-select').addEventListener('change', async (e) => {
    state.metrics = [...e.target.selectedOptions].map((o) => o.value);
    await loadMetrics();
    redrawAll(false);
  });
  $('diff-other').addEventListener('change', renderDiff);
  $('sample-step').addEventListener('change', renderSampleStep);
  for (const b of document.querySelectorAll('#tabs button')) b.addEventListener('click', () => openTab(b.dataset.tab));
}

// The first run to show: ?run= in the page's URL, else a running run, else the newest.
function initialRun() {
  const wanted = new URLSearchParams(location.search).get('run');
  if (wanted && state.runs.some((r) => r.name === wanted)) return wanted;
  const running = state.runs.find((r) => r.status === 'running');
  if (running) return running.name;
  const newest = state.runs.slice().sort((a, b) => (b.start_time || '').localeCompare(a.start_time || ''))[0];
  return newest ? newest.name : null;
}

async function main() {
  wireControls();
  // Drop the token from the address bar (the cookie carries it from now on).
  if (location.search.includes('token=')) {
    const params = new URLSearchParams(location.search);
    params.delete('token');
    history.replaceState(null, '', location.pathname + (params.toString() ? '?' + params : ''));
  }
  await refreshRuns();
  const run = initialRun();
  if (run) {
    await showRun(run);
    state.selected = [run];
    state.metrics = defaultMetrics(run);
    renderRuns();
    renderMetricSelect();
    await loadMetrics();
    redrawAll(false);
    markFirstPlot();
  }
  hooks.ready = true;
  setTimeout(poll, POLL_MS);
}

main().catch((e) => { hooks.errors.push(String(e)); $('live').textContent = 'error: ' + e.message; });
