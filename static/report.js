"use strict";
// The evidence report: one kept test from /api/history/<id>, drawn for screen and paper.
const $ = (id) => document.getElementById(id);
const testId = decodeURIComponent(location.pathname.split("/").pop());
const fmtGB = (gb) => (gb == null ? "–" : Number(gb).toFixed(gb >= 100 ? 1 : gb >= 1 ? 2 : 3) + " GB");
const fmtMbps = (v) => (v == null ? "–" : Number(v).toFixed(1) + " Mbit/s");
const fmtWhen = (iso) => (iso ? new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "medium" }) : "–");
const fmtClock = (iso) => (iso ? new Date(iso).toLocaleTimeString([], { timeStyle: "medium" }) : "–");
const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
const CHART_MAX_W = 680;  // fits an A4 or Letter page at the print margins
function fmtDur(s) {
  s = Math.round(s || 0);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h ? `${h} h ${m} min` : m ? `${m} min ${s % 60} s` : `${s} s`;
}
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text != null) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}
const row = (cells) => { const tr = el("tr"); for (const c of cells) tr.append(el("td", c)); return tr; };

function eventWhat(e) {
  if (e.kind === "throttle") {
    const drop = e.baseline_mbps ? Math.round(100 * (1 - e.throttled_mbps / e.baseline_mbps)) : null;
    return (e.step ? `step ${e.step}: ` : "") + `${fmtMbps(e.baseline_mbps)} → ${fmtMbps(e.throttled_mbps)}` +
      (drop != null ? ` (${drop} % slower)` : "") + (e.text ? `; ${e.text}` : "") +
      (e.detected_at ? `; detected at ${fmtClock(e.detected_at)}` : "") + (e.end ? "" : "; still slow when the test ended");
  }
  if (e.kind === "outage") return `no data for ${e.duration_s != null ? fmtDur(e.duration_s) : "the rest of the test"}`;
  if (e.kind === "congestion") return `speed swung between ${fmtMbps(e.low_mbps)} and ${fmtMbps(e.high_mbps)} (median ${fmtMbps(e.median_mbps)}) around a ${fmtMbps(e.baseline_mbps)} baseline`;
  if (e.kind === "burst") return e.text || "initial speed boost";
  return "";
}
function renderEvents(t) {
  $("events").replaceChildren(...t.events.map((e) => row([e.kind, fmtClock(e.start), e.end ? fmtClock(e.end) : "–",
    e.at_gb != null ? fmtGB(e.at_gb) : "–", e.at_cycle_gb != null ? fmtGB(e.at_cycle_gb) : "–", eventWhat(e)])));
  $("no-events").hidden = t.events.length > 0;
}
function renderSummary(t, sys) {
  const ip = sys && sys.external_ip;
  const cycle = (a, b) => (a == null && b == null ? "not known" : `${fmtGB(a)} at the start, ${fmtGB(b)} at the end`);
  const rows = [
    ...(sys && sys.site ? [["Site", sys.site]] : []), ["Test", t.id], ...(t.line ? [["Line", t.line]] : []), ["Started", fmtWhen(t.start)], ["Ended", fmtWhen(t.end)], ["Duration", fmtDur(t.duration_s)],
    ["Ended because", t.reason || t.status], ["Data downloaded", fmtGB(t.total_gb)],
    ["Average speed", `${fmtMbps(t.avg_mbps)} (all bytes ÷ time spent testing)`], ["Peak speed", `${fmtMbps(t.peak_mbps)} (best 1-s sample)`],
    ["Baseline", t.baseline_mbps == null ? "not reached" : fmtMbps(t.baseline_mbps)],
    ["Billing cycle used", cycle(t.cycle_gb_at_start, t.cycle_gb_at_end)],
    ["Connection", ip && ip.ip ? `${ip.ip}${ip.isp ? " — " + ip.isp : ""} (now, when this report was made)` : "external IP lookup is off (external_ip_url)"],
  ];
  for (const e of t.url_errors) rows.push([`Errors from ${e.url}`, `${e.what} (${e.count}×, last ${fmtWhen(e.time)})`]);
  $("summary").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", k), el("dd", v)]));
}
function renderRaw(t) {
  $("raw").replaceChildren(...t.points.map(([s, mbps, bytes, time]) =>
    row([time.replace("T", " ").slice(0, 19), String(Math.round(s)), mbps.toFixed(2), (bytes / 1e9).toFixed(4)])));
}

