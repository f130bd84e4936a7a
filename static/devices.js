"use strict";
// The Devices panel: who used the data this cycle (bars), budgets, pause and let through; a render of /api/devices,
// polled every 5 s while the tab is visible. Hidden when device counting is off.
(() => {
  const el = (id) => document.getElementById(id);
  const gb = (b) => (b == null ? "–" : (b / 1e9).toFixed(b >= 1e11 ? 1 : b >= 1e9 ? 2 : 3) + " GB");
  const SHOWN = 12;  // the top devices; the rest behind "Show all"
  const until = (iso) => new Date(iso).toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit" });
  let showAll = false, last = null;

  async function send(path, opts = {}) {
    const r = await fetch(path, { cache: "no-store", headers: { "Content-Type": "application/json" }, ...opts });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error || r.statusText);
    return body;
  }
  function make(tag, cls, text) {
    const x = document.createElement(tag);
    if (cls) x.className = cls;
    if (text != null) x.textContent = text;
    return x;
  }
  function bar(fraction, label, over) {
    const b = make("div", "progress" + (over ? " over" : ""));
    b.setAttribute("role", "progressbar"); b.setAttribute("aria-label", label);
    b.setAttribute("aria-valuemin", "0"); b.setAttribute("aria-valuemax", "100");
    b.setAttribute("aria-valuenow", (100 * Math.min(1, fraction)).toFixed(0));
    const fill = make("div"); fill.style.width = (100 * Math.min(1, fraction)).toFixed(1) + "%"; b.append(fill);
    return b;
  }
  function act(d, action, untilValue) {
    const msg = el("devices-msg");
    send(`/api/devices/${d.mac}/${action}`, { method: "POST", body: JSON.stringify(untilValue ? { until: untilValue } : {}) })
      .then(() => { msg.textContent = `${d.name || d.mac}: ${action === "pause" ? "pausing" : "letting through"}…`; msg.classList.remove("err"); setTimeout(refresh, 800); })
      .catch((e) => { msg.textContent = e.message; msg.classList.add("err"); });
  }
  function budgetForm(d) {
    const box = make("details", "budget-box"), sum = make("summary", null, d.budget_bytes ? "Budget" : "Set a budget");
    const f = make("form", "row");
    const gbIn = make("input"); gbIn.type = "number"; gbIn.min = "0.001"; gbIn.step = "any"; gbIn.required = true; gbIn.name = "gb";
    gbIn.value = d.budget_bytes ? d.budget_bytes / 1e9 : "";
    const per = make("select"); per.name = "per";
    for (const [v, t] of [["day", "per day"], ["cycle", "per cycle"]]) per.append(Object.assign(make("option", null, t), { value: v }));
    per.value = d.budget_per || "day";
    const l1 = make("label", null, "GB"); l1.append(gbIn);
    const l2 = make("label", null, "Resets"); l2.append(per);
    const save = make("button", null, "Save"); save.type = "submit";
    f.append(l1, l2, save);
    if (d.budget_bytes) {
      const rm = make("button", null, "Remove"); rm.type = "button";
      rm.addEventListener("click", () => send(`/api/devices/${d.mac}/budget`, { method: "DELETE" }).then(refresh, (e) => alert(e.message)));
      f.append(rm);
    }
    f.addEventListener("submit", (e) => {
      e.preventDefault();
      send(`/api/devices/${d.mac}/budget`, { method: "PUT", body: JSON.stringify({ gb: Number(gbIn.value), per: per.value }) })
        .then(() => setTimeout(refresh, 800), (err) => alert(err.message));
    });
    box.append(sum, f);
    return box;
  }
  function row(d, top) {
    const li = make("li", "device" + (d.paused ? " paused" : ""));
    li.dataset.mac = d.mac;
    const head = make("div", "device-head");
    head.append(make("span", "device-name", d.name || d.mac));
    if (d.paused) head.append(make("span", "badge", d.paused_until ? `paused until ${until(d.paused_until)}` : "paused"));
    head.append(make("span", "device-figure", `${gb(d.cycle_bytes)} · today ${gb(d.today_bytes)}`));
    li.append(head, bar(top ? d.cycle_bytes / top : 0, `${d.name || d.mac}: share of the top device`));
    if (d.budget_bytes) {
      const used = d.budget_used_bytes || 0;
      li.append(make("p", "note" + (used >= d.budget_bytes ? " err" : ""),
        `Budget: ${gb(used)} of ${gb(d.budget_bytes)} ${d.budget_per === "day" ? "today" : "this cycle"}`),
        bar(used / d.budget_bytes, `${d.name || d.mac}: budget used`, used >= d.budget_bytes));
    }
    const tools = make("div", "row device-tools");
    if (d.paused) {
      const b = make("button", "primary", "Let through"); b.type = "button";
      b.addEventListener("click", () => act(d, "unpause"));
      tools.append(b);
    } else {
      const sel = make("select"); sel.setAttribute("aria-label", `Pause ${d.name || d.mac} for`);
      for (const [v, t] of [["", "until I let it through"], ["tomorrow", "until tomorrow"], ["cycle", "until the cycle resets"]]) {
        sel.append(Object.assign(make("option", null, t), { value: v }));
      }
      const b = make("button", null, "Pause"); b.type = "button";
      b.addEventListener("click", () => act(d, "pause", sel.value || null));
      tools.append(b, sel);
    }
    tools.append(make("span", "note", d.addresses && d.addresses.length ? d.addresses.slice(0, 2).join(", ") : d.mac));
    li.append(tools, budgetForm(d));
    return li;
  }
  function render(doc) {
    last = doc;
    el("devices").hidden = !doc.enabled;
    if (!doc.enabled) return;
    const list = doc.devices || [], top = Math.max(1, ...list.map((d) => d.cycle_bytes || 0));
    const shown = showAll ? list : list.slice(0, SHOWN);
    const keepOpen = new Set([...el("device-list").querySelectorAll("details[open]")].map((x) => x.closest("li").dataset.mac));
    el("device-list").replaceChildren(...shown.map((d) => row(d, top)));
    for (const li of el("device-list").children) if (keepOpen.has(li.dataset.mac)) li.querySelector("details").open = true;
    el("devices-more").hidden = list.length <= SHOWN;
    el("devices-more").textContent = showAll ? "Show the top devices" : `Show all ${list.length} devices`;
    el("devices-lines").replaceChildren(...(doc.lines || []).map((x) => make("li", null,
      `${doc.lines.length > 1 ? x.name + ": " : ""}devices ${gb(x.devices_bytes)}` +
      (x.line_bytes == null ? "" : ` of ${gb(x.line_bytes)} counted on the line; not from any device ${gb(x.unattributed_bytes)}` +
        ` (this gateway's own traffic ${gb(x.gateway_bytes)})`))));
    const note = el("devices-note");
    note.classList.toggle("err", !!doc.error || !doc.live);
    note.textContent = doc.error ? doc.error : !doc.live ? "The collector is not counting devices now: these figures are its last." :
      list.length ? "" : "No device has used the internet through this gateway yet this cycle.";
  }
  function refresh() {
    return fetch("/api/devices", { cache: "no-store" }).then((r) => (r.ok ? r.json() : null)).then((d) => d && render(d)).catch(() => {});
  }
  el("devices-more").addEventListener("click", () => { showAll = !showAll; if (last) render(last); });
  refresh();
  setInterval(() => { if (!document.hidden && !document.querySelector("#device-list details[open] input:focus")) refresh(); }, 5000);
})();
