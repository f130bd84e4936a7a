"""Per-device counting on a gateway, scenario by scenario: a fake kernel (nftables counters, neighbours), fake clocks,
the real collector, devices.db and devices.json (issue 26)."""
import json
import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from datacap import config
from datacap.devices import counts, device_db, live
from datacap.usage.collector import Collector
from device_fakes import FakeKernel

TZ = ZoneInfo("Europe/Berlin")
A, B, C = "02:dc:00:00:00:0a", "02:dc:00:00:00:0b", "02:dc:00:00:00:0c"
MB = 10 ** 6


class Gateway:
    """A gateway: its WAN counters, its kernel's device counters, clocks; a collector made on demand."""

    def __init__(self, folder, start=datetime(2026, 11, 10, 12, 0, tzinfo=TZ)):
        self.folder = folder
        self.counters = {"wan": (0, 0), "lan": (0, 0)}
        self.kernel = FakeKernel()
        self.boot_id = "boot-1"
        self.t, self.wall = 100.0, start
        self.leases = folder / "dnsmasq.leases"
        self.leases.write_text(f"1800000000 {A} 10.0.0.10 laptop *\n1800000000 {B} 10.0.0.11 tv *\n")
        self.kernel.neigh = {"10.0.0.10": A, "10.0.0.11": B, "fd00::a": A}

    def collector(self, **devices):
        cfg = config.validate({"interfaces": ["wan"], "data_cap_gb": 100, "billing_day": 1, "sources": [{"type": "local"}],
                               "devices": {"lan": ["lan"], "leases": [str(self.leases)], **devices}})
        return Collector(cfg, self.folder, self.folder, read_counters=lambda: dict(self.counters),
                         boot_time=lambda: 1.7e9, boot_id=lambda: self.boot_id, clock=lambda: self.t,
                         now=lambda: self.wall, link_bps=lambda n: 1.25e8, default_routes=lambda: {"wan"},
                         devices={"kernel": self.kernel})

    def traffic(self, element, nbytes, wan=True):
        """A device's bytes: its element counts them, and so does the WAN counter (rx for down*, tx for up*)."""
        self.kernel.add(element, nbytes)
        if wan:
            rx, tx = self.counters["wan"]
            self.counters["wan"] = (rx + nbytes, tx) if element.startswith(("down", "own_in")) else (rx, tx + nbytes)

    def advance(self, seconds):
        self.t += seconds
        self.wall += timedelta(seconds=seconds)

    def tick(self, c, seconds=2):
        """Time passes, the collector ticks (2 s: devices.json is written at most every 2 s)."""
        self.advance(seconds)
        c.tick()


def started(folder, **devices):
    """A gateway and its collector, started."""
    g = Gateway(folder)
    c = g.collector(**devices)
    c.start()
    return g, c


def live_doc(folder):
    return live.expand(json.loads((folder / live.NAME).read_text()))


def device(folder, mac):
    return next(d for d in live_doc(folder)["devices"] if d["mac"] == mac)


def stored(folder):
    """{mac: bytes} in devices.db, all days and lines."""
    out = {}
    for _, mac, _, rx, tx in device_db.Reader(folder).days("0000"):
        out[mac] = out.get(mac, 0) + rx + tx
    return out


def test_each_device_counts_its_addresses_both_ways_and_a_new_address_stays_one_device(tmp_path):
    g, c = started(tmp_path)
    g.traffic("down4 10.0.0.10 wan", 30 * MB)
    g.traffic("up4 10.0.0.10 wan", 2 * MB)
    g.traffic("down6 fd00::a wan", 5 * MB)
    g.traffic("down4 10.0.0.11 wan", 7 * MB)
    g.tick(c)
    a = device(tmp_path, A)
    assert (a["name"], a["rx_bytes"], a["tx_bytes"], a["cycle_bytes"], a["today_bytes"]) == \
        ("laptop", 35 * MB, 2 * MB, 37 * MB, 37 * MB)
    assert set(a["addresses"]) == {"10.0.0.10", "fd00::a"} and device(tmp_path, B)["cycle_bytes"] == 7 * MB
    # the laptop's lease moves it to a new address (and its old one to nobody): still the laptop
    g.leases.write_text(f"1800000000 {A} 10.0.0.20 laptop *\n1800000000 {B} 10.0.0.11 tv *\n")
    g.kernel.neigh["10.0.0.20"] = A
    g.traffic("down4 10.0.0.20 wan", 3 * MB)
    g.tick(c)
    assert device(tmp_path, A)["cycle_bytes"] == 40 * MB
    assert [d["mac"] for d in live_doc(tmp_path)["devices"]] == [A, B]  # most used first


