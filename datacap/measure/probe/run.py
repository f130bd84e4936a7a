"""`downloader.py --probe`: one cap-sparing probe, recorded in probes.json (this process is its only writer).

The server's scheduler (supervise/probe_schedule.py) starts it when a probe may run; run by hand it
checks the budget and the cap's last 2 % itself, and records whether the link was quiet. SIGTERM
(a test is starting, the server is stopping) ends it early; its bytes are recorded all the same.
"""
import logging
import uuid
from datetime import datetime, timezone

from datacap import config as configmod
from datacap import process, store
from datacap.measure.probe import budget
from datacap.measure.probe import file as probe_file
from datacap.measure.probe import measure as probe
from datacap.measure.probe import streams as probe_streams
from datacap.usage import lines, live_file
from datacap.usage.current import CycleReader

log = logging.getLogger("probe")


def facts(cfg, data_dir, now):
    """What the probe records about the moment it starts: the cycle's count, the link's other traffic."""
    line = lines.for_tests(cfg)  # the one carrying the default route: what the probe's bytes cross
    summary = CycleReader(data_dir).summary(cfg, now, line)
    doc = probe_file.Reader(data_dir).read()
    rows = live_file.Reader(data_dir).interfaces(cfg["update_interval_seconds"])["interfaces"]
    background = probe_file.link_rate_bps(rows)
    allow, why = budget.allowance(cfg, summary, doc, now.timestamp())
    return {"summary": summary, "line": line.name if cfg["lines"] else None, "allow": allow, "why": why,
            "background_bps": background,
            "quiet": probe_file.quiet(background, probe_file.last_speed_bps(doc))}


def record(f, result, started):
    return {
        "id": uuid.uuid4().hex[:10], "time": started.astimezone(timezone.utc).isoformat(timespec="seconds"),
        "cycle_start": f["summary"]["start"], "cycle_used_bytes": int(f["summary"]["used_bytes"]), "line": f["line"],
        "quiet": f["quiet"],
        "background_mbps": None if f["background_bps"] is None else round(f["background_bps"] / 1e6, 3),
        **result.as_dict(),
    }


def run(cfg, data_dir, urls=None, max_bytes=None, measure=probe.measure):
    """Probe once; exit code 0 (also when there is nothing to spend), EXIT_BUSY if another probe runs."""
    lock = store.InstanceLock(data_dir, "probe")
    if not lock.acquire():
        log.error("another probe %s is running with %s", lock.holder_text(), data_dir)
        return configmod.EXIT_BUSY
    try:
        signals = process.SignalQueue()
        started = datetime.now().astimezone()
        f = facts(cfg, data_dir, started)
        limit = min(f["allow"], max_bytes) if max_bytes else f["allow"]
        limit -= probe_streams.READ_BYTES  # a read already under way may land past the limit: never the budget
        if limit <= 0:
            log.info("no probe: %s", f["why"])
            return 0
        stop = []

        def cancelled():
            stop.extend(s for s in signals.drain() if s in process.HANDLED[:2])
            return bool(stop) or process.parent_gone()
        result = measure(urls or cfg["test_urls"], limit, cancelled=cancelled)
        rec = record(f, result, started)
        probe_file.add(data_dir, rec, cfg["throttle_threshold_percent"])
        log.info("probe %s: %s Mbit/s, %d bytes in %.1f s (%s), %.3f GB into the cycle", rec["id"], rec["mbps"],
                 rec["bytes"], rec["seconds"], rec["stopped_by"], rec["cycle_used_bytes"] / 1e9)
        return 0
    finally:
        lock.release()

