"""Three sites and a central with deploy/fleet as shipped (a scrape every 5 minutes, rules every minute):
how soon a site's figures reach the central, what the telemetry costs each site's WAN per day, a
central unreachable for 10 minutes and the gaps it leaves, every dashboard query, the cap alert.

    sudo python bench/fleet.py [--cost-intervals 3] [--outage-minutes 10]
    sudo python bench/fleet.py --calibrate     # the WAN overheads datacap/fleet/telemetry.py counts

Real datacap servers and Debian's prometheus (agent mode at each site, the remote-write receiver
with TLS and passwords at the central), each site in its own network namespace behind a WAN veth
(tests/fleet_lab.py). A site's cost is its WAN veth's counters (Ethernet frames, both directions).
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import fleet_dashboard  # noqa: E402
import fleet_lab  # noqa: E402
from datacap.fleet import telemetry  # noqa: E402
from harness import exit_cleanly_on_sigterm  # noqa: E402

SITES = ["home", "cabin", "farm"]
INTERVAL_S = 300  # deploy/fleet/agent.yml's scrape_interval
USED_GB = {"home": 10, "cabin": 91, "farm": 89}  # cabin pushed over 90 % of its 100 GB, farm just below


def load():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def say(*parts):
    print(f"[{time.strftime('%H:%M:%S')}] " + " ".join(str(p) for p in parts), flush=True)


def newest(fl, selector):
    return {labels.get("site"): v for labels, v in fl.query(f"timestamp({selector})")}


def wait(what, predicate, timeout, step=2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(step)
    raise SystemExit(f"gave up waiting {timeout:.0f} s for {what}")


def arrival(fl):
    """Seconds from each site's change to the central having it."""
    sent = {}
    for s in fl.sites:
        s.api("/api/usage/adjust", {"used_gb": USED_GB[s.name]})
        sent[s.name] = time.monotonic()
    arrived = {}

    def all_there():
        for labels, v in fl.query("datacap_cycle_used_bytes"):
            name = labels["site"]
            if name not in arrived and v >= USED_GB[name] * 1e9:
                arrived[name] = time.monotonic() - sent[name]
        return len(arrived) == len(SITES)
    wait("every site's change at the central", all_there, 3 * INTERVAL_S, step=1)
    return arrived


def reading(site):
    return (*site.reading(), time.monotonic())


def figures(start, end):
    """A site's WAN bytes between two readings, MB a day at that pace, and datacap's estimate beside them."""
    (c0, w0, t0), (c1, w1, t1) = start, end
    measured, estimated = w1 - w0, telemetry.wan_bytes_between(c0, c1)
    return {"bytes": measured, "seconds": t1 - t0, "mb_per_day": measured / (t1 - t0) * 86400 / 1e6,
            "estimated": estimated, "error_percent": 100 * (estimated - measured) / max(measured, 1),
            **{k: c1[k] - c0[k] for k in ("payload_bytes", "sends", "connections", "failed_connects")}}


def cost(fl, seconds):
    """Per site, over the next `seconds`."""
    before = {s.name: reading(s) for s in fl.sites}
    time.sleep(seconds)
    return {s.name: figures(before[s.name], reading(s)) for s in fl.sites}


def cost_per_sends(fl, intervals):
    """Per site, over `intervals` scrape intervals from 20 s after one of its sends (its connection closed
    by then, 10 s after): exactly that many sends, each with all its bytes, whatever the site's phase."""
    sends = {s.name: s.telemetry()["sends"] for s in fl.sites}
    begin, start, out = {}, {}, {}
    while len(out) < len(fl.sites):
        for s in fl.sites:
            now = time.monotonic()
            if s.name not in begin:
                if s.telemetry()["sends"] > sends[s.name]:  # its next send
                    begin[s.name] = now + 20
            elif s.name not in start and now >= begin[s.name]:
                start[s.name] = reading(s)
            elif s.name in start and s.name not in out and now >= begin[s.name] + intervals * INTERVAL_S:
                out[s.name] = figures(start[s.name], reading(s))
        time.sleep(0.5)
    return out


def report_cost(title, figures):
    for name, f in figures.items():
        per_send = f["bytes"] / f["sends"] if f["sends"] else float("nan")
        say(f"{title} {name}: {f['bytes']} B in {f['seconds'] / 60:.1f} min = {f['mb_per_day']:.3f} MB/day; "
            f"{f['sends']:.0f} sends, {f['connections']:.0f} connections, {f['failed_connects']:.0f} failed connects, "
            f"{per_send:.0f} B per send ({f['payload_bytes'] / max(f['sends'], 1):.0f} payload); "
            f"datacap's estimate {f['estimated']:.0f} B ({f['error_percent']:+.1f} %)")


def gaps(fl, since, until):
    """The widest spacing between two samples of each kept series of each site, and how many series."""
    names = {labels["__name__"] for labels, _ in fl.query('count by (__name__) ({job="datacap"})')}
    widest, series = 0.0, 0
    for name in sorted(names):
        data = fl.get("/api/v1/query", query=f"{name}[{int(until - since)}s]", time=until)["result"]
        for r in data:
            times = [float(t) for t, _ in r["values"]]
            series += 1
            if times[0] > since + INTERVAL_S or times[-1] < until - INTERVAL_S:
                widest = max(widest, float("inf"))
            widest = max([widest] + [b - a for a, b in zip(times, times[1:])])
    return widest, series


