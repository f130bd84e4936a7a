"""Router counter quirks, on a fake router source and an injected clock (no network)."""
import asyncio

from datacap.usage import ledger as ledgermod
from datacap.usage import ledger_file
from datacap.usage.sources import settings
from datacap.usage.sources.feed import RouterFeed
from datacap.usage.sources.router import RouterSource
from test_collector import TZ
from datetime import datetime


class FakeRouter(RouterSource):
    kind = "fake"
    target = "192.0.2.1/wan"

    def __init__(self, clock):
        super().__init__({"interval_seconds": 5}, counts=True, clock=clock)
        self.answer = None  # (rx, tx, wide, uptime, link) or an exception

    def label(self):
        return "Router 192.0.2.1 (fake)"

    async def read(self):
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class World:
    def __init__(self):
        self.t = 0.0
        self.router = FakeRouter(lambda: self.t)
        self.feed = RouterFeed([], lambda: self.t)
        self.feed.sources = [self.router]
        self.feed.local_counts = False
        self.when = datetime(2026, 11, 10, 12, 0, tzinfo=TZ)
        self.ledger = ledgermod.Ledger(ledger_file.empty())
        self.ledger.open_lines(["Internet"], self.when)

    def poll(self, answer, dt=5.0):
        self.t += dt
        self.router.answer = answer
        asyncio.run(self.router._poll_once())
        self.feed.credit(self.ledger, self.when, lambda name: "Internet")

    def counted(self):
        return sum(self.ledger.data["totals"].get(self.router.name, [0, 0]))

    def reasons(self):
        return [e["reason"] for e in self.ledger.data["counter_events"]]


def test_a_negative_upnp_counter_is_read_as_unsigned_32_bit():
    w = World()
    w.poll((2_000_000_000, 0, False, None, None))
    w.poll((-2_000_000_000, 0, False, None, None))  # 2,294,967,296 sent as a signed int
    assert w.counted() == 294_967_296 and "signed" in w.reasons()


def test_a_counter_stuck_at_its_maximum_is_noted_once_and_not_counted():
    w = World()
    w.poll((1000, 1000, False, None, None))
    for _ in range(3):
        w.poll((4294967295, 1000, False, None, None))
    assert w.counted() == 0 and w.reasons() == ["stuck"]
    w.poll((2000, 1500, False, None, None))  # unstuck
    assert w.counted() == 1500


def test_a_counter_reading_zero_without_a_restart_is_not_a_reset():
    w = World()
    w.poll((5_000_000, 100, False, 1000, None))
    w.poll((0, 0, False, 1500, None))  # a glitch: sysUpTime went on
    w.poll((5_001_000, 200, False, 2000, None))
    assert w.counted() == 1100 and "zero" in w.reasons() and "reset" not in w.reasons()


def test_a_router_reboot_counts_its_new_counters_from_zero_never_as_a_wrap():
    w = World()
    w.poll((3_000_000_000, 0, False, 100_000, None))
    w.poll((1_000_000, 0, False, 500, None))  # sysUpTime went down: rebooted, not a 32-bit wrap
    assert w.counted() == 1_000_000 and "router_restart" in w.reasons() and "reset" in w.reasons()


def test_a_router_that_stops_answering_pauses_and_its_gap_is_filled():
    w = World()
    w.poll((1000, 0, True, 100, None))
    for _ in range(5):
        w.poll(TimeoutError("no answer"))
    assert w.router.status()["status"] == "failing" and w.counted() == 0
    w.poll((1000 + 50_000_000, 0, True, 10_000, None))
    assert w.counted() == 50_000_000 and w.router.status()["status"] == "ok"


def test_source_settings_name_the_bad_key_and_never_echo_secrets():
    assert settings.check("auto") is None
    assert settings.check([{"type": "snmp", "host": "192.168.1.1", "community": "s3cret", "interface": "wan"}]) is None
    bad = settings.check([{"type": "snmp", "host": "192.168.1.1", "community": "s3cret"}])
    assert "interface" in bad and "s3cret" not in bad
    assert "counts" in settings.check([{"type": "local", "counts": True}, {"type": "upnp", "counts": True}])
    assert "type" in settings.check([{"type": "starlink"}])
    assert "url" in settings.check([{"type": "upnp", "url": "ftp://x"}])
    assert settings.counting([{"type": "local"}, {"type": "snmp", "host": "h", "community": "c", "interface": "w"}]) == 1


def test_ssdp_counts_only_the_gateway_our_default_route_goes_through():
    from datacap.usage.sources.gateway import GatewaySearch

    def answers():  # a second router on the LAN answers too, and sorts first
        return ["http://10.237.196.9:5555/rootDesc.xml", "http://10.237.87.9:5555/rootDesc.xml"]

    def found(gateways):
        s = GatewaySearch(search=answers, gateways=gateways)
        s.search_once()
        return s
    assert found(lambda: {"10.237.87.9"}).found == "http://10.237.87.9:5555/rootDesc.xml"
    neither = found(lambda: {"10.237.1.1"})  # neither is our gateway: neither is counted
    assert neither.found is None and "10.237.196.9" in neither.status()["last_error"]["message"]
    assert found(set).found == "http://10.237.196.9:5555/rootDesc.xml"  # no IPv4 default route: any answer will do
