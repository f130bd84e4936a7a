"""GET /metrics: a prometheus-client custom collector that reads the JSON files at scrape time."""
from datetime import date, datetime

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import CollectorRegistry

from datacap.measure.session_file import Status
from datacap.supervise.states import UP
from datacap.usage import cycles
from datacap.web import api_probes, devices_view
from datacap.web.views import views

bp = Blueprint("metrics", __name__)
MBIT_TO_BYTES = 1e6 / 8


def _gauge(name, doc, value, labels=None):
    g = GaugeMetricFamily(name, doc, labels=list(labels) if labels else None)
    if labels:
        for values, v in value:
            g.add_metric(values, v)
    else:
        g.add_metric([], value)
    return g


class DatacapCollector:
    """Everything a scrape needs, from the same views the API uses."""

    def __init__(self, views):
        self.views = views

    def collect(self):
        v = self.views
        s = v.stats(since=float("inf"))  # no points: the scrape stays small
        yield _gauge("datacap_downloader_status", "1 for the downloader's current status",
                     [([st.value], 1.0 if s["status"] == st.value else 0.0) for st in Status], ["status"])
        yield _gauge("datacap_download_speed_bytes_per_second", "Current download speed (5-s window)",
                     s["speed_mbps"] * MBIT_TO_BYTES)
        yield _gauge("datacap_download_baseline_bytes_per_second", "Baseline speed of this session (0 before known)",
                     (s["baseline_speed"] or 0) * MBIT_TO_BYTES)
        yield _gauge("datacap_download_session_bytes", "Bytes downloaded in this session", s["total_bytes"] or 0)
        yield _gauge("datacap_throttle_active", "1 while a throttle event is open", 1.0 if s["throttle_detected"] else 0.0)
        yield _gauge("datacap_throttle_events", "Throttle events in this session", len(s["throttle_events"]))

        yield from _interfaces(v.interfaces()["interfaces"])

        u = v.usage_view()
        counted = CounterMetricFamily("datacap_counted", "Bytes the ledger has counted, all time",
                                      labels=["interface", "direction"], unit="bytes")
        for name, t in u["interfaces"].items():
            counted.add_metric([name, "receive"], t["rx_bytes"])
            counted.add_metric([name, "transmit"], t["tx_bytes"])
        yield counted
        yield from _sources(u["sources"])
        yield from _cycles(u["lines"], bool(v.cfg.get("lines")))
        yield from _devices(devices_view.devices(v))
        procs = v.system()["processes"]
        restarts = CounterMetricFamily("datacap_process_restarts", "Restarts of a child process", labels=["process"])
        up = GaugeMetricFamily("datacap_process_up", "1 when the process is running", labels=["process"])
        for name, p in procs.items():
            restarts.add_metric([name], p.get("restarts", 0))
            up.add_metric([name], 1.0 if p["state"] in UP else 0.0)
        yield restarts
        yield up
        for name, doc, value in api_probes.gauges(v):
            yield _gauge(name, doc, value)
        yield from _last_test(v.history.tests())


def _last_test(tests):
    """The newest finished test's verdict (history.json): it keeps its value after the test; none before a test."""
    if not tests:
        return
    t = tests[0]
    first = next((e for e in t["events"] if e["kind"] == "throttle"), {})
    yield _gauge("datacap_last_test_throttled", "1 when the last finished test found a throttle, else 0",
                 1.0 if t["throttled"] else 0.0)
    yield _gauge("datacap_last_test_end_timestamp_seconds", "When the last finished test ended",
                 datetime.fromisoformat(t["end"]).timestamp() if t["end"] else 0.0)
    yield _gauge("datacap_last_test_throttle_at_bytes",
                 "Bytes into the last test where its first throttle began (0 if none)", first.get("at_bytes") or 0)
    yield _gauge("datacap_last_test_throttle_from_bytes_per_second", "The speed before that throttle (0 if none)",
                 (first.get("baseline_mbps") or 0) * MBIT_TO_BYTES)
    yield _gauge("datacap_last_test_throttle_to_bytes_per_second", "The speed during that throttle (0 if none)",
                 (first.get("throttled_mbps") or 0) * MBIT_TO_BYTES)


CYCLE_GAUGES = (  # name, help, the figure from a line's cycle
    ("datacap_cycle_used_bytes", "Bytes used this billing cycle (with ISP adjustment)", lambda c: c["used_bytes"]),
    ("datacap_cap_bytes", "The data cap", lambda c: c["cap_bytes"]),
    ("datacap_cycle_projected_bytes", "Projected use at the end of the cycle", lambda c: c["projected_bytes"]),
    ("datacap_cycle_own_bytes", "Bytes of datacap's own tests, probes and telemetry this cycle (part of the used bytes)",
     lambda c: c["own_bytes"]),
    ("datacap_cycle_start_timestamp_seconds", "Start of the billing cycle",
     lambda c: cycles.midnight(date.fromisoformat(c["start"]), datetime.now().astimezone().tzinfo)),
    ("datacap_cycle_end_timestamp_seconds", "When the billing cycle resets",
     lambda c: datetime.fromisoformat(c["resets_at"]).timestamp()),
)


