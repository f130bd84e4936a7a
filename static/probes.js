"use strict";
// Speed over the cycle: scheduled probes (and long tests' throttle events) against the GB used this
// cycle or against the date, the probes' finding marked, the probe budget used. Probes that settled
// are joined by the line; one that did not (stopped at its byte ceiling or its time) is a hollow dot
// off the line, its figure only an estimate. Polls /api/probes every 30 s (probes are minutes apart);
// self-contained beside dashboard.js.
(() => {
  const $ = (id) => document.getElementById(id);
  const POLL_MS = 30000, HEIGHT = 240;
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  const mb = (b) => (b >= 1e9 ? (b / 1e9).toFixed(2) + " GB" : (b / 1e6).toFixed(1) + " MB");
  const mbit = (v) => (v == null ? "–" : Number(v).toFixed(v < 10 ? 2 : 1) + " Mbit/s");
  let body = null, view = "gb", chart = null, timer = null;

  // One row per point, sorted by x: [x, settled probe, unsettled probe, long test] in Mbit/s (uPlot wants one x array).
  function rows() {
    const out = [];
    for (const p of body.probes) {
      if (p.mbps == null) continue;
      const x = view === "gb" ? p.cycle_used_bytes / 1e9 : Date.parse(p.time) / 1000;
      out.push(p.settled ? [x, p.mbps, null, null] : [x, null, p.mbps, null]);
    }
    for (const e of body.long_tests) {
      const x = view === "gb" ? e.at_cycle_gb : Date.parse(e.start) / 1000;
      out.push([x, null, null, e.baseline_mbps], [x, null, null, e.throttled_mbps]);
    }
    out.sort((a, b) => a[0] - b[0]);
    return [0, 1, 2, 3].map((i) => out.map((r) => r[i]));
  }

  function marks() {  // where the finding begins and lifts, in this view's x
    const f = body.finding;
    if (!f) return [];
    const at = (gb, iso) => (view === "gb" ? gb : Date.parse(iso) / 1000);
    const out = [{ x: at(f.since_cycle_gb, f.since_time), label: "throttled" }];
    if (f.lifted) out.push({ x: at(f.lifted.at_cycle_gb, f.lifted.time), label: "lifted" });
    return out;
  }

  function drawMarks(u) {  // uPlot's public draw hook
    const ctx = u.ctx, top = u.bbox.top, bottom = top + u.bbox.height;
    ctx.save();
    ctx.strokeStyle = css("--bad"); ctx.fillStyle = css("--bad"); ctx.setLineDash([5, 4]); ctx.lineWidth = 2;
    ctx.font = `${12 * devicePixelRatio}px system-ui`;
    for (const m of marks()) {
      const x = Math.round(u.valToPos(m.x, "x", true));
      if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
      ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, bottom); ctx.stroke();
      ctx.fillText(m.label, x + 4 * devicePixelRatio, top + 14 * devicePixelRatio);
    }
    ctx.restore();
  }

  function makeChart() {
    if (chart) chart.destroy();
    const el = $("probe-chart"), axis = { stroke: css("--muted"), grid: { stroke: css("--line") }, ticks: { stroke: css("--line") } };
    const dots = (stroke, size) => ({ stroke, fill: stroke, size });
    chart = new uPlot({
      width: el.clientWidth || 600, height: HEIGHT,
      scales: { x: { time: view === "date" }, y: { range: (u, lo, hi) => [0, Math.max(1, hi * 1.1)] } },
      series: [
        view === "gb" ? { label: "GB used this cycle", value: (u, v) => (v == null ? "–" : v.toFixed(2) + " GB") } : {},
        { label: "Probe", stroke: css("--accent"), width: 1.5, spanGaps: true, points: { show: true, ...dots(css("--accent"), 7) }, value: (u, v) => mbit(v) },
        { label: "Probe (did not settle)", stroke: css("--accent"), paths: () => null,
          points: { show: true, stroke: css("--accent"), fill: css("--card"), size: 7, width: 1.5 }, value: (u, v) => mbit(v) },
        { label: "Long test (throttle event)", stroke: css("--warn"), paths: () => null, points: { show: true, ...dots(css("--warn"), 7) }, value: (u, v) => mbit(v) },
      ],
      axes: [{ ...axis, ...(view === "gb" ? { label: "GB used this cycle", values: (u, v) => v.map((x) => x + " GB") } : {}) },
        { ...axis, label: "Mbit/s", size: 60 }],
      cursor: { drag: { x: false, y: false } },
      hooks: { draw: [drawMarks] },
    }, rows(), el);
  }

  function renderText() {
    const b = body.budget, s = body.schedule, f = body.finding;
    $("probe-finding").textContent = f ? (f.lifted ? f.lifted.text : f.text) : "No lasting step down across probes this cycle.";
    $("probe-finding").classList.toggle("err", Boolean(body.throttled));
    $("probe-budget").textContent = `${mb(b.spent_bytes)} of ${mb(b.budget_bytes)} (${b.used_percent} %)`;
    $("probe-count").textContent = String(body.probes.length);
    const last = body.probes[body.probes.length - 1];
    $("probe-last").textContent = last ? `${mbit(last.mbps)}${last.mbps != null && !last.settled ? " (did not settle: an estimate)" : ""}, ` +
      `${mb(last.bytes)}, ${new Date(last.time).toLocaleString()}` : "–";
    const interval = body.interval_minutes == null ? "off" : `every ${body.interval_minutes} min`;
    $("probe-next").textContent = s ? `${interval}: ${s.why}` : interval;
  }

  async function poll() {
    clearTimeout(timer);
    timer = setTimeout(poll, POLL_MS);
    if (document.hidden) return;
    try {
      const r = await fetch("/api/probes?cycle=this", { cache: "no-store" });
      if (!r.ok) return;
      body = await r.json();
    } catch (e) {
      return;  // dashboard.js says when the server is away
    }
    renderText();
    if (chart) chart.setData(rows()); else makeChart();
  }

  for (const [id, v] of [["pv-gb", "gb"], ["pv-date", "date"]]) {
    $(id).addEventListener("click", () => {
      view = v;
      $("pv-gb").setAttribute("aria-pressed", String(v === "gb"));
      $("pv-date").setAttribute("aria-pressed", String(v === "date"));
      if (body) makeChart();
    });
  }
  new ResizeObserver(() => { if (chart) chart.setSize({ width: $("probe-chart").clientWidth, height: HEIGHT }); }).observe($("probe-chart"));
  document.addEventListener("visibilitychange", () => { if (!document.hidden) poll(); });
  poll();
})();
