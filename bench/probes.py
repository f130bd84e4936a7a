"""What a probe costs and how close it comes, per link class (root: real links in network namespaces).

    python bench/probes.py [--runs 5] [--only 80mbit,1gbit,rtt600,throttle,cap5gb]

Each class is a fake ISP in a namespace behind a `tbf`-shaped veth (10.236.0.0/16); the 600 ms-RTT
class sits behind tests/delayline.py's userspace delay line (skipped, and said so, if that file is
not there). The reference is the link's goodput: payload read by a long test's own streams
(datacap's StreamPool, as fast as curl per bench/throughput.py), 4 streams, after slow start.
Each probe is the real `downloader.py --probe`; its cost is what crossed the link (kernel
counters: headers and bytes in flight after it stopped included) while the probe process lived
and 1 s after, in seconds of that goodput. `throttle`: the real server and collector on a link
that throttles at 150 MB of total traffic (tests/probe_isp.py), probes between bursts of other
traffic: how many probes until the onset and the lift are reported, and the onset mark's error.
`cap5gb`: a 5 GB cap (1 % of it for probes, 50 MB a cycle) on an 80 Mbit/s line, a probe due every
hour of a 30-day cycle: which hours probe and with what ceiling comes from the real budget rule
(measure/probe/budget.py) on a simulated clock; each probe that runs is a real measurement
(probe.measure, its real streams) on the real link, kept with its simulated time. Before the pacing:
every hour a 1 MB probe, for comparison. Prints `uptime` too: other benches share the cores.
"""
import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from netns import kernel_counters, start_fake_isp  # noqa: E402
from harness import Server, wait_for  # noqa: E402
from probe_isp import Background, Controller, veth  # noqa: E402

from datacap.measure.probe import budget, measure as probe_measure  # noqa: E402
from datacap.measure.probe import file as probe_file  # noqa: E402
from datacap.measure.streams import StreamPool  # noqa: E402

REFERENCE_STREAMS = 4  # as a long test reads
# TCP payload per byte the shaper counts: 1448 of a 1514-byte Ethernet frame (veth), of a 1500-byte IP
# packet (the delay line's TUN devices carry no Ethernet header)
PAYLOAD_SHARE = {"veth": 1448 / 1514, "tun": 1448 / 1500}
CLASSES = {  # name: (rate, burst, one-way delay ms, reference seconds, accuracy target, cost target s)
    "80mbit": ("80mbit", "64kb", 0, 15, 0.05, 4.0),
    "1gbit": ("1gbit", "512kb", 0, 10, 0.05, 3.0),
    "rtt600": ("10mbit", "64kb", 300, 40, 0.10, None),
}


def rx_bytes(link):
    return kernel_counters(link.host_if)[0]


def reference_mbps(url, seconds):
    """The link's goodput after slow start: payload read by a long test's own streams (StreamPool, which
    keeps up with curl), counted between the warm-up and the end, as a long test measures it."""
    pool = StreamPool([f"{url}/stream"], REFERENCE_STREAMS)
    pool.start()
    try:
        warm = min(8.0, seconds / 3)  # past slow start, even at 600 ms
        time.sleep(warm)
        b0, t0 = pool.total_bytes(), time.monotonic()
        time.sleep(seconds - warm)
        b1, t1 = pool.total_bytes(), time.monotonic()
    finally:
        pool.stop()
    return (b1 - b0) * 8 / (t1 - t0) / 1e6


def one_probe(link, url, folder):
    cfg = folder / "config.json"
    cfg.write_text(json.dumps({"test_urls": [f"{url}/stream"], "data_cap_gb": 100000, "probe_budget_percent": 100,
                               "interfaces": [link.host_if]}))
    b0 = rx_bytes(link)
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, str(ROOT / "downloader.py"), "--probe", "--config", str(cfg),
                        "--data-dir", str(folder / "data")], capture_output=True, text=True, timeout=120)
    wall = time.monotonic() - t0
    time.sleep(1.0)  # bytes still in flight when it stopped cross the link too
    wire = rx_bytes(link) - b0
    assert r.returncode == 0, r.stderr
    rec = json.loads((folder / "data" / "probes.json").read_text())["probes"][-1]
    return rec, wire, wall


def link_for(name):
    """A context manager yielding (link, ISP-side interface), or None when the delay line is missing."""
    rate, burst, delay_ms, *_ = CLASSES[name]
    if not delay_ms:
        return veth(rate, burst)
    try:
        import delayline
    except ImportError:
        return None
    return _behind_delay_line(delayline, rate, burst, delay_ms)


