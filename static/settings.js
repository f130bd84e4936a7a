"use strict";
// The forms: the ISP meter reading and the settings (PUT /api/config), each error shown at its field.
$("adjust").addEventListener("submit", async (e) => {
  e.preventDefault();
  try { await api("/api/usage/adjust", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ used_gb: Number(e.target.used_gb.value), ...(chosenLine ? { line: chosenLine } : {}) }) }); e.target.reset(); refreshUsage(); }
  catch (err) { alert(err.message); }
});
const CFG_LIST = { alert_thresholds_percent: (v) => v.split(/[ ,]+/).filter(Boolean).map(Number) };
$("settings").addEventListener("toggle", async () => {
  if (!$("settings").open) return;
  const c = await api("/api/config"), f = $("config");
  for (const el of f.elements) {
    if (!el.name) continue;
    const v = c[el.name];
    if (el.type === "checkbox") el.checked = !!v;
    else if (el.name === "test_urls") el.value = v.join("\n");
    else el.value = Array.isArray(v) ? v.join(", ") : v == null ? "" : v;
  }
});
// each field's error beside it (aria-invalid, a line under the input); none left from the last try
function markFields(form, fields) {
  for (const el of form.querySelectorAll(".field-err")) el.remove();
  for (const el of form.elements) if (el.name) el.removeAttribute("aria-invalid");
  for (const [name, message] of Object.entries(fields || {})) {
    const input = form.elements[name];
    if (!input || !input.closest) continue;
    const note = document.createElement("span");
    note.className = "field-err err"; note.id = `err-${name}`; note.textContent = message;
    input.setAttribute("aria-invalid", "true"); input.setAttribute("aria-describedby", note.id);
    input.closest("label").append(note);
  }
}
$("config").addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = e.target, body = {};
  for (const el of f.elements) {
    if (!el.name) continue;
    if (el.type === "checkbox") body[el.name] = el.checked;
    else if (el.name === "test_urls") body.test_urls = el.value.split("\n").map((s) => s.trim()).filter(Boolean);
    else if (el.name === "interfaces") body.interfaces = el.value.trim() === "auto" ? "auto" : el.value.split(/[ ,]+/).filter(Boolean);
    else if (CFG_LIST[el.name]) body[el.name] = CFG_LIST[el.name](el.value);
    else if (el.name === "session_limit_gb") body[el.name] = el.value === "" ? null : Number(el.value);
    else if (el.name === "site") body.site = el.value.trim() || null;
    else body[el.name] = Number(el.value);
  }
  try {
    const r = await api("/api/config", { method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    $("config-msg").textContent = "Saved and applied." + (r.restart_required.length ? ` Restart the server for: ${r.restart_required.join(", ")}.` : "");
    markFields(f, null);
    refreshUsage();
  } catch (err) {
    markFields(f, err.body && err.body.fields);
    const fields = err.body && err.body.fields ? Object.entries(err.body.fields).map(([k, m]) => `${k}: ${m}`).join("; ") : "";
    $("config-msg").textContent = `Not saved: ${fields || err.message}`;
  }
});