def _cycles(blocks, labelled):
    """Each line's cycle figures; with `lines` configured every series has a `line` label, without them the one
    line's series have none (as before lines existed)."""
    for name, doc, figure in CYCLE_GAUGES:
        if labelled:
            yield _gauge(name, doc, [([b["name"]], figure(b["cycle"])) for b in blocks], ["line"])
        else:
            yield _gauge(name, doc, figure(blocks[0]["cycle"]))


DEVICES_LABELLED = 20  # a device label per series for the top devices only: the label set stays bounded


def _devices(doc):
    """The top devices this cycle (by MAC, with their name), everyone else summed; each line's devices, the gateway's
    own traffic and the unattributed rest."""
    if not doc["enabled"]:
        return
    rows = doc["devices"]
    top, rest = rows[:DEVICES_LABELLED], rows[DEVICES_LABELLED:]
    labels = ["mac", "name", "line"]
    for name, doc_text, key in (("datacap_device_cycle_bytes", "Bytes a LAN device used this cycle (top 20)", "cycle_bytes"),
                                ("datacap_device_today_bytes", "Bytes a LAN device used today (top 20)", "today_bytes")):
        yield _gauge(name, doc_text, [([d["mac"], d["name"] or "", d["line"] or ""], d[key]) for d in top], labels)
    yield _gauge("datacap_device_budget_bytes", "A LAN device's budget per day or cycle (top 20 with one)",
                 [([d["mac"], d["name"] or "", d["budget_per"]], d["budget_bytes"]) for d in top if d["budget_bytes"]],
                 ["mac", "name", "per"])
    yield _gauge("datacap_device_paused", "1 while a LAN device is paused (top 20)",
                 [([d["mac"], d["name"] or ""], 1.0 if d["paused"] else 0.0) for d in top], ["mac", "name"])
    yield _gauge("datacap_devices_other_cycle_bytes", "Bytes this cycle of the devices after the top 20",
                 sum(d["cycle_bytes"] for d in rest))
    yield _gauge("datacap_devices_paused", "LAN devices paused now", sum(1 for d in rows if d["paused"]))
    for name, doc_text, key in (
            ("datacap_line_devices_cycle_bytes", "Bytes this cycle of the LAN devices, per line", "devices_bytes"),
            ("datacap_line_gateway_cycle_bytes", "Bytes this cycle of the gateway's own traffic, per line", "gateway_bytes"),
            ("datacap_line_unattributed_cycle_bytes", "Bytes this cycle the line counted and no device did", "unattributed_bytes")):
        yield _gauge(name, doc_text, [([x["name"]], x[key]) for x in doc["lines"] if x[key] is not None], ["line"])


def _interfaces(rows):
    """Every interface's kernel counters and live rates."""
    for direction, key in (("receive", "rx"), ("transmit", "tx")):
        c = CounterMetricFamily(f"datacap_interface_{direction}_bytes", f"Kernel {direction} byte counter",
                                labels=["interface", "counted"])
        g = GaugeMetricFamily(f"datacap_interface_{direction}_bytes_per_second", f"Live {direction} rate",
                              labels=["interface", "counted"])
        for r in rows:
            lab = [r["name"], "true" if r["counted"] else "false"]
            c.add_metric(lab, r[f"{key}_bytes"])
            if r[f"{key}_bps"] is not None:
                g.add_metric(lab, r[f"{key}_bps"] / 8)
        yield c
        yield g


def _sources(sources):
    """Per counter source: its bytes (this computer's interfaces summed), whether it counts, whether it answers."""
    total = CounterMetricFamily("datacap_source", "Bytes a counter source has counted, all time",
                                labels=["source", "type", "direction", "counted"], unit="bytes")
    up = GaugeMetricFamily("datacap_source_up", "1 while a counter source answers", labels=["source", "type"])
    for src in sources:
        lab = [src["name"], src["type"]]
        total.add_metric(lab + ["receive", str(bool(src["counted"])).lower()], src["rx_bytes"])
        total.add_metric(lab + ["transmit", str(bool(src["counted"])).lower()], src["tx_bytes"])
        up.add_metric(lab, 1.0 if src["status"] == "ok" and not src["stale"] else 0.0)
    yield total
    yield up


@bp.get("/metrics")
def metrics():
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatacapCollector(views()))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
