"use strict";
// The cap panel, interfaces and system: renders of /api/usage, /api/interfaces, /api/system (dashboard.js polls).
function renderUsage(u) {
  const c = u.cycle, pct = c.percent;
  $("cap-pct").textContent = pct.toFixed(1);
  const bar = $("cap-bar");
  bar.firstElementChild.style.width = Math.min(100, pct) + "%";
  bar.setAttribute("aria-valuenow", Math.min(100, pct).toFixed(1));
  bar.classList.toggle("over", c.projected_bytes > c.cap_bytes || pct >= 100);
  $("cap-used").textContent = `${fmtGB(c.used_bytes)} of ${fmtGB(c.cap_bytes)}`;
  $("cap-today").textContent = fmtGB(u.today.used_bytes);
  $("cap-proj").textContent = `${fmtGB(c.projected_bytes)} (${c.projected_percent}%)`;
  $("cap-days").textContent = `${c.days_left.toFixed(1)} (resets ${fmtDate(c.resets_at)})`;
  $("cap-budget").textContent = `${fmtGB(c.daily_budget_bytes)} per day`;
  $("cap-date").textContent = c.cap_reached ? "already reached" : c.cap_date ? fmtDate(c.cap_date) + " at this pace" : "not at this pace";
  const fired = u.alerts.filter((a) => a.cycle_start === c.start);
  $("cap-alerts").textContent = fired.length ? fired.map((a) => `${a.percent}% (${fmtDate(a.at)})`).join(", ") : "none";
  renderDaily(c);
  renderCapBanner(c);
  renderInvite(u);
  const src = (u.sources || []).find((x) => x.counted), down = (u.sources || []).find((x) => x.counted && x.status === "failing");
  const what = src && src.type !== "local" ? src.label : `this computer (${u.counted.join(", ") || "no interface yet"})`;
  $("cap-note").classList.toggle("err", !!(u.ledger_error || down));
  $("cap-note").textContent = u.ledger_error ? `The usage ledger cannot be saved: ${u.ledger_error}. Counting continues in memory.` :
    down ? `${down.label} is not answering (${(down.last_error || {}).message || "no answer"}): counting is paused and the gap is filled when it answers.` :
    (c.adjustment_bytes ? `Includes your ISP meter correction of ${fmtGB(c.adjustment_bytes)} (datacap counted ${fmtGB(c.counted_bytes)}). ` : "") +
    `Counting ${what} since ${fmtDate(c.monitoring_since)}; cycle ${c.start} to ${c.end}.`;
  $("adjustments").replaceChildren(...u.adjustments.filter((a) => !a.undone).slice(-5).map((a) => {
    const li = document.createElement("li"), b = document.createElement("button");
    li.textContent = `${fmtDate(a.at)}: ISP said ${fmtGB(a.isp_bytes)} (drift ${fmtGB(a.offset_bytes)}) `;
    b.textContent = "Undo"; b.type = "button";
    b.addEventListener("click", async () => { await api(`/api/usage/adjust/${a.id}`, { method: "DELETE" }); refreshUsage(); });
    li.append(b); return li;
  }));
}
function renderInterfaces(d) {
  $("if-rows").replaceChildren(...d.interfaces.map((r) => {
    const tr = document.createElement("tr");
    for (const v of [r.name, r.counted ? "yes" : "no", r.rx_mbps == null ? "–" : r.rx_mbps.toFixed(2), r.tx_mbps == null ? "–" : r.tx_mbps.toFixed(2),
      (r.rx_bytes / 1e9).toFixed(2), (r.tx_bytes / 1e9).toFixed(2)]) {
      const td = document.createElement("td"); td.textContent = v; tr.append(td);
    }
    return tr;
  }));
  $("if-note").textContent = d.stale ? (d.age_seconds == null ? "The collector has not written any data yet." :
    `Collector data is stale: last update ${Math.round(d.age_seconds)} s ago.`) : "Totals are the kernel's counters since boot.";
  $("if-note").classList.toggle("err", d.stale);
}
function renderSystem(s) {
  document.title = `datacap — ${s.site}`; $("site").textContent = s.site;  // which of several datacaps this is
  const rows = [["Site", s.site], ["Host", s.host], ["CPU", s.cpu_percent.toFixed(0) + " %"], ["Memory", s.memory_percent.toFixed(0) + " %"]];
  for (const [name, p] of Object.entries(s.processes)) {
    let text = p.state + (p.pid ? ` (pid ${p.pid}, up ${fmtDur(p.uptime_seconds)})` : "");
    if (p.restarts) text += `, ${p.restarts} restarts`;
    if (p.retry_in_seconds != null) text += `, retry in ${p.retry_in_seconds} s`;
    if (p.last_error && p.state !== "running") text += ` — ${p.last_error}`;
    rows.push([name, text]);
  }
  if (s.external_ip) rows.push(["External IP", `${s.external_ip.ip || "–"} ${s.external_ip.isp || ""}`]);
  $("sys").replaceChildren(...rows.flatMap(([k, v]) => { const dt = document.createElement("dt"), dd = document.createElement("dd"); dt.textContent = k; dd.textContent = v; return [dt, dd]; }));
}
const refreshUsage = () => api("/api/usage").then((u) => { renderUsage(u); document.dispatchEvent(new CustomEvent("usage", { detail: u })); }).catch(() => {});
const refreshInterfaces = () => api("/api/interfaces").then(renderInterfaces).catch(() => {});
const refreshSystem = () => api("/api/system").then(renderSystem).catch(() => {});