// ---- charts (uPlot, as on the dashboard) ---------------------------------------------
// Gaps: a pause (the wall clock moved on while the test's clock did not) and an outage are drawn as
// breaks in the line, never as a slope between the two sides. Each throttle event is drawn at its own
// level from its onset to its end, so the steps of a throttle in tiers read as steps.
function throttles(t) { return t.events.filter((e) => e.kind === "throttle"); }
function stepAt(t, w) {  // the throttled level of the event under wall time w, or null
  const e = throttles(t).find((x) => w >= Date.parse(x.start) / 1000 && (!x.end || w < Date.parse(x.end) / 1000));
  return e ? e.throttled_mbps : null;
}
function series(t, byGB) {
  const rows = [];  // [x, Mbit/s, throttled level]
  const outages = t.events.filter((e) => e.kind === "outage").map((e) => [Date.parse(e.start) / 1000, e.end ? Date.parse(e.end) / 1000 : Infinity]);
  let prev = null;
  for (const [s, mbps, bytes, time] of t.points) {
    const w = Date.parse(time) / 1000;
    const inOutage = outages.some(([a, b]) => w >= a && w < b);
    const paused = prev && (w - prev.w) - (s - prev.s) > 5;
    if (paused || (inOutage && rows.length && rows[rows.length - 1][1] !== null)) rows.push([byGB ? bytes / 1e9 : w - 0.001, null, null]);
    if (!inOutage) rows.push([byGB ? bytes / 1e9 : w, mbps, stepAt(t, w)]);
    prev = { w, s };
  }
  // each step begins and ends where its event does, not at the nearest kept point (undefined: no speed sample there)
  for (const e of throttles(t)) {
    rows.push([byGB ? e.at_gb : Date.parse(e.start) / 1000, undefined, e.throttled_mbps]);
    if (e.end) rows.push([byGB ? (e.end_at_bytes || 0) / 1e9 : Date.parse(e.end) / 1000 - 0.001, undefined, e.throttled_mbps]);
  }
  rows.sort((a, b) => a[0] - b[0]);
  return [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2])];
}
function renderSteps(t) {  // a throttle in tiers: each step's rates and where it began, in words under the charts
  const evs = throttles(t);
  $("steps").hidden = !evs.some((e) => e.step);
  $("steps").textContent = "Throttle steps: " +
    evs.map((e) => `${fmtMbps(e.baseline_mbps)} → ${fmtMbps(e.throttled_mbps)} from ${fmtGB(e.at_gb)}`).join("; ") + ".";
}
function shade(t, byGB) {
  return (u) => {
    const ctx = u.ctx;
    for (const e of t.events.filter((x) => x.kind === "throttle")) {
      const x0 = byGB ? e.at_gb : Date.parse(e.start) / 1000;
      const x1 = e.end ? (byGB ? (e.end_at_bytes || 0) / 1e9 : Date.parse(e.end) / 1000) : u.scales.x.max;
      const p0 = Math.max(u.bbox.left, u.valToPos(x0, "x", true)), p1 = Math.min(u.bbox.left + u.bbox.width, u.valToPos(x1, "x", true));
      if (p1 <= p0) continue;
      ctx.save();
      ctx.fillStyle = css("--shade"); ctx.fillRect(p0, u.bbox.top, p1 - p0, u.bbox.height);
      ctx.strokeStyle = css("--bad"); ctx.lineWidth = 2 * devicePixelRatio;
      ctx.beginPath(); ctx.moveTo(p0, u.bbox.top); ctx.lineTo(p0, u.bbox.top + u.bbox.height); ctx.stroke();
      ctx.restore();
    }
  };
}
function chart(t, byGB, box) {
  const [xs, ys, steps] = series(t, byGB);
  if (!xs.length) { box.replaceChildren(el("p", "No speed samples were kept for this test.", "note")); return; }
  const base = xs.map(() => t.baseline_mbps);
  const axis = { stroke: css("--muted"), grid: { stroke: css("--line") }, ticks: { stroke: css("--line") } };
  const maxY = Math.max(1, ...ys.filter((v) => v != null), t.baseline_mbps || 0) * 1.1;
  new uPlot({
    width: Math.min(box.clientWidth || CHART_MAX_W, CHART_MAX_W), height: 220,
    scales: { x: { time: !byGB }, y: { auto: false, range: [0, maxY] } },
    series: [
      byGB ? { label: "GB", value: (u, v) => (v == null ? "–" : v.toFixed(3) + " GB") } : {},
      { label: "Speed", stroke: css("--accent"), width: 2, spanGaps: false, points: { show: false }, value: (u, v) => fmtMbps(v) },
      { label: "Baseline", stroke: css("--muted"), width: 1, dash: [6, 4], points: { show: false }, value: (u, v) => fmtMbps(v) },
      { label: "Throttled level", stroke: css("--bad"), width: 2, spanGaps: false, points: { show: false },
        paths: uPlot.paths.stepped({ align: 1 }), value: (u, v) => fmtMbps(v) },
    ],
    axes: [{ ...axis, ...(byGB ? { label: "GB downloaded in this test", values: (u, v) => v.map((x) => x + " GB") } : { space: 80 }) },
      { ...axis, label: "Mbit/s", size: 56 }],
    cursor: { show: false }, legend: { live: false },
    hooks: { draw: [shade(t, byGB)] },
  }, [xs, ys, base, steps], box);
}

async function load() {
  const r = await fetch(`/api/history/${encodeURIComponent(testId)}`, { cache: "no-store" });
  const t = await r.json();
  if (!r.ok) { $("verdict").textContent = t.error || `cannot load this test (${r.status})`; return; }
  let sys = null;
  try { sys = await (await fetch("/api/system", { cache: "no-store" })).json(); } catch (e) { /* the connection row says so */ }
  const site = sys && sys.site;  // which installation ran it: the fleet's name for it
  document.title = `datacap evidence — ${site ? site + ", " : ""}${fmtWhen(t.start)}`;
  $("when").textContent = `Test ${t.id}: ${fmtWhen(t.start)} to ${fmtWhen(t.end)} (${Intl.DateTimeFormat().resolvedOptions().timeZone})`;
  $("verdict").textContent = t.verdict;
  $("verdict").classList.toggle("throttled", t.throttled);
  renderEvents(t); renderSummary(t, sys); renderRaw(t); renderSteps(t);
  $("how").replaceChildren(...(t.method || []).map((s) => el("li", s)));
  chart(t, false, $("chart-time")); chart(t, true, $("chart-gb"));
  $("made").textContent = `Made by datacap${site ? " at " + site : ""} on ${fmtWhen(new Date().toISOString())} from the numbers it kept for this test.`;
  $("report").setAttribute("aria-busy", "false");
}
$("print").addEventListener("click", () => print());
load();
