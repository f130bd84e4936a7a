"use strict";
// datacap dashboard: polls the JSON API, never shows old numbers as live.
const $ = (id) => document.getElementById(id);
// The series live in fixed-size typed arrays allocated once: the page's memory does not grow
// with the session. The server keeps at most 600 1-s points plus 720 coarse ones, and every
// minute the page takes that downsampled series afresh.
const CAPACITY = 2048;
const FULL_REFRESH_POLLS = 60;
const fmtGB = (b) => (b == null ? "–" : (b / 1e9).toFixed(b >= 1e11 ? 1 : 2) + " GB");
const fmtMbps = (v) => (v == null ? "–" : Number(v).toFixed(1) + " Mbit/s");
const fmtTime = (iso) => (iso ? new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "–");
const fmtDate = (iso) => (iso ? new Date(iso).toLocaleDateString([], { month: "short", day: "numeric" }) : "–");
function fmtDur(s) {
  s = Math.round(s || 0);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h ? `${h} h ${m} min` : m ? `${m} min ${s % 60} s` : `${s} s`;
}
const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

async function api(path, opts = {}) {
  const r = await fetch(path, { cache: "no-store", ...opts });
  let body = {};
  try { body = await r.json(); } catch (e) { /* not JSON */ }
  if (!r.ok) throw Object.assign(new Error(body.error || `${r.status} ${r.statusText}`), { status: r.status, body });
  return body;
}

// ---- state -----------------------------------------------------------------
let stats = null, session, lastT = null, busy = false, failures = 0, offlineSince = null, pollTimer = null, polls = 0;
const X = new Float64Array(CAPACITY), Y = new Float64Array(CAPACITY), G = new Float64Array(CAPACITY);
const B = new Float64Array(CAPACITY), NO_BASE = new Array(CAPACITY).fill(null);
let n = 0, maxY = 0, view = "time", chart = null;

function resetSeries() { n = 0; maxY = 0; lastT = null; }
function addPoints(pts) {
  for (const p of pts) {
    if (lastT != null && p.t <= lastT) continue;
    if (n === CAPACITY) {  // full: drop the oldest half
      for (const a of [X, Y, G]) a.copyWithin(0, CAPACITY / 2);
      n = CAPACITY / 2;
    }
    // plot each 1-s bin at its middle, in time and in GB (p.bytes is the count at the bin's end)
    X[n] = Date.parse(p.time) / 1000 + 0.5; Y[n] = p.mbps; G[n] = (p.bytes - p.mbps * 62500) / 1e9; n++; lastT = p.t;
    maxY = Math.max(maxY, p.mbps);
  }
}

