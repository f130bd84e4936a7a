"use strict";
// The plan in words, counted vs free usage, the next free window, and prepaid top-ups.
// dashboard.js announces each /api/usage answer with a "usage" event.
(() => {
  const el = (id) => document.getElementById(id);
  const gb = (b) => (b / 1e9).toFixed(b >= 1e11 ? 1 : 2) + " GB";
  const when = (iso) => new Date(iso).toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit" });
  const day = (iso) => new Date(iso + "T12:00").toLocaleDateString([], { month: "short", day: "numeric" });
  let line = null;  // the line the top-up form adds to (usage.js's chosen one)
  function render(u) {
    line = u.line || null;
    const c = u.cycle, plan = c.plan || {}, w = plan.next_free_window;
    const parts = [plan.words || ""];
    if (c.free_bytes || w) parts.push(`${gb(c.used_bytes)} counted, ${gb(c.free_bytes || 0)} free this period`);
    if (w) parts.push(new Date(w[0]) <= new Date() ? `free now until ${when(w[1])}` : `next free window ${when(w[0])}–${when(w[1])}`);
    if (c.expired) parts.push("this bucket has expired");
    for (const warning of u.plan_warnings || []) parts.push(warning);
    el("plan-note").textContent = parts.filter(Boolean).join(" · ");
    el("topup-box").hidden = plan.kind !== "prepaid";
    el("topups").replaceChildren(...(u.topups || []).filter((t) => !t.undone && t.bucket_start === c.start).map((t) => {
      const li = document.createElement("li"), b = document.createElement("button");
      li.textContent = `+${t.gb} GB${t.expires ? `, expires ${day(t.expires)}` : ""} `;
      b.type = "button"; b.textContent = "Undo";
      b.addEventListener("click", () => send(`/api/usage/topup/${t.id}`, { method: "DELETE" }));
      li.append(b);
      return li;
    }));
  }
  async function send(path, opts) {
    const r = await fetch(path, { cache: "no-store", ...opts });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error || r.statusText);
    refreshUsage();  // dashboard.js: fetch /api/usage again
    return body;
  }
  document.addEventListener("usage", (e) => render(e.detail));
  el("topup").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = e.target, body = { gb: Number(f.gb.value), ...(line ? { line } : {}) };
    if (f.expires.value) body.expires = f.expires.value;
    try { await send("/api/usage/topup", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }); f.reset(); }
    catch (err) { alert(err.message); }
  });
})();