def test_lan_to_lan_and_unknown_interfaces_count_for_no_line_but_the_device(tmp_path):
    """Traffic that leaves by an interface no line counts (a VPN tunnel) is the device's, in no line's sum."""
    g, c = started(tmp_path)
    g.traffic("up4 10.0.0.10 wg0", 4 * MB, wan=False)
    g.traffic("up4 10.0.0.10 wan", 1 * MB)
    g.tick(c)
    a = device(tmp_path, A)
    assert a["cycle_bytes"] == 5 * MB and a["lines"] == {"Internet": MB, "": 4 * MB}
    assert live_doc(tmp_path)["lines"]["Internet"]["devices_bytes"] == MB


def test_devices_and_the_gateway_own_traffic_add_up_to_the_line(tmp_path):
    g, c = started(tmp_path)
    g.traffic("down4 10.0.0.10 wan", 50 * MB)
    g.traffic("up4 10.0.0.11 wan", 9 * MB)
    g.traffic("own_in wan", 3 * MB)  # the gateway's own updates
    g.traffic("own_out wan", 1 * MB)
    g.tick(c)
    line = live_doc(tmp_path)["lines"]["Internet"]
    assert line == {**line, "line_bytes": 63 * MB, "devices_bytes": 59 * MB, "gateway_bytes": 4 * MB}
    assert live.GATEWAY not in {d["mac"] for d in live_doc(tmp_path)["devices"]}


def test_a_restart_without_reboot_continues_exactly_from_the_last_flush(tmp_path):
    g, c = started(tmp_path)
    g.traffic("down4 10.0.0.10 wan", 10 * MB)
    g.tick(c)
    c.flush(g.t, g.wall)
    g.traffic("down4 10.0.0.10 wan", 6 * MB)
    g.traffic("down4 10.0.0.11 wan", 2 * MB)  # a new element after the flush: all of it is new
    g.tick(c)  # counted in memory, then killed before the next flush
    g.traffic("down4 10.0.0.10 wan", 1 * MB)
    g.advance(5)
    c2 = g.collector()
    c2.start()
    assert device(tmp_path, A)["cycle_bytes"] == 17 * MB and device(tmp_path, B)["cycle_bytes"] == 2 * MB
    assert stored(tmp_path) == {A: 17 * MB, B: 2 * MB}


def test_a_reboot_counts_the_new_counters_from_zero(tmp_path):
    g, c = started(tmp_path)
    g.traffic("down4 10.0.0.10 wan", 10 * MB)
    g.tick(c)
    c.devices.stop(g.wall, c.ledger, c.summaries(g.wall))  # datacap is stopped before the reboot: it flushes
    g.kernel = FakeKernel()  # a new boot: no table, no counters
    g.kernel.neigh = {"10.0.0.10": A}
    g.boot_id = "boot-2"
    g.counters = {"wan": (0, 0), "lan": (0, 0)}
    c2 = g.collector()
    c2.start()
    g.traffic("down4 10.0.0.10 wan", 3 * MB)
    g.tick(c2)
    assert device(tmp_path, A)["cycle_bytes"] == 13 * MB


def test_our_table_flushed_by_a_firewall_reload_is_made_again_and_counts_from_zero(tmp_path):
    g, c = started(tmp_path, budgets={B: {"gb": 100}})
    g.traffic("down4 10.0.0.10 wan", 10 * MB)
    g.tick(c)
    handle = g.kernel.handle
    g.kernel.flush_ruleset()
    g.tick(c)
    assert g.kernel.handle not in (None, handle) and len(g.kernel.installs) == 2
    g.traffic("down4 10.0.0.10 wan", 4 * MB)  # far below the 10 MB the old element had read
    g.tick(c)
    assert device(tmp_path, A)["cycle_bytes"] == 14 * MB


