// paradigms lab: the little JavaScript the pages need. Line charts on a canvas, live curves through server-sent
// events, the runs table's sorting and filtering, the start form and the queue. Written for this project; it loads
// nothing from anywhere but the lab itself.
"use strict";

const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];

// -- a line chart -------------------------------------------------------------------------------------------------
// series: [{label, colour, points: [[x, y], ...], dots}]; draws axes with round ticks, the lines, a legend.
function drawChart(canvas, title, series) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 330, h = canvas.clientHeight || 220;
  canvas.width = w * ratio; canvas.height = h * ratio;
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, w, h);
  const pts = series.flatMap(s => s.points).filter(p => isFinite(p[1]));
  g.font = "12px system-ui, sans-serif"; g.fillStyle = "#1d1d1f";
  g.fillText(title, 8, 14);
  if (!pts.length) { g.fillStyle = "#888"; g.fillText("no points yet", w / 2 - 35, h / 2); return; }
  let [x0, x1] = [Math.min(...pts.map(p => p[0])), Math.max(...pts.map(p => p[0]))];
  let [y0, y1] = [Math.min(...pts.map(p => p[1])), Math.max(...pts.map(p => p[1]))];
  if (x1 === x0) { x0 -= 1; x1 += 1; }
  if (y1 === y0) { const d = Math.abs(y0) * 0.05 || 0.5; y0 -= d; y1 += d; }
  const pad = {l: 52, r: 10, t: 22, b: 26};
  const X = x => pad.l + (x - x0) / (x1 - x0) * (w - pad.l - pad.r);
  const Y = y => h - pad.b - (y - y0) / (y1 - y0) * (h - pad.t - pad.b);
  g.strokeStyle = "#ddd"; g.fillStyle = "#555"; g.lineWidth = 1;
  for (const t of ticks(y0, y1, 4)) {
    g.beginPath(); g.moveTo(pad.l, Y(t)); g.lineTo(w - pad.r, Y(t)); g.stroke();
    g.fillText(fmt(t), 4, Y(t) + 4);
  }
  for (const t of ticks(x0, x1, 5)) g.fillText(fmt(t), X(t) - 10, h - 8);
  series.forEach((s, i) => {
    const good = s.points.filter(p => isFinite(p[1]));
    g.strokeStyle = g.fillStyle = s.colour || COLOURS[i % COLOURS.length]; g.lineWidth = 1.6;
    g.beginPath();
    good.forEach((p, j) => j ? g.lineTo(X(p[0]), Y(p[1])) : g.moveTo(X(p[0]), Y(p[1])));
    g.stroke();
    if (s.dots || good.length === 1) good.forEach(p => { g.beginPath(); g.arc(X(p[0]), Y(p[1]), 2.5, 0, 7); g.fill(); });
  });
  // the legend on a pale box, over the lines, so that neither hides the other's words
  const wide = Math.max(...series.map(s => g.measureText(s.label).width));
  g.fillStyle = "rgba(255, 255, 255, 0.85)";
  g.fillRect(w - pad.r - 12 - wide, pad.t + 1, wide + 8, 14 * series.length + 4);
  series.forEach((s, i) => {
    g.fillStyle = s.colour || COLOURS[i % COLOURS.length];
    g.fillText(s.label, w - pad.r - 8 - g.measureText(s.label).width, pad.t + 12 + 14 * i);
  });
}

function ticks(lo, hi, n) {
  const step = Math.pow(10, Math.floor(Math.log10((hi - lo) / n)));
  const nice = [1, 2, 5, 10].map(m => m * step).find(s => (hi - lo) / s <= n) || 10 * step;
  const out = [];
  for (let t = Math.ceil(lo / nice) * nice; t <= hi + 1e-12; t += nice) out.push(+t.toPrecision(12));
  return out;
}

function fmt(v) { return Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(1) : +v.toPrecision(4); }

// -- curves of one run or several: one chart per metric, train and evaluation overlaid ------------------------------
const SKIP = new Set(["step", "split", "epoch", "time_s"]);