@contextlib.contextmanager
def _behind_delay_line(delayline, rate, burst, delay_ms):
    with delayline.tun_link(delay_ms=delay_ms) as (link, _line):
        delayline.shape(link, rate, burst=burst, latency="2000ms")  # a queue that holds the whole BDP
        yield link, delayline.isp_if(link)


def bench_class(name, runs):
    rate, burst, delay_ms, ref_s, target, cost_target = CLASSES[name]
    cm = link_for(name)
    if cm is None:
        print(f"{name}: skipped: tests/delayline.py (the userspace delay line) is not there")
        return
    with cm as (link, _ns_if), tempfile.TemporaryDirectory(prefix="probes-bench-") as tmp:
        proc, url = start_fake_isp(link)
        try:
            ref = reference_mbps(url, ref_s)
            rows = []
            for i in range(runs):
                rec, wire, wall = one_probe(link, url, Path(tmp))
                rows.append((rec, wire, wall))
                time.sleep(0.5)
        finally:
            proc.kill()
            proc.wait()
    line = float(rate.removesuffix("mbit").removesuffix("gbit")) * (1000 if rate.endswith("gbit") else 1)
    line *= PAYLOAD_SHARE["tun" if delay_ms else "veth"]
    errs = [rec["mbps"] / ref - 1 for rec, _, _ in rows if rec["mbps"]]
    line_errs = [rec["mbps"] / line - 1 for rec, _, _ in rows if rec["mbps"]]
    costs = [wire / (ref * 1e6 / 8) for _, wire, _ in rows]
    print(f"\n{name}: tbf {rate}, RTT ~{2 * delay_ms} ms, reference goodput {ref:.2f} Mbit/s ({ref_s} s, {REFERENCE_STREAMS} "
          f"streams); the line's payload rate {line:.2f} Mbit/s")
    for rec, wire, wall in rows:
        print(f"  probe {rec['mbps']} Mbit/s ({rec['mbps'] / ref - 1:+.2%}), {rec['stopped_by']}, ttfb {rec['ttfb_ms']} ms,"
              f" read {rec['bytes'] / 1e6:.2f} MB in {rec['seconds']:.2f} s, wire {wire / 1e6:.2f} MB"
              f" = {wire / (ref * 1e6 / 8):.2f} s of line rate, process {wall:.2f} s")
    worst = max(errs, key=abs) if errs else None
    worst_line = max(line_errs, key=abs) if line_errs else None
    out = (f"  {name}: accuracy mean {statistics.fmean(errs):+.2%}, worst {worst:+.2%} (target ±{target:.0%}); against "
           f"the line's payload rate worst {worst_line:+.2%}; cost median {statistics.median(costs):.2f} s, worst "
           f"{max(costs):.2f} s of line rate")
    print(out + (f" (target ≤ {cost_target:g} s)" if cost_target else ""))


def throttle_scenario():
    """The ISP throttles once the link has carried 150 MB in total, most of it other traffic."""
    mark, mb = 150 * 10 ** 6, 10 ** 6
    with veth("40mbit") as (link, ns_if), tempfile.TemporaryDirectory(prefix="probes-bench-") as tmp:
        proc, url = start_fake_isp(link)
        srv = Server(Path(tmp) / "s", interfaces=[link.host_if], test_urls=[f"{url}/stream"], data_cap_gb=1000,
                     probe_interval_minutes=None, probe_budget_percent=100, update_interval_seconds=0.5)
        ctl = None
        try:
            srv.start()
            wait_for(lambda: srv.get("/api/usage").json()["cycle"]["live"], 10, "the collector")
            ctl, bg = Controller(link, ns_if, "40mbit", "4mbit", mark).start(), Background(url)
            bg.fetch(110 * mb)
            n, first_after, onset, lifted_from, lift, f = 0, None, None, None, None, None
            while n < 40 and lift is None:
                bg.fetch(2 * mb if ctl.crossed_at_bytes is None else 0.3 * mb)
                time.sleep(1.5)
                subprocess.run([sys.executable, str(ROOT / "downloader.py"), "--probe", "--config", str(srv.config_path),
                                "--data-dir", str(srv.data_dir)], check=True, capture_output=True, timeout=60)
                n += 1
                first_after = first_after or (n if ctl.crossed_at_bytes is not None else None)
                doc = json.loads((srv.data_dir / "probes.json").read_text())
                f = doc["findings"][-1] if doc["findings"] else None
                onset = onset or (n if f else None)
                if onset and n == onset + 2:
                    ctl.lift()
                lifted_from = lifted_from or (n if ctl.lifted_at_bytes is not None else None)
                lift = n if f and f["lifted"] else None
            spent = sum(p["bytes"] for p in doc["probes"])
        finally:
            if ctl:
                ctl.close()
            srv.stop()
            proc.kill()
            proc.wait()
    lo, hi = f["bracket_bytes"]
    print(f"\nthrottle on total usage: 40 -> 4 Mbit/s once the link has carried {mark / mb:.0f} MB (crossed at "
          f"{ctl.crossed_at_bytes / mb:.1f} MB)\n  onset found by probe {onset - first_after + 1} after the mark; its mark "
          f"{f['since_cycle_bytes'] / mb:.1f} MB ({f['since_cycle_bytes'] / ctl.crossed_at_bytes - 1:+.2%}), bracket "
          f"{lo / mb:.1f}-{hi / mb:.1f} MB; lift found by probe {lift - lifted_from + 1} after it (target: within 2; ±5 %)"
          f"\n  {n} probes used {spent / mb:.1f} MB; \"{f['text']}\"")