// ---- controls ----------------------------------------------------------------
let ACTIONS = {};  // status -> the actions it allows, from the server's one definition (/api/meta)
function renderButtons() {
  const ok = stats && !busy && failures === 0 ? ACTIONS[stats.status] || [] : [];
  for (const b of document.querySelectorAll("[data-action]")) b.disabled = !ok.includes(b.dataset.action);
}
async function act(action) {
  if (action === "reset" && !confirm("Reset clears the last test from the dashboard. It stays in History, with its report. Continue?")) return;
  busy = true; renderButtons();
  $("feedback").textContent = { start: "Starting…", pause: "Pausing…", resume: "Resuming…", stop: "Stopping…", reset: "Resetting…" }[action];
  try {
    const body = action === "start" ? startBody() : {};  // usage.js: the line picked for the test
    const r = await api("/api/" + action, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    setStatus(r.status);
    $("feedback").textContent = r.message || "";  // Reset says the test stays in History
  } catch (e) {
    $("feedback").textContent = `${action} failed: ${e.message}`;
  } finally {
    busy = false; kick();
  }
}
for (const b of document.querySelectorAll("[data-action]")) b.addEventListener("click", () => act(b.dataset.action));

function setStatus(s) {
  const el = $("status");
  el.textContent = s; el.dataset.s = s;
  if (stats) stats.status = s;
  renderButtons();
}

// ---- speed panel -------------------------------------------------------------
function renderStats(s) {
  setStatus(s.status);
  $("live").classList.toggle("stale", s.stale || s.status !== "running");
  $("speed").textContent = (s.speed_mbps || 0).toFixed(1);
  $("avg").textContent = fmtMbps(s.avg_speed);
  $("peak").textContent = fmtMbps(s.peak_speed);
  $("baseline").textContent = s.baseline_speed == null ? (s.status === "running" ? "measuring…" : s.status === "connecting" ? "connecting…" : "–") : fmtMbps(s.baseline_speed);
  $("session-gb").textContent = fmtGB(s.total_bytes);
  $("duration").textContent = fmtDur(s.session_duration);
  const stops = [];
  if (s.limit_bytes) stops.push(`${fmtGB(s.limit_bytes)} session limit`);
  if (s.stop_at_cap) stops.push("the data cap");
  $("stops-at").textContent = stops.length ? stops.join(" or ") : "only when you press Stop";
  $("reason").textContent = s.stale ? `Test data is stale: last update ${Math.round(s.age_seconds)} s ago.` :
    s.reason ? `Ended: ${s.reason}` + (s.cap_stop ? ` (stopped on ${s.cap_stop.words})` : "") : "";
  renderErrors(s);  // history.js: each URL's failure in words, and "no server reachable"
  const ev = (s.throttle_events || []).at(-1);
  $("throttle").hidden = !ev;
  if (ev) {
    const span = ev.end ? `from ${fmtTime(ev.start)} to ${fmtTime(ev.end)}` : `since ${fmtTime(ev.start)}`;
    $("throttle").textContent = `Throttled at ${ev.at_gb.toFixed(ev.at_gb < 10 ? 2 : 1)} GB: ${Math.round(ev.baseline_mbps)} → ${ev.throttled_mbps.toFixed(1)} Mbit/s ${span}`;
  }
}

// ---- chart -------------------------------------------------------------------
// uPlot draws the chart; each poll hands it the new series with setData (about 1 ms at 2048 points).
// The axes move in steps: each range is the data's extent rounded up to the next "nice" value,
// so the line grows into the chart and the labels stay put until it reaches the edge.
const NICE = [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10];
function niceCeil(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  return NICE.find((m) => m * p >= v * (1 - 1e-9)) * p;
}
const xRange = (u, min, max) => view === "gb" ? [0, niceCeil(Math.max(0.01, max || 0))]
  : min == null ? [Date.now() / 1000, Date.now() / 1000 + 60] : [min, min + 60 * niceCeil(Math.max(1, (max - min) / 60))];
const yMax = () => niceCeil(Math.max(1, maxY, (stats && stats.baseline_speed) || 0) * 1.1);  // speed from 0: calm, honest
const xs = () => (view === "time" ? X : G);
const SPEED = { width: 2 }, BASE = { width: 1, dash: [6, 4] };
let colors = {}, drawn = "";

// where a throttle event is shaded, in canvas pixels (an open one ends at the latest point)
function eventSpan(u, ev) {
  const x0 = view === "time" ? Date.parse(ev.start) / 1000 : ev.at_bytes / 1e9;
  const x1 = ev.end ? (view === "time" ? Date.parse(ev.end) / 1000 : ev.end_at_bytes / 1e9) : n ? xs()[n - 1] : u.scales.x.max;
  return [Math.round(Math.max(u.bbox.left, u.valToPos(x0, "x", true))), Math.round(Math.min(u.bbox.left + u.bbox.width, u.valToPos(x1, "x", true)))];
}
function afterDraw(u) {  // uPlot's public draw hook: shade the throttle events
  const ctx = u.ctx;
  for (const ev of (stats && stats.throttle_events) || []) {
    const [p0, p1] = eventSpan(u, ev);
    if (p1 <= p0) continue;
    ctx.save();
    ctx.fillStyle = colors.shade; ctx.fillRect(p0, u.bbox.top, p1 - p0, u.bbox.height);
    ctx.strokeStyle = colors.bad; ctx.lineWidth = 2 * devicePixelRatio;
    ctx.beginPath(); ctx.moveTo(p0, u.bbox.top); ctx.lineTo(p0, u.bbox.top + u.bbox.height); ctx.stroke();
    ctx.restore();
  }
  for (const ev of ((stats && stats.events) || []).filter((e) => e.kind === "outage")) {  // no bytes: dashed
    const [p0, p1] = eventSpan(u, { ...ev, end_at_bytes: ev.at_bytes });
    ctx.save();
    ctx.strokeStyle = colors.muted; ctx.lineWidth = devicePixelRatio; ctx.setLineDash([4 * devicePixelRatio, 4 * devicePixelRatio]);
    ctx.strokeRect(p0, u.bbox.top, Math.max(p1 - p0, 0), u.bbox.height);
    ctx.restore();
  }
}
// pauses (the wall clock jumps between two points) and outages are gaps in the line, never a slope
// or a run of zeros: uPlot's public series.gaps hook returns the pixel spans to leave out
function lineGaps(u, sidx, i0, i1, nullGaps) {
  if (view !== "time") return nullGaps;
  const x = u.data[0], px = (v) => Math.round(u.valToPos(v, "x", true)), out = [...nullGaps];
  for (let i = Math.max(i0, 1); i <= i1; i++) if (x[i] - x[i - 1] > 2.5) out.push([px(x[i - 1]), px(x[i])]);
  for (const ev of ((stats && stats.events) || []).filter((e) => e.kind === "outage")) out.push(eventSpan(u, { ...ev, end_at_bytes: ev.at_bytes }));
  out.sort((a, b) => a[0] - b[0]);
  return out.reduce((m, g) => (m.length && g[0] <= m[m.length - 1][1] ? (m[m.length - 1][1] = Math.max(m[m.length - 1][1], g[1]), m) : [...m, g]), []);
}
function makeChart() {
  if (chart) chart.destroy();
  colors = { shade: css("--shade"), bad: css("--bad"), accent: css("--accent"), muted: css("--muted") };
  const el = $("chart"), axis = { stroke: colors.muted, grid: { stroke: css("--line") }, ticks: { stroke: css("--line") } };
  chart = new uPlot({
    width: el.clientWidth || 600, height: 260,
    scales: { x: { time: view === "time", range: xRange }, y: { auto: false, range: () => [0, yMax()] } },
    series: [
      view === "time" ? {} : { label: "GB used", value: (u, v) => (v == null ? "–" : v.toFixed(2) + " GB") },
      { ...SPEED, gaps: lineGaps, label: "Speed", stroke: colors.accent, value: (u, v) => (v == null ? "–" : v.toFixed(1) + " Mbit/s"), points: { show: false } },
      { ...BASE, label: "Baseline", stroke: colors.muted, value: (u, v) => (v == null ? "–" : v.toFixed(1) + " Mbit/s"), points: { show: false } },
    ],
    axes: [{ ...axis, space: 80 /* px between time labels: they never collide */, ...(view === "gb" ? { label: "GB used", values: (u, v) => v.map((x) => x + " GB") } : {}) }, { ...axis, label: "Mbit/s", size: 60 }],
    cursor: { drag: { x: false, y: false } },  // no zoom: the axes are the session's
    hooks: { draw: [afterDraw] },
  }, chartData(), el);
}
function chartData() {
  drawn = chartKey();
  const base = stats && stats.baseline_speed != null ? stats.baseline_speed : null;
  return [xs().subarray(0, n), Y.subarray(0, n), base == null ? NO_BASE.slice(0, n) : B.fill(base, 0, n).subarray(0, n)];
}
function setView(v) {
  view = v;
  $("v-time").setAttribute("aria-pressed", v === "time"); $("v-gb").setAttribute("aria-pressed", v === "gb");
  makeChart();
}
// what the chart shows: its points, the baseline and the throttle events
function chartKey() {
  const evs = (stats && stats.throttle_events) || [], last = evs.at(-1);
  return stats ? `${n} ${lastT} ${stats.baseline_speed} ${evs.length} ${last && last.end}` : "";
}
function redrawChart(whole) {
  if (!chart) return makeChart();
  if (document.hidden) return;  // a hidden tab draws nothing; visibilitychange catches up
  if (!whole && drawn === chartKey()) return;  // an idle, paused or stopped test draws nothing
  const y1 = yMax();
  if (y1 !== chart.scales.y.max) chart.setScale("y", { min: 0, max: y1 });
  chart.setData(chartData());
}
$("v-time").addEventListener("click", () => setView("time"));
$("v-gb").addEventListener("click", () => setView("gb"));
new ResizeObserver(() => { if (chart) { chart.setSize({ width: $("chart").clientWidth, height: 260 }); redrawChart(true); } }).observe($("chart"));

// ---- polling with back-off -------------------------------------------------------
async function poll() {
  pollTimer = null;
  try {
    const incremental = session !== undefined && lastT != null && polls % FULL_REFRESH_POLLS !== 0;
    const s = await api("/api/stats" + (incremental ? `?since=${lastT}` : ""));
    await domReady;
    if (incremental && s.session_id !== session) { session = undefined; return kick(); }
    performance.clearResourceTimings();  // one entry per fetch otherwise piles up to Chromium's 250
    if (!incremental) { resetSeries(); addPoints([...(s.history || []).filter((p) => !s.data_points.length || p.t < s.data_points[0].t), ...s.data_points]); }
    else addPoints(s.data_points);
    delete s.history; s.data_points = [];  // the series arrays hold them now; keep no second copy
    session = s.session_id; stats = s;
    if (failures) { failures = 0; refreshUsage(); refreshSystem(); }
    offlineSince = null; $("offline").hidden = true;
    $("conn").className = s.stale ? "bad" : ""; $("conn").textContent = s.stale ? "test data stale" : "live";
    renderStats(s);
    document.dispatchEvent(new CustomEvent("stats", { detail: s }));  // history.js refreshes when a test ends
    redrawChart();
    if (polls % 2 === 0) refreshInterfaces();
    if (polls % 5 === 0) refreshSystem();
    if (polls % 10 === 0) refreshUsage();
    polls++;
  } catch (e) {
    failures++; offlineSince = offlineSince || new Date();
    const wait = Math.min(30, 2 ** (failures - 1));
    $("offline").hidden = false;
    $("offline").textContent = `The datacap server is not answering (since ${offlineSince.toLocaleTimeString()}): ${e.message}. Retrying in ${wait} s; the numbers below are not live.`;
    $("conn").className = "bad"; $("conn").textContent = "offline";
    $("live").classList.add("stale"); renderButtons();
  } finally {
    if (!pollTimer) pollTimer = setTimeout(poll, failures ? Math.min(30000, 1000 * 2 ** (failures - 1)) : 1000);
  }
}
function kick() { clearTimeout(pollTimer); pollTimer = null; poll(); }
async function loadMeta() {
  try { ACTIONS = (await api("/api/meta")).actions; } catch (e) { setTimeout(loadMeta, 2000); }
  renderButtons();
}

matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => chart && makeChart());
document.addEventListener("visibilitychange", () => redrawChart(true));
// The first answers are fetched while the other scripts load; they are drawn once usage.js, history.js, …
// are there (DOMContentLoaded waits for them): first data paints sooner than fetching after it.
const domReady = new Promise((resolve) => document.addEventListener("DOMContentLoaded", resolve));
loadMeta();
kick();
