"use strict";
// The two answers at the top: the last test's verdict (or the running one's state) and the cap's outlook.
// Listens to the "stats", "history" and "usage" events the other scripts send after each fetch.
let newestTest = null, liveStats = null;

function renderTestAnswer() {
  const p = $("answer-test"), link = $("answer-report"), s = liveStats;
  if (s && (s.status === "running" || s.status === "paused")) {
    const ev = (s.throttle_events || []).at(-1);
    p.textContent = ev ? `Throttled during this test at ${fmtGB(ev.at_bytes)}: ${fmtMbps(ev.baseline_mbps)} → ${fmtMbps(ev.throttled_mbps)}.`
      : s.resting ? `Resting the line (${Math.round(s.resting.left_s)} s left): ${s.resting.why}.`
      : `Testing: ${fmtGB(s.total_bytes)} so far` + (s.baseline_speed ? ` at ${fmtMbps(s.baseline_speed)}` : "") + "; no throttle yet.";
  } else if (s && s.status === "connecting") {
    p.textContent = s.problem || "Connecting to the test servers…";
  } else if (newestTest) {
    p.textContent = `${newestTest.verdict} (${fmtDate(newestTest.start)} ${fmtTime(newestTest.start)})`;
  }
  p.classList.toggle("bad", !!(newestTest && newestTest.throttled && !(s && ["running", "paused", "connecting"].includes(s.status))));
  link.hidden = !newestTest;
  if (newestTest) link.href = `/report/${encodeURIComponent(newestTest.id)}`;
}
function capOutlook(c) {
  const outlook = c.expired ? `The prepaid bucket has expired; ${fmtGB(c.after_expiry_bytes)} used since.`
    : c.cap_reached ? `Cap reached; it resets ${fmtDate(c.resets_at)}.`
    : c.cap_date ? `At this pace you run out ${fmtDate(c.cap_date)}, before it resets ${fmtDate(c.resets_at)}.`
    : `At this pace you end the cycle at ${c.projected_percent}% — within the cap.`;
  return `${c.percent.toFixed(1)}% used (${fmtGB(c.used_bytes)} of ${fmtGB(c.cap_bytes)}). ${outlook}` + asOf(c);
}
function renderCapAnswer(all) {  // one answer per line
  const p = $("answer-cap"), lines = all.lines || [];
  if (lines.length > 1) {
    const ul = document.createElement("ul"); ul.className = "answer-lines";
    ul.replaceChildren(...lines.map((b) => {
      const li = document.createElement("li"); li.textContent = `${b.name}: ${capOutlook(b.cycle)}`;
      li.classList.toggle("bad", b.cycle.cap_reached || !!b.cycle.cap_date); return li;
    }));
    p.replaceChildren(ul);
  } else {
    const c = all.cycle;
    p.textContent = `${capOutlook(c)} Monitoring since ${fmtDate(c.monitoring_since)}.`;
  }
  p.classList.toggle("bad", lines.length <= 1 && (all.cycle.cap_reached || !!all.cycle.cap_date));
}
document.addEventListener("stats", (e) => { liveStats = e.detail; renderTestAnswer(); });
document.addEventListener("history", (e) => { newestTest = e.detail.tests[0] || null; renderTestAnswer(); });
document.addEventListener("lines", (e) => renderCapAnswer(e.detail));
