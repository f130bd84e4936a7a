"""datacap.fleet.telemetry: the agent's counters read from its /metrics text, and what the meter counts between polls."""
import http.server
import json
import threading
from datetime import datetime, timedelta
import subprocess
import sys

import pytest
import requests

from datacap.fleet import telemetry
from datacap.fleet.telemetry import AgentCounters, TelemetryMeter
from harness import ROOT

URL = 'url="https://central.example.net:9090/api/v1/write"'


def page(payload=0, sends=0, connections=0, refused=0, timeouts=0, started=1.7e9, metadata=0):
    """An agent's /metrics, trimmed to the families the reader looks at and a few it must ignore."""
    return f"""# HELP prometheus_remote_storage_bytes_total The total number of bytes of data sent.
# TYPE prometheus_remote_storage_bytes_total counter
prometheus_remote_storage_bytes_total{{remote_name="central",{URL}}} {payload}
# HELP prometheus_remote_storage_metadata_bytes_total The total number of bytes of metadata sent.
# TYPE prometheus_remote_storage_metadata_bytes_total counter
prometheus_remote_storage_metadata_bytes_total{{remote_name="central",{URL}}} {metadata}
# HELP prometheus_remote_storage_sent_batch_duration_seconds Duration of send calls to the remote storage.
# TYPE prometheus_remote_storage_sent_batch_duration_seconds histogram
prometheus_remote_storage_sent_batch_duration_seconds_bucket{{remote_name="central",{URL},le="1"}} {sends}
prometheus_remote_storage_sent_batch_duration_seconds_bucket{{remote_name="central",{URL},le="+Inf"}} {sends}
prometheus_remote_storage_sent_batch_duration_seconds_sum{{remote_name="central",{URL}}} 0.5
prometheus_remote_storage_sent_batch_duration_seconds_count{{remote_name="central",{URL}}} {sends}
# HELP net_conntrack_dialer_conn_established_total Total number of connections successfully established.
# TYPE net_conntrack_dialer_conn_established_total counter
net_conntrack_dialer_conn_established_total{{dialer_name="remote_storage_write_client"}} {connections}
net_conntrack_dialer_conn_established_total{{dialer_name="datacap"}} 99
# HELP net_conntrack_dialer_conn_failed_total Total number of connections failed to dial by the dialer.
# TYPE net_conntrack_dialer_conn_failed_total counter
net_conntrack_dialer_conn_failed_total{{dialer_name="remote_storage_write_client",reason="refused"}} {refused}
net_conntrack_dialer_conn_failed_total{{dialer_name="remote_storage_write_client",reason="timeout"}} {timeouts}
net_conntrack_dialer_conn_failed_total{{dialer_name="datacap",reason="timeout"}} 7
# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.
# TYPE process_start_time_seconds gauge
process_start_time_seconds {started}
# HELP prometheus_remote_storage_samples_total Total number of samples sent to remote storage.
# TYPE prometheus_remote_storage_samples_total counter
prometheus_remote_storage_samples_total{{remote_name="central",{URL}}} 12345
"""


def test_parse_reads_only_the_remote_write_counters():
    c = telemetry.parse(page(payload=4000, sends=10, connections=3, refused=1, timeouts=2, metadata=50))
    assert c == AgentCounters(started_at=1.7e9, payload_bytes=4050, sends=10, connections=3, failed_connects=3)
    assert c.wan_bytes() == (4050 + (10 - 3) * telemetry.REQUEST_BYTES + 3 * telemetry.CONNECTION_BYTES
                             + 3 * telemetry.FAILED_CONNECT_BYTES)


def test_sends_that_found_no_connection_cost_only_their_connect_attempts():
    m = TelemetryMeter("u", read=reader([page(payload=9000, sends=20, connections=20),
                                          page(payload=9000, sends=29, connections=20, timeouts=18)]))
    m.poll()
    assert m.poll() == 18 * telemetry.FAILED_CONNECT_BYTES  # the central unreachable: every attempt timed out


def test_parse_refuses_a_page_that_is_not_a_prometheus_process():
    with pytest.raises(ValueError):
        telemetry.parse("# TYPE datacap_cap_bytes gauge\ndatacap_cap_bytes 1e12\n")


def reader(pages):
    """A read() that serves the given pages in turn (None: the agent does not answer)."""
    it = iter(pages)
    return lambda url: None if (p := next(it)) is None else telemetry.parse(p)


def test_the_first_poll_is_the_baseline_and_later_polls_count_what_was_sent_since():
    m = TelemetryMeter("http://127.0.0.1:9090", read=reader([page(payload=9000, sends=20, connections=20),
                                                              page(payload=9400, sends=21, connections=21)]))
    assert m.poll() == 0  # what the agent sent before datacap looked is not counted again
    one_send = 400 + telemetry.REQUEST_BYTES + telemetry.CONNECTION_BYTES
    assert m.poll() == one_send


