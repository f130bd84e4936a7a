"use strict";
// The cap panel, interfaces and system: renders of /api/usage, /api/interfaces, /api/system (dashboard.js polls).
// With several lines, a card per line above the panel; the panel shows the chosen line (a card's button).
let chosenLine = null;  // the line the cap panel, its forms and Start are about; null: the first
const lineOf = (u) => (u.lines || []).find((b) => b.name === chosenLine) || (u.lines || [])[0];
// The figure as of when, and whether the collector is counting now: a frozen figure never passes for a live one.
const asOf = (c) => (c.live === false && c.as_of ? ` (as of ${fmtDate(c.as_of)} ${fmtTime(c.as_of)}: the collector is not counting now)` : "");
function lineUsage(u, b) {  // the first line's keys of /api/usage, for line b
  return b ? { ...u, cycle: b.cycle, today: b.today, alerts: b.alerts, adjustments: b.adjustments, topups: b.topups,
    plan_warnings: b.plan_warnings, sources: b.sources, line: b.name, own_bytes: b.own_bytes } : u;
}
function renderLineCards(u) {
  const box = $("line-cards"), many = (u.lines || []).length > 1;
  box.hidden = !many;
  if (!many) return;
  box.replaceChildren(...u.lines.map((b) => {
    const c = b.cycle, card = document.createElement("article"), pick = document.createElement("button");
    card.className = "line-card" + (b.name === lineOf(u).name ? " chosen" : "") + (c.cap_reached || c.cap_date ? " bad" : "");
    card.dataset.line = b.name;
    pick.type = "button"; pick.textContent = b.name; pick.setAttribute("aria-pressed", String(b.name === lineOf(u).name));
    pick.addEventListener("click", () => { chosenLine = b.name; refreshUsage(); });
    const bar = document.createElement("div"); bar.className = "progress" + (c.projected_bytes > c.cap_bytes || c.percent >= 100 ? " over" : "");
    bar.setAttribute("role", "progressbar"); bar.setAttribute("aria-label", `${b.name}: cap used`);
    bar.setAttribute("aria-valuenow", Math.min(100, c.percent).toFixed(1)); bar.append(document.createElement("div"));
    bar.firstElementChild.style.width = Math.min(100, c.percent) + "%";
    const dl = document.createElement("dl");
    for (const [k, v] of [["Used", `${fmtGB(c.used_bytes)} of ${fmtGB(c.cap_bytes)} (${c.percent.toFixed(1)} %)`],
      ["Projected", `${fmtGB(c.projected_bytes)} (${c.projected_percent} %)`], ["Days left", c.days_left.toFixed(1)],
      ["Daily budget", `${fmtGB(c.daily_budget_bytes)} per day`]]) {
      const dt = document.createElement("dt"), dd = document.createElement("dd"); dt.textContent = k; dd.textContent = v; dl.append(dt, dd);
    }
    const note = document.createElement("p"); note.className = "note" + (c.live === false ? " err" : "");
    note.textContent = (b.source || "") + asOf(c);
    card.append(pick, bar, dl, note);
    return card;
  }));
}
function renderStartLines(u) {  // Start runs the test over the chosen line
  const sel = $("start-line"), many = (u.lines || []).length > 1;
  sel.hidden = !many;
  if (!many) return;
  const names = u.lines.map((b) => b.name);
  if (sel.options.length !== names.length || [...sel.options].some((o, i) => o.value !== names[i])) {
    sel.replaceChildren(...names.map((n) => Object.assign(document.createElement("option"), { value: n, textContent: `over ${n}` })));
  }
  sel.value = lineOf(u).name;
}
function startBody() {  // dashboard.js: what Start sends
  const sel = $("start-line");
  return !sel.hidden && sel.value ? { line: sel.value } : {};
}
$("start-line").addEventListener("change", (e) => { chosenLine = e.target.value; refreshUsage(); });
function renderUsage(all) {
  const u = lineUsage(all, lineOf(all));
  renderLineCards(all);
  $("h-cap").textContent = u.line && (all.lines || []).length > 1 ? `${u.line}: data cap this cycle` : "Data cap this cycle";
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
  renderCapBanner(all);
  renderInvite(u);
  const src = (u.sources || []).find((x) => x.counted), down = (u.sources || []).find((x) => x.counted && x.status === "failing");
  const what = src && src.type !== "local" ? src.label : `this computer (${u.counted.join(", ") || "no interface yet"})`;
  $("cap-note").classList.toggle("err", !!(u.ledger_error || down || c.live === false));
  $("cap-note").textContent = u.ledger_error ? `The usage ledger cannot be saved: ${u.ledger_error}. Counting continues in memory.` :
    down ? `${down.label} is not answering (${(down.last_error || {}).message || "no answer"}): counting is paused and the gap is filled when it answers.` :
    c.live === false ? `These figures are${asOf(c)}.` :
    (c.adjustment_bytes ? `Includes your ISP meter correction of ${fmtGB(c.adjustment_bytes)} (datacap counted ${fmtGB(c.counted_bytes)}). ` : "") +
    `Counting ${what} since ${fmtDate(c.monitoring_since)}; cycle ${c.start} to ${c.end}.`;
  $("cap-own").textContent = c.own_bytes ? `Of ${fmtGB(c.used_bytes)} this cycle, datacap's own tests, probes and telemetry used ${fmtGB(c.own_bytes)} (counted like any traffic; the projection follows the rest).` : "";
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
const refreshUsage = () => api("/api/usage").then((u) => {
  renderUsage(u); renderStartLines(u);
  document.dispatchEvent(new CustomEvent("usage", { detail: lineUsage(u, lineOf(u)) }));
  document.dispatchEvent(new CustomEvent("lines", { detail: u }));
}).catch(() => {});
const refreshInterfaces = () => api("/api/interfaces").then(renderInterfaces).catch(() => {});
const refreshSystem = () => api("/api/system").then(renderSystem).catch(() => {});


// ---- daily bars, the budget line, the cap banner, the first-start invitation ------------
const dayDate = (d) => new Date(d + "T12:00:00");  // a date without a time: noon local, never the day before
function renderDaily(c) {
  const budget = c.even_daily_bytes;  // the even pace that uses the cap exactly by the cycle's end (the server's)
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
const nearCap = (c) => c.cap_reached || c.percent >= 90 || (c.cap_date && c.percent >= 50);
function capWords(c, name) {
  const who = name ? `${name}: ` : "";
  return c.cap_reached ? `${who}Data cap reached: ${fmtGB(c.used_bytes)} of ${fmtGB(c.cap_bytes)} used this cycle. It resets ${fmtDate(c.resets_at)}.`
    : `${who}Near the cap: ${c.percent.toFixed(1)}% used (${fmtGB(c.used_bytes)} of ${fmtGB(c.cap_bytes)})` +
      (c.cap_date ? `; at this pace it runs out ${fmtDate(c.cap_date)}, before the reset ${fmtDate(c.resets_at)}.` : ".");
}
function renderCapBanner(all) {  // every line near or at its cap, each named when there are several
  const b = $("cap-banner"), many = (all.lines || []).length > 1;
  const hit = (all.lines || [{ cycle: all.cycle }]).filter((x) => nearCap(x.cycle));
  b.hidden = !hit.length;
  b.classList.toggle("at", hit.some((x) => x.cycle.cap_reached));
  b.textContent = hit.map((x) => capWords(x.cycle, many ? x.name : null)).join(" ");
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