def test_an_element_that_expired_and_came_back_counts_from_zero(tmp_path):
    g, c = started(tmp_path)
    g.traffic("down6 fd00::a wan", 8 * MB)
    g.tick(c)
    del g.kernel.elements["down6 fd00::a wan"]  # a week without traffic
    g.tick(c)
    g.traffic("down6 fd00::a wan", 2 * MB)
    g.tick(c)
    assert device(tmp_path, A)["cycle_bytes"] == 10 * MB


def test_bytes_go_to_their_day_and_the_cycle_starts_again_on_the_billing_day(tmp_path):
    g = Gateway(tmp_path, start=datetime(2026, 11, 30, 23, 59, 57, tzinfo=TZ))
    c = g.collector()
    c.start()
    g.traffic("down4 10.0.0.10 wan", 10 * MB)
    g.tick(c)
    g.advance(2)  # 2026-12-01 00:00:01: a new day and a new cycle
    g.traffic("down4 10.0.0.10 wan", 3 * MB)
    c.tick()
    a = device(tmp_path, A)
    assert (a["today_bytes"], a["cycle_bytes"]) == (3 * MB, 3 * MB)
    c.flush(g.t, g.wall)
    days = {(d, m): rx + tx for d, m, _, rx, tx in device_db.Reader(tmp_path).days("2026-11-01")}
    assert days == {("2026-11-30", A): 10 * MB, ("2026-12-01", A): 3 * MB}


def test_a_dhcp_address_handed_to_another_device_counts_for_the_new_one(tmp_path):
    g, c = started(tmp_path)
    g.traffic("down4 10.0.0.10 wan", 10 * MB)
    g.tick(c)
    g.leases.write_text(f"1800000000 {C} 10.0.0.10 phone *\n")  # the laptop left; the phone got its address
    g.kernel.neigh["10.0.0.10"] = C
    g.traffic("down4 10.0.0.10 wan", 4 * MB)
    g.tick(c)
    assert device(tmp_path, A)["cycle_bytes"] == 10 * MB
    assert (device(tmp_path, C)["cycle_bytes"], device(tmp_path, C)["name"]) == (4 * MB, "phone")


def test_two_wans_each_device_counts_toward_the_line_it_left_by(tmp_path):
    g = Gateway(tmp_path)
    g.counters = {"wan1": (0, 0), "wan2": (0, 0), "lan": (0, 0)}
    cfg = config.validate({"lines": [{"name": "Fibre", "source": {"type": "local", "interfaces": ["wan1"]}},
                                     {"name": "LTE", "source": {"type": "local", "interfaces": ["wan2"]}, "billing_day": 15}],
                           "devices": {"lan": ["lan"], "leases": [str(g.leases)]}})
    c = Collector(cfg, tmp_path, tmp_path, read_counters=lambda: dict(g.counters), boot_time=lambda: 1.7e9,
                  boot_id=lambda: "b", clock=lambda: g.t, now=lambda: g.wall, link_bps=lambda n: 1.25e8,
                  default_routes=lambda: {"wan1"}, devices={"kernel": g.kernel})
    c.start()
    for element, n, wan in (("down4 10.0.0.10 wan1", 20 * MB, "wan1"), ("down4 10.0.0.10 wan2", 5 * MB, "wan2"),
                            ("up4 10.0.0.11 wan2", 2 * MB, "wan2"), ("own_out wan1", MB, "wan1")):
        g.kernel.add(element, n)
        rx, tx = g.counters[wan]
        g.counters[wan] = (rx + n, tx) if element.startswith("down") else (rx, tx + n)
    g.tick(c)
    doc = live_doc(tmp_path)
    assert device(tmp_path, A)["lines"] == {"Fibre": 20 * MB, "LTE": 5 * MB} and device(tmp_path, A)["line"] == "Fibre"
    assert {k: (v["line_bytes"], v["devices_bytes"], v["gateway_bytes"]) for k, v in doc["lines"].items()} == \
        {"Fibre": (21 * MB, 20 * MB, MB), "LTE": (7 * MB, 7 * MB, 0)}
    assert doc["lines"]["LTE"]["start"] == "2026-10-15"


