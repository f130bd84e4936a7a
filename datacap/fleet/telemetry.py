"""What this site's fleet telemetry costs its WAN: the bytes its Prometheus agent sends to the central.

The agent counts its own sending on its /metrics (loopback, `fleet_agent_url`): the compressed
payload, every send, every connection it opened and every one that got no answer. On the WAN each
of those costs more than its payload: headers, TLS records, TCP segments and their ACKs, handshakes.
Those costs are constants below, measured on a site's WAN veth (bench/fleet.py: Ethernet frames,
IPv4, TCP timestamps, HTTP/1.1 over TLS 1.3 with the central's self-signed P-256 certificate, as
deploy/fleet sets it up). A central with a public CA's certificate chain costs more per connection.

For the collector (datacap's own use):

    meter = TelemetryMeter(cfg["fleet_agent_url"])   # once; skip when the key is null
    own_bytes += meter.poll()                        # every minute or so: WAN bytes since the last poll

    python -m datacap.fleet.telemetry [--agent URL]  # what the agent has cost since it started, as JSON
"""
import argparse
import json
import sys
from dataclasses import asdict, dataclass

import requests
from prometheus_client.parser import text_string_to_metric_families

# Measured WAN bytes beyond the payload (bench/fleet.py measures them):
REQUEST_BYTES = 580  # one send on an open connection: request and response headers, TLS records, TCP packets
CONNECTION_BYTES = 2220  # one connection: TCP and TLS handshakes, the close 10 s later, ARP on an Ethernet WAN
FAILED_CONNECT_BYTES = 390  # one connection the central never answered: the SYN and its retransmissions

DIALER = "remote_storage_write_client"  # the agent's name for its remote-write connections
DEFAULT_AGENT_URL = "http://127.0.0.1:9090"
TIMEOUT_S = 2


@dataclass(frozen=True)
class AgentCounters:
    """The agent's own counters since it started (all remote writes summed), or what they grew by."""
    started_at: float  # the agent's process_start_time_seconds: a new value means its counters restarted
    payload_bytes: float  # compressed samples (and metadata) it sent
    sends: float  # send attempts, those that found no connection included
    connections: float  # connections it opened
    failed_connects: float  # connection attempts that failed

    def since(self, before):
        """What the counters grew by since an earlier reading of the same agent process."""
        return AgentCounters(self.started_at, *(getattr(self, k) - getattr(before, k) for k in _GROWING))

    def wan_bytes(self):
        """What these sends cost the WAN: payload plus the measured overheads. A send that found no
        connection sent no request (an unreachable central fails one to two connects per send, so
        the sends of a stretch with failed connects are not all requests: best read over a minute or
        so, as poll() does); one that failed on a connection the central stopped answering also
        costs retransmissions, which are not counted here."""
        requests_sent = max(0.0, self.sends - self.failed_connects)
        return (self.payload_bytes + requests_sent * REQUEST_BYTES + self.connections * CONNECTION_BYTES
                + self.failed_connects * FAILED_CONNECT_BYTES)


_GROWING = ("payload_bytes", "sends", "connections", "failed_connects")


def parse(text):
    """AgentCounters from the agent's /metrics text; ValueError when it is not a Prometheus agent's."""
    values = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            dialer = s.labels.get("dialer_name")
            if s.name in ("prometheus_remote_storage_bytes_total", "prometheus_remote_storage_metadata_bytes_total"):
                key = "payload_bytes"
            elif s.name == "prometheus_remote_storage_sent_batch_duration_seconds_count":
                key = "sends"
            elif s.name == "net_conntrack_dialer_conn_established_total" and dialer == DIALER:
                key = "connections"
            elif s.name == "net_conntrack_dialer_conn_failed_total" and dialer == DIALER:
                key = "failed_connects"
            elif s.name == "process_start_time_seconds":
                key = "started_at"
            else:
                continue
            values[key] = values.get(key, 0.0) + s.value
    if "started_at" not in values:
        raise ValueError("no process_start_time_seconds: not a Prometheus /metrics page")
    return AgentCounters(**{k: values.get(k, 0.0) for k in AgentCounters.__dataclass_fields__})


def counters(d):
    """AgentCounters from its dict (as kept, or as the command prints it); TypeError if it is not one."""
    return AgentCounters(**{k: d[k] for k in AgentCounters.__dataclass_fields__}) if isinstance(d, dict) else d


def wan_bytes_between(before, after):
    """The WAN bytes the agent's sending cost between two readings (AgentCounters or their dicts)."""
    before, after = counters(before), counters(after)
    if before.started_at != after.started_at:  # a new agent process: all it counted is new
        return round(after.wan_bytes())
    return round(after.since(before).wan_bytes())


def read(agent_url, get=requests.get):
    """The agent's counters now; None when it does not answer or is not a Prometheus agent."""
    try:
        r = get(agent_url.rstrip("/") + "/metrics", timeout=TIMEOUT_S)
        r.raise_for_status()
        return parse(r.text)
    except (requests.RequestException, ValueError):
        return None


class TelemetryMeter:
    """poll() -> the WAN bytes the agent's sending cost since the previous poll (0 at the first one);
    call it every minute or so.

    `last` is the previous reading as a dict: keep it with the ledger's checkpoint and pass it back
    after a restart, and nothing sent meanwhile is lost. An agent that restarted counts from zero;
    one that does not answer counts nothing until it does (its counters keep what it sent meanwhile).
    """

    def __init__(self, agent_url, last=None, read=read):
        self.agent_url, self.read = agent_url, read
        self.last = last

    def poll(self):
        now = self.read(self.agent_url)
        if now is None:
            return 0
        before, self.last = self.last, asdict(now)
        try:
            before = counters(before) if before is not None else None
        except (KeyError, TypeError):  # kept by another version: start again from this reading
            before = None
        return 0 if before is None else wan_bytes_between(before, now)


def main(argv=None):
    p = argparse.ArgumentParser(description="What the site's Prometheus agent has cost the WAN since it started.")
    p.add_argument("--agent", default=DEFAULT_AGENT_URL, help=f"the agent's base URL (default {DEFAULT_AGENT_URL})")
    args = p.parse_args(argv)
    c = read(args.agent)
    if c is None:
        print(f"telemetry: no Prometheus agent answers at {args.agent}", file=sys.stderr)
        return 1
    print(json.dumps({**asdict(c), "wan_bytes": round(c.wan_bytes())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
