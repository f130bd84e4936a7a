"use strict";
// History (finished tests from /api/history, each with its report) and the test's errors in words.
// dashboard.js polls /api/stats and sends each answer as a "stats" event; this file listens.
const HISTORY_SHOWN = 20;
let historyKey = null;  // the session and status the list was last fetched for

function renderErrors(s) {
  const errs = s.url_errors || [], list = $("url-errors");
  list.hidden = !errs.length || s.status === "idle";
  list.replaceChildren(...errs.map((e) => {
    const li = document.createElement("li");
    li.textContent = `${e.url}: ${e.what}` + (e.count > 1 ? ` (${e.count}×, last at ${fmtTime(e.time)})` : ` (${fmtTime(e.time)})`);
    return li;
  }));
  $("problem").hidden = !s.problem;
  $("problem").textContent = s.problem || "";
}

function historyItem(t) {
  const li = document.createElement("li"), when = document.createElement("span"), verdict = document.createElement("span");
  const a = document.createElement("a");
  li.className = t.throttled ? "throttled" : "";
  li.dataset.id = t.id;
  when.className = "when";
  when.textContent = `${fmtDate(t.start)} ${fmtTime(t.start)} · ${fmtGB(t.total_bytes)} · ${fmtDur(t.duration_s)}`;
  verdict.className = "verdict";
  verdict.textContent = t.verdict;
  a.href = `/report/${encodeURIComponent(t.id)}`;
  a.textContent = "Report";
  li.append(when, verdict, a);
  return li;
}
async function refreshHistory() {
  try {
    const h = await api(`/api/history?limit=${HISTORY_SHOWN}`);
    $("history-list").replaceChildren(...h.tests.map(historyItem));
    $("history-note").hidden = h.count > 0;
    $("history-delete").disabled = h.count === 0;
    if (h.count > h.tests.length) $("history-msg").textContent = `Newest ${h.tests.length} of ${h.count} kept tests; the CSV has them all.`;
    document.dispatchEvent(new CustomEvent("history", { detail: h }));
  } catch (e) { historyKey = null; /* tried again on the next poll */ }
}
document.addEventListener("stats", (e) => {
  const s = e.detail, key = `${s.session_id} ${s.status}`;
  if (key !== historyKey) { historyKey = key; refreshHistory(); }
});
$("history-delete").addEventListener("click", async () => {
  if (!confirm("Delete every kept test and its report? This cannot be undone.")) return;
  try {
    const r = await api("/api/history", { method: "DELETE", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ confirm: true }) });
    $("history-msg").textContent = r.message;
  } catch (err) { $("history-msg").textContent = `Not deleted: ${err.message}`; }
  refreshHistory();
});
