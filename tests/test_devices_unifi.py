"""UniFi clients counted as devices, against a recorded-response UniFi controller (tests/unifi_recorded.py: a
controller cannot run here): login on a UniFi OS console and on a classic controller, an API key, a session that
expires, a client's new connection, a wired client, names; the real collector with fake clocks."""
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from datacap import config
from datacap.devices import unifi
from datacap.usage.collector import Collector
from test_devices_counting import device, live_doc
from unifi_recorded import RecordedController

TZ = ZoneInfo("Europe/Berlin")
LAPTOP, NAS, PHONE, PI = "a4:83:e7:11:22:33", "00:11:32:aa:bb:cc", "3c:22:fb:44:55:66", "d8:3a:dd:77:88:99"


@pytest.fixture
def controller():
    made = []

    def make(**kw):
        made.append(RecordedController(**kw))
        return made[-1]
    yield make
    for c in made:
        c.close()


class ManualPoller(unifi.Poller):
    """The real poller, polled by the test instead of its thread."""

    def start(self):
        return self


def collector(tmp_path, unifi_settings):
    state = {"t": 100.0, "wall": datetime(2026, 11, 10, 12, 0, tzinfo=TZ)}
    cfg = config.validate({"interfaces": ["eth0"], "sources": [{"type": "local"}], "devices": {"unifi": unifi_settings}})
    pollers = []

    def factory(settings):
        pollers.append(ManualPoller(settings, clock=lambda: state["t"]))
        return pollers[-1]
    c = Collector(cfg, tmp_path, tmp_path, read_counters=lambda: {"eth0": (0, 0)}, boot_time=lambda: 1.7e9,
                  boot_id=lambda: "b", clock=lambda: state["t"], now=lambda: state["wall"], link_bps=lambda n: 1.25e8,
                  default_routes=lambda: {"eth0"}, devices={"unifi_factory": factory})
    c.start()

    def poll_and_tick(seconds=30):
        state["t"] += seconds
        state["wall"] += timedelta(seconds=seconds)
        pollers[-1].poll()
        c.tick()
    return c, pollers, poll_and_tick


def test_unifi_os_clients_each_count_what_their_counters_gained_across_a_new_connection_and_an_expired_login(
        tmp_path, controller):
    ctl = controller()
    c, pollers, step = collector(tmp_path, {"url": ctl.url, "username": "datacap", "password": "s3cret-pass"})
    step()  # the first reading is where counting starts: what the controller counted before us is not ours
    assert live_doc(tmp_path)["devices"] == []
    ctl.expire_sessions()  # the console forgot our session: logged in again, no poll lost
    step()
    assert ctl.logins == 2
    assert (device(tmp_path, LAPTOP)["rx_bytes"], device(tmp_path, LAPTOP)["tx_bytes"]) == (250_000_000, 10_000_000)
    assert (device(tmp_path, NAS)["rx_bytes"], device(tmp_path, NAS)["tx_bytes"]) == (5_000_000, 400_000_000)  # wired
    assert (device(tmp_path, LAPTOP)["name"], device(tmp_path, NAS)["name"]) == ("Laptop", "nas")
    step()  # the phone is back with a new connection: its counters began anew, all 44 MB of them are new
    assert device(tmp_path, PHONE)["cycle_bytes"] == 44_000_000
    assert device(tmp_path, LAPTOP)["cycle_bytes"] == 260_000_000 + 155_000_000
    assert device(tmp_path, PI)["cycle_bytes"] == 1_200_000 and device(tmp_path, PI)["name"] == "raspberrypi"
    assert device(tmp_path, PHONE)["addresses"] == ["192.168.1.40"] and device(tmp_path, PHONE)["source"] == "unifi"
    assert live_doc(tmp_path)["sources"]["unifi"]["status"] == "ok"
    assert ("GET", "/proxy/network/api/s/default/stat/sta") in ctl.requests


def test_a_classic_controller_and_an_api_key(tmp_path, controller):
    classic = controller(unifi_os=False, site="home")
    (tmp_path / "a").mkdir()
    c, _, step = collector(tmp_path / "a", {"url": classic.url, "username": "datacap", "password": "s3cret-pass",
                                           "site": "home"})
    step()
    step()
    assert device(tmp_path / "a", LAPTOP)["cycle_bytes"] == 260_000_000
    assert ("POST", "/api/login") in classic.requests and ("GET", "/api/s/home/stat/sta") in classic.requests
    keyed = controller(api_key="0123456789abcdef")
    (tmp_path / "b").mkdir()
    c, _, step = collector(tmp_path / "b", {"url": keyed.url, "api_key": "0123456789abcdef"})
    step()
    step()
    assert device(tmp_path / "b", NAS)["cycle_bytes"] == 405_000_000 and keyed.logins == 0


def test_a_refused_login_is_shown_and_counting_goes_on(tmp_path, controller):
    ctl = controller()
    c, pollers, step = collector(tmp_path, {"url": ctl.url, "username": "datacap", "password": "wrong-password"})
    step()
    status = live_doc(tmp_path)["sources"]["unifi"]
    assert status["status"] == "failing" and "refused the login" in status["last_error"]
    assert live_doc(tmp_path)["devices"] == []


def test_a_client_the_gateway_counts_itself_is_not_counted_again_from_unifi(tmp_path, controller):
    from device_fakes import FakeKernel
    ctl = controller()
    kernel = FakeKernel()
    kernel.neigh = {"192.168.1.23": LAPTOP}  # the laptop's internet traffic crosses this gateway too
    state = {"t": 100.0, "wall": datetime(2026, 11, 10, 12, 0, tzinfo=TZ)}
    cfg = config.validate({"interfaces": ["eth0"], "sources": [{"type": "local"}],
                           "devices": {"lan": ["lan"], "leases": [str(tmp_path / "none")],
                                       "unifi": {"url": ctl.url, "username": "datacap", "password": "s3cret-pass"}}})
    pollers = []
    c = Collector(cfg, tmp_path, tmp_path, read_counters=lambda: {"eth0": (0, 0)}, boot_time=lambda: 1.7e9,
                  boot_id=lambda: "b", clock=lambda: state["t"], now=lambda: state["wall"], link_bps=lambda n: 1.25e8,
                  default_routes=lambda: {"eth0"},
                  devices={"kernel": kernel, "unifi_factory": lambda s: pollers.append(ManualPoller(s)) or pollers[-1]})
    c.start()
    for _ in range(3):
        kernel.add("down4 192.168.1.23 eth0", 7_000_000)
        state["t"] += 30
        state["wall"] += timedelta(seconds=30)
        pollers[-1].poll()
        c.tick()
    assert device(tmp_path, LAPTOP)["cycle_bytes"] == 21_000_000 and device(tmp_path, LAPTOP)["source"] == "gateway"
    assert device(tmp_path, NAS)["cycle_bytes"] == 405_000_000 + 105_000_000  # only UniFi sees it (LAN traffic)
