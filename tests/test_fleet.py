"""Three sites, one central (Debian's prometheus), each site a real datacap and a real agent in its own
network namespace behind a WAN veth (tests/fleet_lab.py). The agents run deploy/fleet/agent.yml
with a shorter scrape interval; bench/fleet.py runs the shipped one for longer. Needs root."""
import math
import shutil
import time

import pytest

import fleet_dashboard
import fleet_lab
from conftest import have_root_networking, need
from datacap.fleet import telemetry
from harness import wait_for

SITES = ["home", "cabin", "farm"]
SHIPPED_INTERVAL_S = 300  # deploy/fleet/agent.yml
DAY_BUDGET_BYTES = 2_000_000


@pytest.fixture
def lab_ok():
    need(have_root_networking(), "needs root and `ip netns` for the sites' namespaces")
    for tool in ("prometheus", "openssl", "nft", "curl"):
        need(shutil.which(tool), f"{tool} is not installed (apt-get install prometheus openssl nftables curl)")


def values(fl, query):
    return {labels.get("site"): value for labels, value in fl.query(query)}


def test_a_change_at_every_site_reaches_the_central_its_dashboard_and_its_cap_alert(lab_ok, tmp_path):
    interval = 10
    caps = {name: {"data_cap_gb": 100} for name in SITES}
    probes = {"home": 95.0, "cabin": 20.0, "farm": 8.0}
    with fleet_lab.fleet(tmp_path, SITES, scrape_interval=f"{interval}s", evaluation_interval="2s", site_cfg=caps,
                         probe_mbps=probes) as fl:
        wait_for(lambda: set(values(fl, "datacap_cycle_used_bytes")) == set(SITES), 3 * interval,
                 "every site's first figures at the central")
        cost_at = {s.name: s.reading() for s in fl.sites}

        used_gb = {"home": 10, "cabin": 91, "farm": 89}  # cabin pushed over 90 %, farm just below it
        sent = {}
        for s in fl.sites:
            assert s.api("/api/usage/adjust", {"used_gb": used_gb[s.name]})
            sent[s.name] = time.monotonic()
        arrived = {}
        while len(arrived) < len(SITES) and time.monotonic() - min(sent.values()) < 4 * interval:
            for name, v in values(fl, "datacap_cycle_used_bytes").items():
                if name not in arrived and v >= used_gb[name] * 1e9:
                    arrived[name] = time.monotonic() - sent[name]
            time.sleep(0.25)
        assert set(arrived) == set(SITES) and max(arrived.values()) <= 2 * interval, arrived

        for title, query in fleet_dashboard.dashboard_queries():
            # a rate needs two samples of a counter, and the ledger's first one is in the second scrape
            answer = wait_for(lambda: (a := fleet_dashboard.dashboard_answer(fl, query)) and set(a) == set(SITES) and a,
                              3 * interval, f"{title!r} for every site: {query}", interval=1)
            if not query.startswith("label_values("):  # the site variable's choices
                assert all(math.isfinite(v) for vs in answer.values() for v in vs), (title, answer)
                assert set(fleet_dashboard.dashboard_answer(fl, query, site="cabin")) == {"cabin"}, title
        cap = fleet_dashboard.dashboard_answer(fl, next(q for t, q in fleet_dashboard.dashboard_queries() if t == "Cap used this cycle"))
        assert cap["cabin"][0] == pytest.approx(0.91, abs=0.001) and cap["farm"][0] < 0.9
        speeds = fleet_dashboard.dashboard_answer(fl, next(q for t, q in fleet_dashboard.dashboard_queries() if t == "Probe speeds"))
        assert {k: v[0] / 1e6 for k, v in speeds.items()} == probes

        def firing():
            alerts = fl.get("/api/v1/alerts")["alerts"]
            return [(a["labels"]["alertname"], a["labels"].get("site")) for a in alerts if a["state"] == "firing"]
        wait_for(firing, 30, "the cap alert to fire")
        time.sleep(6)  # three more evaluations: nothing else fires
        assert firing() == [("DatacapCapNearlyUsed", "cabin")]

        for s in fl.sites:  # datacap's own count of what its agent sent, against its WAN veth
            (c0, w0), (c1, w1) = cost_at[s.name], s.reading()
            measured, estimated = w1 - w0, telemetry.wan_bytes_between(c0, c1)
            assert c1["sends"] > c0["sends"] and estimated == pytest.approx(measured, rel=0.15), (s.name, c0, c1, measured)


def test_the_central_unreachable_leaves_no_gap_and_a_send_costs_what_the_shipped_interval_affords(lab_ok, tmp_path):
    interval = 12  # longer than the central's 10-s idle timeout: every send opens a connection, as with 5 minutes
    cut_s = 48
    with fleet_lab.fleet(tmp_path, SITES, scrape_interval=f"{interval}s") as fl:
        wait_for(lambda: set(values(fl, "up")) == set(SITES), 3 * interval, "every site at the central")
        time.sleep(interval)  # past the first sends (a fresh WAL, the first connection)
        before = {s.name: s.reading() for s in fl.sites}
        time.sleep(4 * interval)
        for s in fl.sites:
            (c0, w0), (c1, w1) = before[s.name], s.reading()
            sends, measured = c1["sends"] - c0["sends"], w1 - w0
            per_day = measured / sends * 86400 / SHIPPED_INTERVAL_S
            assert sends >= 3 and per_day <= DAY_BUDGET_BYTES, (s.name, sends, measured, per_day)
            assert telemetry.wan_bytes_between(c0, c1) == pytest.approx(measured, rel=0.15), (s.name, c0, c1, measured)

        cut_at = time.time()
        fl.cut(True)
        time.sleep(cut_s)
        fl.cut(False)
        back_at = time.time()

        def caught_up():
            newest = {labels["site"]: v for labels, v in fl.query('timestamp(up{job="datacap"})')}
            return set(newest) == set(SITES) and min(newest.values()) > back_at
        wait_for(caught_up, 90, "every site's samples from after the outage", interval=1)
        for selector in ('up{job="datacap"}', "datacap_cycle_used_bytes", "datacap_counted_bytes_total"):
            samples = fl.samples(selector, cut_at - 3 * interval, back_at + interval)
            assert set(samples) == set(SITES), (selector, samples.keys())
            for site, points in samples.items():
                times = [t for t, _ in points]
                gaps = [b - a for a, b in zip(times, times[1:])]
                assert times[0] < cut_at and times[-1] > back_at, (selector, site, times)
                assert max(gaps) <= 1.5 * interval, (selector, site, max(gaps))