function metricSeries(rows, tag, colourOf) {
  // {metric: {seriesKey: {label, colour, dots, points}}}
  const out = {};
  for (const r of rows) {
    if (r.split !== "train" && r.split !== "eval") continue;
    for (const [k, v] of Object.entries(r)) {
      if (SKIP.has(k) || typeof v !== "number" || k === "lr" || k.startsWith("lr_")) continue;
      const name = k.split("/").pop(), key = `${tag}${r.split}: ${k}`;
      const m = out[name] = out[name] || {};
      m[key] = m[key] || {label: key, colour: colourOf(r.split, key), dots: r.split === "eval", points: []};
      m[key].points.push([r.step, v]);
    }
  }
  return out;
}

class Curves {
  constructor(box) { this.box = box; this.charts = {}; this.data = {}; }
  set(data) { this.data = data; this.draw(); }
  draw() {
    for (const name of Object.keys(this.data).sort()) {
      if (!this.charts[name]) {
        const fig = document.createElement("figure");
        const canvas = document.createElement("canvas");
        canvas.dataset.metric = name;
        fig.appendChild(canvas); this.box.appendChild(fig); this.charts[name] = canvas;
      }
      drawChart(this.charts[name], name, Object.values(this.data[name]));
    }
  }
}

async function getJSON(url, options) {
  const r = await fetch(url, options);
  const body = await r.json().catch(() => ({error: `the lab answered ${r.status}`}));
  if (!r.ok) throw Object.assign(new Error(body.error || r.statusText), {body});
  return body;
}

// -- the pages ------------------------------------------------------------------------------------------------------
function runPage(run, state) {
  const curves = new Curves(document.getElementById("curves"));
  const colour = split => split === "eval" ? COLOURS[1] : COLOURS[0];
  let rows = [];
  const show = () => curves.set(metricSeries(rows, "", colour));
  const live = document.getElementById("live");
  const q = encodeURIComponent(run);
  getJSON(`/api/metrics?run=${q}`).then(d => {
    rows = d.rows; show();
    if (d.state !== "running") return;
    live.textContent = "live: new points as the run logs them";
    const source = new EventSource(`/api/events?run=${q}&since=${d.next}`);
    source.addEventListener("metrics", e => { rows = rows.concat(JSON.parse(e.data).rows); show(); });
    source.addEventListener("state", e => {
      const s = JSON.parse(e.data).state, el = document.getElementById("state");
      el.textContent = s; el.className = `state ${s}`;
    });
    source.addEventListener("end", () => { source.close(); live.textContent = "the run has ended"; setTimeout(() => location.reload(), 1500); });
  });
  window.addEventListener("resize", () => curves.draw());
}

function comparePage(runs) {
  const curves = new Curves(document.getElementById("curves"));
  document.querySelectorAll(".swatch").forEach(el => el.style.background = COLOURS[+el.dataset.i % COLOURS.length]);
  Promise.all(runs.map(r => getJSON(`/api/metrics?run=${encodeURIComponent(r)}`))).then(all => {
    const merged = {};
    all.forEach((d, i) => {
      const tagged = metricSeries(d.rows, `${runs[i]} `, () => COLOURS[i % COLOURS.length]);
      for (const [name, series] of Object.entries(tagged)) Object.assign(merged[name] = merged[name] || {}, series);
    });
    curves.set(merged);
  });
  window.addEventListener("resize", () => curves.draw());
}