def test_an_agent_that_restarted_counts_everything_it_counted_since():
    m = TelemetryMeter("u", read=reader([page(payload=9000, sends=20, connections=20),
                                          page(payload=300, sends=1, connections=1, started=1.8e9)]))
    m.poll()
    assert m.poll() == 300 + telemetry.REQUEST_BYTES + telemetry.CONNECTION_BYTES


def test_a_silent_agent_counts_nothing_and_loses_nothing_once_it_answers():
    m = TelemetryMeter("u", read=reader([page(payload=100, sends=1, connections=1), None,
                                          page(payload=900, sends=3, connections=3)]))
    m.poll()
    assert m.poll() == 0
    assert m.poll() == 800 + 2 * (telemetry.REQUEST_BYTES + telemetry.CONNECTION_BYTES)


def test_the_last_reading_carried_across_a_restart_of_datacap_counts_the_sends_in_between():
    first = TelemetryMeter("u", read=reader([page(payload=100, sends=1, connections=1)]))
    first.poll()
    kept = json.loads(json.dumps(first.last))  # as the ledger would keep it
    again = TelemetryMeter("u", last=kept, read=reader([page(payload=500, sends=2, connections=2)]))
    assert again.poll() == 400 + telemetry.REQUEST_BYTES + telemetry.CONNECTION_BYTES


def test_a_last_reading_it_does_not_understand_is_a_new_baseline():
    m = TelemetryMeter("u", last={"sent": 5}, read=reader([page(payload=500, sends=2, connections=2)]))
    assert m.poll() == 0 and m.last["payload_bytes"] == 500


def test_read_is_none_when_nothing_answers_or_something_else_does():
    def refused(url, timeout):
        raise requests.ConnectionError("refused")

    class NotPrometheus:
        text, raise_for_status = "<html>hello</html>", staticmethod(lambda: None)
    assert telemetry.read("http://127.0.0.1:9", get=refused) is None
    assert telemetry.read("http://127.0.0.1:9", get=lambda url, timeout: NotPrometheus()) is None


def test_the_command_says_when_no_agent_answers():
    r = subprocess.run([sys.executable, "-m", "datacap.fleet.telemetry", "--agent", "http://127.0.0.1:9"],
                       capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert r.returncode == 1 and "no Prometheus agent answers at http://127.0.0.1:9" in r.stderr


class AgentPage:
    """A local HTTP server answering /metrics with an agent's page (the real agent runs in test_fleet.py)."""

    def __init__(self):
        self.text = page()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = outer.text.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_the_collector_books_the_agents_sending_as_own_use_once_across_a_restart(tmp_path):
    from test_collector import Machine
    agent = AgentPage()
    try:
        now = datetime.now().astimezone()  # the server's /api/usage reads the real clock
        m = Machine(start=max(now - timedelta(seconds=90), now.replace(hour=0, minute=0, second=1)))
        agent.text = page(payload=50_000, sends=100, connections=100)  # sent before datacap looked: not ours to book
        c = m.collector(tmp_path, fleet_agent_url=agent.url)
        c.start()
        agent.text = page(payload=54_000, sends=110, connections=110)
        m.advance(60, rx=10**6)
        c.tick()
        c.flush(m.t, m.wall)
        ten_sends = 4000 + 10 * (telemetry.REQUEST_BYTES + telemetry.CONNECTION_BYTES)
        today = m.wall.date().isoformat()
        assert c.ledger.data["lines"]["Internet"]["own"] == {today: {"telemetry": ten_sends}}
        agent.text = page(payload=58_000, sends=120, connections=120)  # sent while datacap is down
        m.advance(30)
        again = m.collector(tmp_path, fleet_agent_url=agent.url)  # a restart from the ledger on disk
        again.start()
        assert again.ledger.data["lines"]["Internet"]["own"] == {today: {"telemetry": 2 * ten_sends}}
        again.flush(m.t, m.wall)  # nothing new: nothing booked twice
        assert again.ledger.data["lines"]["Internet"]["own"][today]["telemetry"] == 2 * ten_sends
        from datacap.web import create_app
        client = create_app({"interfaces": ["eth0"], "sources": [{"type": "local"}]}, tmp_path,
                            tmp_path / "c.json").test_client()
        cycle = client.get("/api/usage").get_json()["cycle"]
        assert cycle["own_bytes"] == 2 * ten_sends and cycle["used_bytes"] == 10**6  # shown, never added
    finally:
        agent.close()