def dashboard(fl):
    """Per dashboard query: the sites it answered for (with $__rate_interval as Grafana makes it: 4 × 5 min)."""
    return {title: sorted(fleet_dashboard.dashboard_answer(fl, q, rate_interval="20m"))
            for title, q in fleet_dashboard.dashboard_queries()}


def shipped(args):
    with tempfile.TemporaryDirectory() as tmp, fleet_lab.fleet(
            tmp, SITES, scrape_interval=None, evaluation_interval=None,
            site_cfg={n: {"data_cap_gb": 100} for n in SITES},
            probe_mbps={"home": 95.0, "cabin": 20.0, "farm": 8.0}) as fl:
        started = time.monotonic()
        say("load", load(), "- fleet up; waiting for the first scrapes (every 5 min, each target at its own offset)")
        wait("every site at the central", lambda: set(newest(fl, "up")) == set(SITES), 2 * INTERVAL_S)
        say(f"every site's series at the central {time.monotonic() - started:.0f} s after the agents started")
        arrived = arrival(fl)
        say("a change at each site reached the central after", {k: f"{v:.0f} s" for k, v in arrived.items()},
            f"(two scrape intervals: {2 * INTERVAL_S} s); load", load())

        report_cost("cost", cost_per_sends(fl, args.cost_intervals))
        say("load", load())

        answers = dashboard(fl)
        for title, sites in answers.items():
            say(f"dashboard {title!r}: {', '.join(sites) or 'no data'}")
        firing = [(a["labels"]["alertname"], a["labels"].get("site")) for a in fl.get("/api/v1/alerts")["alerts"]
                  if a["state"] == "firing"]
        say("alerts firing:", firing)

        cut_at = time.time()
        fl.cut(True)
        say(f"central unreachable for {args.outage_minutes} min")
        report_cost("during the outage", cost(fl, args.outage_minutes * 60))
        fl.cut(False)
        back_at, back = time.time(), time.monotonic()
        # samples go out in order: the last one scraped before the return arrived, so has all before it
        wait("every site's samples from the outage", lambda: (n := newest(fl, 'up{job="datacap"}'))
             and set(n) == set(SITES) and min(n.values()) > back_at - INTERVAL_S, 2 * INTERVAL_S, step=1)
        say(f"every site's outage samples at the central {time.monotonic() - back:.0f} s after it came back")
        wait("every site's first sample after the outage", lambda: min(newest(fl, 'up{job="datacap"}').values())
             > back_at, 2 * INTERVAL_S)
        time.sleep(30)
        widest, series = gaps(fl, cut_at - 2 * INTERVAL_S, time.time())
        say(f"widest spacing between two samples, {series} series (3 sites), from 10 min before the outage "
            f"to after it: {widest:.0f} s (the scrape interval: {INTERVAL_S} s)")
        say("load", load())


def calibrate(args):
    """Sends on an open connection (a 5-s interval), sends that each open one (30 s, past the central's 10-s
    idle close), and connects the central never answers: the overheads beyond the payload."""
    def run(interval, minutes, outage=False):
        with tempfile.TemporaryDirectory() as tmp, fleet_lab.fleet(tmp, SITES, scrape_interval=interval) as fl:
            wait("every site at the central", lambda: set(newest(fl, "up")) == set(SITES), 120)
            time.sleep(40)
            steady = cost(fl, minutes * 60)
            if not outage:
                return steady, None
            fl.cut(True)
            cut = cost(fl, minutes * 60)
            fl.cut(False)
            return steady, cut
    total = lambda figs, k: sum(f[k] for f in figs.values())  # noqa: E731
    reuse, _ = run("5s", args.calibrate_minutes)
    report_cost("open connection", reuse)
    request = (total(reuse, "bytes") - total(reuse, "payload_bytes")) / total(reuse, "sends")
    fresh, cut = run("60s", 2 * args.calibrate_minutes, outage=True)  # past the neighbours' ARP entries too
    report_cost("a connection per send", fresh)
    report_cost("central unreachable", cut)
    connection = ((total(fresh, "bytes") - total(fresh, "payload_bytes") - request * total(fresh, "sends"))
                  / total(fresh, "connections"))
    failed = total(cut, "bytes") / max(total(cut, "failed_connects"), 1)
    say(f"REQUEST_BYTES ~ {request:.0f}, CONNECTION_BYTES ~ {connection:.0f}, FAILED_CONNECT_BYTES ~ {failed:.0f} "
        f"(a cut with a connection open costs its retransmissions too); load {load()}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cost-intervals", type=int, default=3, help="scrape intervals (5 min) to measure the cost over")
    p.add_argument("--outage-minutes", type=float, default=10)
    p.add_argument("--calibrate", action="store_true")
    p.add_argument("--calibrate-minutes", type=float, default=4)
    args = p.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root: network namespaces")
    exit_cleanly_on_sigterm()
    calibrate(args) if args.calibrate else shipped(args)


if __name__ == "__main__":
    main()