function runsPage() {
  const table = document.getElementById("runs"), body = table.tBodies[0];
  const recipe = document.getElementById("f-recipe"), dataset = document.getElementById("f-dataset");
  const filter = () => {
    for (const tr of body.rows) {
      if (!tr.dataset.run) continue;
      tr.hidden = (recipe.value && tr.dataset.recipe !== recipe.value) ||
                  (dataset.value && !tr.dataset.dataset.includes(dataset.value));
    }
  };
  recipe.onchange = dataset.oninput = filter;
  let order = 1;
  table.querySelectorAll("th[data-key]").forEach((th, col) => th.onclick = () => {
    order = -order;
    const rows = [...body.rows].filter(r => r.dataset.run);
    const key = r => r.cells[col + 1].textContent.trim();
    rows.sort((a, b) => order * key(a).localeCompare(key(b), undefined, {numeric: true}));
    rows.forEach(r => body.appendChild(r));
  });
  const compare = document.getElementById("compare");
  const picked = () => [...document.querySelectorAll(".pick:checked")].map(c => c.value);
  document.querySelectorAll(".pick").forEach(c => c.onchange = () => compare.disabled = picked().length < 2);
  compare.onclick = () => location.href = "/compare?" + picked().map(r => "run=" + encodeURIComponent(r)).join("&");

  const form = document.getElementById("start");
  form.onsubmit = async e => {
    e.preventDefault();
    form.querySelectorAll(".field-error").forEach(el => el.textContent = "");
    const data = Object.fromEntries(new FormData(form));
    try {
      await getJSON("/api/start", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(data)});
      form.querySelector("textarea").value = "";
      refreshQueue();
    } catch (err) {
      const where = form.querySelector(`.field-error[data-field="${(err.body && err.body.field) || "sets"}"]`);
      where.textContent = err.message;
    }
  };
  refreshQueue();
  setInterval(refreshQueue, 2000);
  setInterval(refreshRuns, 3000);
}

async function refreshRuns() {
  // states and metrics change while runs train; a run that appeared reloads the list (unless the form is in use)
  const runs = await getJSON("/api/runs").catch(() => null);
  if (!runs) return;
  const rows = new Map([...document.querySelectorAll("#runs tbody tr[data-run]")].map(tr => [tr.dataset.run, tr]));
  const busy = document.activeElement && document.activeElement.closest("form");
  if (runs.some(r => !rows.has(r.id)) && !busy && !document.querySelector(".pick:checked")) return location.reload();
  for (const r of runs) {
    const tr = rows.get(r.id);
    if (!tr) continue;
    const state = tr.querySelector("[data-state]");
    state.textContent = r.state; state.className = `state ${r.state}`;
    if (r.metric) tr.querySelector(".metric").textContent = `${r.metric} ${+r.value.toPrecision(4)}`;
    tr.querySelector(".time").textContent = r.duration;
  }
}

let shownQueue = null;   // what the queue's rows show now: they are rebuilt only when it changes

async function refreshQueue() {
  const box = document.querySelector("#queue tbody");
  if (!box) return;
  const jobs = await getJSON("/api/queue").catch(() => null);
  if (!jobs) return;
  // unchanged: the rows stay as they are (a click on a run's link must not land on a row being replaced)
  const shown = JSON.stringify(jobs.map(j => [j.id, j.run, j.label, j.state]));
  if (shown === shownQueue) return;
  shownQueue = shown;
  box.innerHTML = "";
  for (const j of jobs.slice().reverse()) {
    const tr = box.insertRow();
    tr.insertCell().textContent = j.id;
    const a = document.createElement("a");
    a.href = `/run?run=${encodeURIComponent(j.run)}`; a.textContent = `${j.label} (${j.run})`;
    tr.insertCell().appendChild(a);
    tr.insertCell().textContent = j.state;
    const cell = tr.insertCell();
    if (j.state === "queued" || j.state === "running") {
      const b = document.createElement("button");
      b.textContent = j.state === "queued" ? "drop" : "stop"; b.className = "stop"; b.dataset.job = j.id;
      b.onclick = () => stopJob(j.id);
      cell.appendChild(b);
    }
  }
}

async function stopJob(id) {
  await getJSON("/api/stop", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({job: id})})
    .catch(err => alert(err.message));
  refreshQueue();
}

function wireActions() {
  document.querySelectorAll("button.stop[data-job]").forEach(b => b.onclick = () => stopJob(+b.dataset.job).then(() => location.reload()));
  document.querySelectorAll("button.resume").forEach(b => b.onclick = async () => {
    try {
      await getJSON("/api/resume", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({run: b.dataset.run})});
      location.reload();
    } catch (err) { alert(err.message); }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const lab = window.LAB || {};
  wireActions();
  if (lab.page === "run") runPage(lab.run, lab.state);
  if (lab.page === "compare") comparePage(lab.runs);
  if (lab.page === "runs") runsPage();
});