def test_kill_at_any_point_loses_and_doubles_no_byte(tmp_path):
    """Random traffic, flushes and kills (a collector dropped without a flush, mid-way or not): at the end the
    devices' figures are exactly the kernel's counters."""
    rnd = random.Random(26)
    g, c = started(tmp_path)
    elements = ["down4 10.0.0.10 wan", "up4 10.0.0.10 wan", "down6 fd00::a wan", "down4 10.0.0.11 wan"]
    for step in range(300):
        g.traffic(rnd.choice(elements), rnd.randrange(1, 5 * MB))
        g.advance(rnd.choice((0.5, 1, 1, 3)))
        action = rnd.random()
        if action < 0.1:
            c = g.collector()  # killed: nothing since the last flush was written; a new one starts
            c.start()
        elif action < 0.3:
            c.flush(g.t, g.wall)
        else:
            c.tick()
    c.tick()
    c.devices.flush(g.wall, force=True)
    want = {A: sum(v for e, v in g.kernel.elements.items() if "10.0.0.10" in e or "fd00::a" in e),
            B: g.kernel.elements.get("down4 10.0.0.11 wan", 0)}
    assert stored(tmp_path) == want
    assert device(tmp_path, A)["cycle_bytes"] == want[A]


def test_devices_db_is_flushed_every_five_minutes_on_a_new_day_and_on_exit_not_every_minute(tmp_path):
    g, c = started(tmp_path)
    flushes = lambda: int(device_db.DeviceDb(tmp_path / device_db.NAME).meta()["flushes"])  # noqa: E731
    first = flushes()
    for _ in range(4):  # the ledger flushes every minute
        g.traffic("down4 10.0.0.10 wan", MB)
        g.tick(c, 60)
    assert flushes() == first
    g.tick(c, 60)
    assert flushes() == first + 1
    c.devices.stop(g.wall, c.ledger, c.summaries(g.wall))
    assert flushes() == first + 2 and stored(tmp_path) == {A: 4 * MB}


def test_counts_credit_only_growth_and_void_readings_of_other_counters():
    got = counts.Counts()
    owner = lambda e: (("m", "L"), 0)  # noqa: E731  (the device and line; 0: rx)
    assert got.read("kernel", {"x": 100}, ["b", 1], owner, "2026-01-01") == {("m", "L"): [100, 0]}
    assert got.read("kernel", {"x": 100}, ["b", 1], owner, "2026-01-01") == {}
    assert got.read("kernel", {"x": 40}, ["b", 1], owner, "2026-01-01") == {("m", "L"): [40, 0]}  # started again
    assert got.read("kernel", {"x": 70}, ["b", 2], owner, "2026-01-01") == {("m", "L"): [70, 0]}  # another table
    assert got.read("unifi", {"unifi rx q": 5}, ["u"], owner, "2026-01-01") == {("m", "L"): [5, 0]}
    assert got.read("kernel", {}, ["b", 2], owner, "2026-01-01") == {} and "unifi rx q" in got.checkpoint
    assert got.days == {("2026-01-01", "m", "L"): [215, 0]}


def test_a_kernel_that_refuses_our_table_is_shown_and_the_line_is_counted_as_ever(tmp_path):
    from datacap.devices import nft_table

    class Refusing(FakeKernel):
        def install(self, lan):
            raise nft_table.NftError("Operation not permitted")

        def read(self):
            raise PermissionError(1, "Operation not permitted")
    g = Gateway(tmp_path)
    g.kernel = Refusing()
    c = g.collector()
    c.start()
    g.traffic("down4 10.0.0.10 wan", 5 * MB)
    g.tick(c)
    assert live_doc(tmp_path)["error"] == "cannot read the device counters: it needs root (CAP_NET_ADMIN) on the gateway"
    assert sum(c.ledger.data["totals"]["wan"]) == 5 * MB