def cap5gb(hours=720, old_rule_probes=5):
    """A 5 GB cap, probes due hourly over a 30-day cycle on an 80 Mbit/s line (see the docstring)."""
    cfg = {"probe_budget_percent": 1, "probe_interval_minutes": 60, "throttle_threshold_percent": 50}
    t0 = datetime(2027, 3, 1, tzinfo=timezone.utc)
    with veth("80mbit") as (link, _), tempfile.TemporaryDirectory(prefix="probes-bench-") as tmp:
        proc, url = start_fake_isp(link)
        try:
            ref = reference_mbps(url, 15)
            old = [probe_measure.measure([f"{url}/stream"], budget.MIN_PROBE_BYTES) for _ in range(old_rule_probes)]
            ran = []
            for h in range(hours):
                now = t0 + timedelta(hours=h)
                summary = {"cap_bytes": 5 * 10 ** 9, "used_bytes": int(h * 6e6), "start": "2027-03-01",
                           "resets_at": (t0 + timedelta(days=30)).isoformat()}  # the household: 6 MB an hour
                doc = probe_file.Reader(Path(tmp)).read()
                allow, why = budget.allowance(cfg, summary, doc, now.timestamp())
                if not allow:
                    continue
                r = probe_measure.measure([f"{url}/stream"], allow)
                rec = {"id": f"h{h}", "time": now.isoformat(), "cycle_start": "2027-03-01",
                       "cycle_used_bytes": summary["used_bytes"], "quiet": True, **r.as_dict()}
                probe_file.add(Path(tmp), rec, cfg["throttle_threshold_percent"])
                ran.append((h, allow, r))
            spent = budget.budget(cfg, 5 * 10 ** 9, probe_file.Reader(Path(tmp)).read(), "2027-03-01")
        finally:
            proc.kill()
            proc.wait()
    print(f"\ncap5gb: 5 GB cap, 1 % for probes (50 MB), due hourly for 30 days, tbf 80mbit; reference goodput "
          f"{ref:.2f} Mbit/s")
    for r in old:
        print(f"  before (a 1 MB ceiling every hour): {r.mbps} Mbit/s ({r.mbps / ref - 1:+.1%}), {r.stopped_by}, "
              f"settled {r.settled}")
    for h, allow, r in ran:
        err = f"{r.mbps / ref - 1:+.2%}" if r.mbps else "n/a"
        print(f"  day {h // 24 + 1:2d} {h % 24:02d}:00  ceiling {allow / 1e6:5.1f} MB  read {r.bytes / 1e6:5.1f} MB  "
              f"{r.mbps} Mbit/s ({err})  {r.stopped_by}{'' if r.settled else '  (marked: did not settle)'}")
    line = [r.mbps / ref - 1 for _, _, r in ran if r.settled]
    worst = f"{max(line, key=abs):+.2%}" if line else "n/a"
    print(f"  {len(ran)} probes of {hours} hourly slots, {len(line)} settled; the map's line (settled probes) worst "
          f"{worst} (target ±5 %); budget {spent['spent_bytes'] / 1e6:.1f} of {spent['budget_bytes'] / 1e6:.0f} MB")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--only", default=",".join(CLASSES) + ",throttle,cap5gb")
    a = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (network namespaces)")
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    for name in a.only.split(","):
        if name == "throttle":
            throttle_scenario()
        elif name == "cap5gb":
            cap5gb()
        else:
            bench_class(name, a.runs)
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