// ---- daily bars, the budget line, the cap banner, the first-start invitation ------------
const dayDate = (d) => new Date(d + "T12:00:00");  // a date without a time: noon local, never the day before
function renderDaily(c) {
  const cycleDays = Math.round((dayDate(c.end) - dayDate(c.start)) / 864e5) + 1;
  const budget = c.cap_bytes / cycleDays;  // the even pace that uses the cap exactly by the cycle's end
  const max = Math.max(1, budget * 1.15, ...c.daily.map((d) => d.bytes));
  $("cap-daily").replaceChildren(...c.daily.map((d) => {
    const div = document.createElement("div");
    div.style.height = (100 * d.bytes / max) + "%"; div.title = `${fmtDate(dayDate(d.date))}: ${fmtGB(d.bytes)}`;
    div.classList.toggle("over", d.bytes > budget);
    return div;
  }));
  const line = $("cap-budget-line");
  line.hidden = !c.daily.length; line.style.bottom = (100 * budget / max) + "%";
  // dates under the first, middle and last bar; space-between keeps them apart at any width
  const picks = c.daily.length > 6 ? [0, Math.floor((c.daily.length - 1) / 2), c.daily.length - 1] : c.daily.map((_, i) => i);
  $("cap-daily-dates").replaceChildren(...[...new Set(picks)].map((i) => {
    const span = document.createElement("span"); span.textContent = fmtDate(dayDate(c.daily[i].date)); return span;
  }));
  $("cap-daily-note").textContent = `Bars: data used each day (today last). Line: ${fmtGB(budget)} a day, the even pace for the cap.`;
}
function renderCapBanner(c) {
  const b = $("cap-banner"), near = c.percent >= 90 || (c.cap_date && c.percent >= 50);
  b.hidden = !(c.cap_reached || near);
  b.classList.toggle("at", c.cap_reached);
  b.textContent = c.cap_reached ? `Data cap reached: ${fmtGB(c.used_bytes)} of ${fmtGB(c.cap_bytes)} used this cycle. It resets ${fmtDate(c.resets_at)}.`
    : `Near the cap: ${c.percent.toFixed(0)} % used (${fmtGB(c.used_bytes)} of ${fmtGB(c.cap_bytes)})` +
      (c.cap_date ? `; at this pace it runs out ${fmtDate(c.cap_date)}, before the reset ${fmtDate(c.resets_at)}.` : ".");
}
function renderInvite(u) {
  const c = u.cycle, late = Date.parse(c.monitoring_since) - dayDate(c.start).getTime() > 12 * 3600e3;
  const show = late && !u.adjustments.some((a) => !a.undone && a.cycle_start === c.start);
  const p = $("cap-invite");
  p.hidden = !show;
  if (!show || p.childElementCount) return;
  const btn = document.createElement("button");
  btn.type = "button"; btn.textContent = "Enter my ISP's reading";
  btn.addEventListener("click", () => { $("adjust-box").open = true; $("adjust").used_gb.focus(); });
  p.append(`datacap started counting ${fmtDate(c.monitoring_since)}, after this cycle began ${fmtDate(dayDate(c.start))}: what you used before is not in its count. Your ISP's meter knows it. `, btn);
}
