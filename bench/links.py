"""The instrument on the links users have: each class built for real in a network namespace (root).

    python bench/links.py [--only NAME ...] [--list]

Per class it prints: baseline error (against the goodput the downloader sustained on the steady
link), detection delay (the change on the wire to the event in the live file), onset error
(`at_bytes` against the byte count at the change), throttled-speed error, the number of events,
false events (throttles where there is none) and recovery time (the link restored to the event
closing, or for an outage: the link back to bytes counted again). Delay, loss and outages come
from a userspace delay line between two TUN devices (tests/delayline.py), rates from tbf, the
policer from a queue-less tbf on an ifb fed by an ingress redirect.
"""
import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
import delayline  # noqa: E402
import netns  # noqa: E402
from linkcheck import Session, epoch, goodput_mbps, kinds, overlapping  # noqa: E402

CLASSES = {}
SEED = 1  # of the congestion's random rates (--seed)
SESSIONS = []  # stopped after each class
VETH_PAYLOAD = 0.9556  # payload per byte a tbf counts on a veth (TCP/IP and Ethernet headers)


def link_class(fn):
    CLASSES[fn.__name__.replace("_", "-")] = fn
    return fn


def pct(a, b):
    return f"{100 * (a - b) / b:+.1f} %" if a is not None and b else "n/a"


def report(name, **figures):
    print(f"{name:16s} " + "; ".join(f"{k.replace('_', ' ')} {v}" for k, v in figures.items()), flush=True)


def mark_now(s):
    """(epoch, session bytes) at this moment, from a just-written snapshot and its speed."""
    d = s.fresh()
    now = time.time()
    return now, d["total_bytes"] + d["speed_mbps"] * 1e6 / 8 * (now - epoch(d["updated_at"]))


def throttle_run(name, s, switch, restore, true_low_mbps, settle_s=30, after_s=20, truth=None, in_flight_s=0.0):
    """Steady until settle_s, then switch(); time the event; restore() and time its end.

    truth: called after restore(), the throttled rate to compare with when true_low_mbps is None.
    in_flight_s: how long the old rate still arrives after the switch (a shaper at the far end of the
    delay line: its one-way delay); the onset's truth is the byte count when the change reaches us."""
    s.wait_for(lambda d: d["session_duration"] >= settle_s, settle_s + 30, "settled")
    d = s.read()
    t_switch, mark = mark_now(s)
    steady = goodput_mbps(d, t_switch - 20, t_switch)
    mark += (steady or 0) * 1e6 / 8 * in_flight_s
    switch()
    d = s.wait_for(lambda d: d["throttle_events"], 90, "a throttle event")
    delay = time.time() - t_switch
    time.sleep(after_s)
    d = s.read()
    ev = d["throttle_events"][0]
    restore()
    t_up = time.time()
    try:
        d = s.wait_for(lambda d: d["throttle_events"][0]["end"], 60, "the event closing")
        recovery = f"{time.time() - t_up:.1f} s"
    except AssertionError:
        recovery = "not within 60 s"
    low = true_low_mbps if true_low_mbps is not None else truth()
    report(name, baseline=f"{ev['baseline_mbps']:.2f} vs {steady:.2f} Mbit/s ({pct(ev['baseline_mbps'], steady)})",
           detection=f"{delay:.1f} s", onset=pct(ev["at_bytes"], mark),
           throttled=f"{ev['throttled_mbps']:.3f} vs {low or 0:.3f} ({pct(ev['throttled_mbps'], low)})",
           events=len(d["throttle_events"]), overlaps=len(overlapping(d["events"])), recovery=recovery,
           stream_errors=d.get("error_count"), load=f"{os.getloadavg()[0]:.1f}")


def steady_run(name, s, seconds, settle_s=30):
    """A link with no throttle: baseline against the sustained goodput, and false events."""
    s.wait_for(lambda d: d["session_duration"] >= seconds, seconds + 60, "the run")
    d = s.read()
    now = epoch(d["updated_at"])
    steady = goodput_mbps(d, now - (seconds - settle_s), now)
    report(name, baseline=f"{d['baseline_speed']:.3f} vs {steady:.3f} Mbit/s ({pct(d['baseline_speed'], steady)})",
           false_events=len(d["throttle_events"]),
           other_events=[(e["kind"], e.get("text") or e.get("spread_percent")) for e in d["events"]])
    return d


def session(tmp, base, streams=4, **cfg):
    SESSIONS.append(Session(tmp, [base + "/stream"], streams=streams, **cfg))
    return SESSIONS[-1]


@link_class
def satellite_1(tmp):
    satellite(tmp, 1, "satellite-1")


@link_class
def satellite_4(tmp):
    satellite(tmp, 4, "satellite-4")


def satellite(tmp, streams, name):
    with delayline.tun_link(delay_ms=300, loss=0.01) as (link, line):
        delayline.shape(link, "20mbit", latency="200ms")
        isp, base = netns.start_fake_isp(link)
        try:
            steady_run(f"{name}", session(tmp, base, streams), 120, settle_s=40)
        finally:
            isp.terminate()


def satellite_drop(tmp, name, streams, switch, true_low_mbps=None, in_flight_s=0.0):
    """10 Mbit/s at 600 ms RTT and 1 % loss, steady for 60 s, then switch(link, ifb) for 45 s after the event.

    The truth for the throttled rate is the goodput the downloader counted from 10 s after the switch (before
    that, TCP still hands over bytes that crossed at the old rate, held behind lost packets)."""
    with delayline.tun_link(delay_ms=300, loss=0.01) as (link, line), delayline.policer_ready(link) as ifb:
        delayline.shape(link, "10mbit", latency="200ms")
        isp, base = netns.start_fake_isp(link)
        try:
            s = session(tmp, base, streams)
            box = {}

            def do_switch():
                switch(link, ifb)
                box["t"] = time.time()

            def restore():
                d = s.read()
                box["low"] = goodput_mbps(d, box["t"] + 10, epoch(d["updated_at"]))
                delayline.unpolice(ifb)
                delayline.shape(link, "10mbit", latency="200ms")
            throttle_run(name, s, do_switch, restore, true_low_mbps, settle_s=60, after_s=45,
                         truth=lambda: box.get("low"), in_flight_s=in_flight_s)
        finally:
            isp.terminate()


@link_class
def satellite_deep_1(tmp):
    """10 -> 1 Mbit/s (tbf at the ISP's end: 300 ms of the old rate still on the way) at 600 ms RTT and 1 % loss."""
    satellite_drop(tmp, "sat 10->1 1st", 1, lambda link, ifb: delayline.shape(link, "1mbit", latency="200ms"),
                   in_flight_s=0.3)


@link_class
def satellite_deep_4(tmp):
    """The same, four streams."""
    satellite_drop(tmp, "sat 10->1 4st", 4, lambda link, ifb: delayline.shape(link, "1mbit", latency="200ms"),
                   in_flight_s=0.3)


@link_class
def satellite_policed_600k(tmp):
    """The same satellite link policed (no queue) to 600 kbit/s, four streams."""
    satellite_drop(tmp, "sat pol 600k", 4, lambda link, ifb: delayline.police(ifb, 600_000))


@link_class
def satellite_policed_128k(tmp):
    """The same satellite link policed to 128 kbit/s with an 8 KB bucket, four streams."""
    satellite_drop(tmp, "sat pol 128k/8K", 4, lambda link, ifb: delayline.police(ifb, 128_000, 8000))


@link_class
def edge(tmp):
    """80 -> 40 Mbit/s: exactly the default 50 % threshold."""
    with delayline.veth_link(rate="80mbit") as link:
        isp, base = netns.start_fake_isp(link)
        try:
            s = session(tmp, base)
            throttle_run("edge 80->40", s, lambda: delayline.shape(link, "40mbit"),
                         lambda: delayline.shape(link, "80mbit"), 40 * VETH_PAYLOAD, settle_s=40)
        finally:
            isp.terminate()


@link_class
def deep(tmp):
    with delayline.veth_link(rate="80mbit") as link:
        isp, base = netns.start_fake_isp(link)
        try:
            s = session(tmp, base)
            throttle_run("deep 80->16", s, lambda: delayline.shape(link, "16mbit"),
                         lambda: delayline.shape(link, "80mbit"), 16 * VETH_PAYLOAD, settle_s=40)
        finally:
            isp.terminate()


@link_class
def policed_128k(tmp):
    with delayline.veth_link() as link, delayline.policer_ready(link) as ifb:
        delayline.shape(link, "4mbit")
        isp, base = netns.start_fake_isp(link)
        try:
            s = session(tmp, base)
            box = {}

            def switch():
                delayline.police(ifb, 128_000)
                box["t"] = time.time()

            def restore():
                d = s.read()
                box["low"] = goodput_mbps(d, box["t"] + 5, epoch(d["updated_at"]))
                delayline.unpolice(ifb)
            throttle_run("policed 4M->128k", s, switch, restore, 0.122, settle_s=30)
            print(f"{'':16s} (the policed goodput the downloader counted: {box.get('low') or 0:.3f} Mbit/s)")
        finally:
            isp.terminate()


@link_class
def steady_policed(tmp):
    with delayline.veth_link() as link, delayline.policer_ready(link) as ifb:
        delayline.police(ifb, 2_000_000)
        isp, base = netns.start_fake_isp(link)
        try:
            steady_run("steady policed 2M", session(tmp, base), 120)
        finally:
            isp.terminate()


@link_class
def congestion(tmp, minutes=5):
    """80 Mbit/s for 12 s, then a random 30-80 Mbit/s every 5-10 s."""
    rng = random.Random(SEED)
    with delayline.veth_link(rate="80mbit") as link:
        isp, base = netns.start_fake_isp(link)
        try:
            s = session(tmp, base)
            s.wait_for(lambda d: d["session_duration"] >= 12, 30, "the fast start")
            end = time.time() + minutes * 60
            while time.time() < end:
                delayline.shape(link, f"{rng.uniform(30, 80):.1f}mbit")
                time.sleep(rng.uniform(5, 10))
            d = s.read()
            cong = kinds(d, "congestion")
            report(f"congestion {minutes}min seed {SEED}", false_events=len(d["throttle_events"]),
                   congestion_events=len(cong), overlaps=len(overlapping(d["events"])),
                   last=(cong[-1] if cong else None), baseline=f"{d['baseline_speed']} Mbit/s")
        finally:
            isp.terminate()


def token_bucket(link, rate, bucket_bytes):
    """A speed boost as cable ISPs sell it: a tbf whose bucket holds `bucket_bytes` and fills at `rate`,
    also while the line rests; a queue of 300 KB (tbf's `latency` would add the bucket to the queue)."""
    delayline.in_ns(link.ns, "tc", "qdisc", "replace", "dev", delayline.isp_if(link), "root", "tbf", "rate", rate,
                    "burst", str(bucket_bytes), "limit", "300000")


@link_class
def burst(tmp):
    """A speed boost that refills at rest: 90 Mbit/s (the server's pace) while a 100 MB bucket filling at
    38 Mbit/s lasts, then 38. The refill check rests the line and the fast rate comes back."""
    with delayline.veth_link() as link:
        token_bucket(link, "38mbit", 100 * 2 ** 20)
        isp, base = netns.start_fake_isp(link, rate_mbps=90)
        try:
            s = session(tmp, base)
            d = s.wait_for(lambda d: [e for e in d["events"] if e["kind"] == "burst" and e["came_back"] is not None]
                           or d["throttle_events"], 150, "the refill check's answer")
            d = steady_run("burst 90->38", s, d["session_duration"] + 60, settle_s=40)
            (b,) = kinds(d, "burst") or [None]
            report("", rest=f"{b and b['rest_s']} s", came_back=b and b["came_back"], text=b and b["text"],
                   sustained=f"{d['baseline_speed']} Mbit/s (tbf 38mbit: {38 * VETH_PAYLOAD:.2f} of payload)")
        finally:
            isp.terminate()


@link_class
def volume_throttle(tmp):
    """100 -> 30 Mbit/s after 150 MB (the server throttles at its byte mark), never coming back, rested or not."""
    with delayline.veth_link(rate="100mbit") as link:
        isp, base = netns.start_fake_isp(link, throttle_after_mb=150, throttled_mbps=30)
        try:
            s = session(tmp, base)
            t0 = time.time()
            d = s.wait_for(lambda d: d["throttle_events"] or [e for e in d["events"] if e["kind"] == "burst"
                                                                 and e["came_back"] is not None], 180, "an answer")
            found = time.time() - t0
            time.sleep(20)
            d = s.read()
            ev = (d["throttle_events"] or [{}])[0]
            report("volume 100->30", throttles=len(d["throttle_events"]), bursts=len(kinds(d, "burst")),
                   onset=pct(ev.get("at_bytes"), 150e6),
                   throttled=f"{ev.get('throttled_mbps')} vs 30 ({pct(ev.get('throttled_mbps'), 30)})",
                   baseline=f"{ev.get('baseline_mbps')} (tbf 100mbit: {100 * VETH_PAYLOAD:.1f})",
                   rest=f"{ev.get('rest_s')} s", answered=f"{found:.1f} s after the start",
                   load=f"{os.getloadavg()[0]:.1f}")
            report("", text=ev.get("text"))
        finally:
            isp.terminate()


@link_class
def two_step(tmp):
    """80 -> 20 Mbit/s at 40 s, then 20 -> 4 at 85 s (two throttle tiers)."""
    with delayline.veth_link(rate="80mbit") as link:
        isp, base = netns.start_fake_isp(link)
        try:
            s = session(tmp, base)
            marks = []
            for at_s, rate in ((40, "20mbit"), (85, "4mbit")):
                s.wait_for(lambda d: d["session_duration"] >= at_s, at_s + 30, f"{at_s} s")
                marks.append(mark_now(s))
                delayline.shape(link, rate)
            d = s.wait_for(lambda d: len(d["throttle_events"]) >= 2, 60, "two throttle events")
            found = time.time() - marks[1][0]
            time.sleep(15)
            d = s.read()
            evs = d["throttle_events"]
            for ev, (t, mark), (before, after) in zip(evs, marks, ((80, 20), (20, 4))):
                name, before, after = f"step {before}->{after}", before * VETH_PAYLOAD, after * VETH_PAYLOAD
                report(name, onset=pct(ev["at_bytes"], mark), start=f"{epoch(ev['start']) - t:+.2f} s",
                       baseline=f"{ev['baseline_mbps']} vs {before:.2f} ({pct(ev['baseline_mbps'], before)})",
                       throttled=f"{ev['throttled_mbps']} vs {after:.2f} ({pct(ev['throttled_mbps'], after)})",
                       end=ev["end"] and f"{epoch(ev['end']) - t:+.1f} s")
            report("two-step", events=len(evs), overlaps=len(overlapping(d["events"])),
                   second_found=f"{found:.1f} s after its step", load=f"{os.getloadavg()[0]:.1f}")
        finally:
            isp.terminate()


@link_class
def per_connection(tmp):
    """10 Mbit/s per connection on a 200 Mbit/s line (an htb class per server port), 4 streams."""
    with delayline.veth_link() as link:
        isps = [netns.start_fake_isp(link) for _ in range(4)]
        try:
            delayline.per_flow(link, "200mbit", "10mbit", [int(b.rsplit(":", 1)[1]) for _, b in isps])
            SESSIONS.append(Session(tmp, [b + "/stream" for _, b in isps], streams=4))
            d = SESSIONS[-1].wait_for(lambda d: d["session_duration"] >= 40, 70, "40 s")
            report("per-connection", said=f"limited per connection to ~{d['per_connection_mbps']} Mbit/s "
                   f"(true 9.55 of payload)", streams=d["stream_speeds_mbps"], total=d["speed_mbps"],
                   false_events=len(d["throttle_events"]))
        finally:
            for proc, _ in isps:
                proc.terminate()


def outage(tmp, seconds, name):
    with delayline.tun_link(delay_ms=10) as (link, line):
        delayline.shape(link, "20mbit")
        isp, base = netns.start_fake_isp(link)
        try:
            s = session(tmp, base)
            s.wait_for(lambda d: d["session_duration"] >= 20, 40, "a baseline")
            line.down = True
            time.sleep(seconds)
            line.down = False
            up = time.time()
            d = s.wait_for(lambda d: kinds(d, "outage") and kinds(d, "outage")[-1]["end"] and d["speed_mbps"] > 1,
                           60, "measuring again")
            back = time.time() - up
            time.sleep(20)
            d = s.read()
            o = kinds(d, "outage")
            report(name, running_again=f"{back:.1f} s after the link returned (target <= 10 s)", status=d["status"],
                   false_events=len(d["throttle_events"]), outages=[(x["duration_s"]) for x in o],
                   baseline=f"{d['baseline_speed']} Mbit/s")
        finally:
            isp.terminate()


@link_class
def outage_20s(tmp):
    outage(tmp, 20, "outage 20 s")


@link_class
def outage_5min(tmp):
    outage(tmp, 300, "outage 5 min")


def keep(s, folder, name):
    """The session's last snapshot and log, for reading its seconds afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{name}-{time.strftime('%H%M%S')}"
    stem.with_suffix(".json").write_text(json.dumps(s.read()))
    s.log.flush()
    stem.with_suffix(".log").write_text((s.dir / "downloader.log").read_text())


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", nargs="*", choices=sorted(CLASSES), help="run only these classes")
    p.add_argument("--list", action="store_true")
    p.add_argument("--seed", type=int, default=1, help="the congestion class's random rates")
    p.add_argument("--keep", metavar="DIR", help="keep each session's last downloader.json and log here")
    a = p.parse_args()
    global SEED
    SEED = a.seed
    if a.list:
        print("\n".join(CLASSES))
        return
    if os.geteuid() != 0:
        sys.exit("needs root: network namespaces, tc, TUN")
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}", flush=True)
    for name in a.only or CLASSES:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                CLASSES[name](tmp)
            except AssertionError as exc:
                report(name, failed=str(exc)[:300])
            finally:
                while SESSIONS:
                    s = SESSIONS.pop()
                    if a.keep:
                        keep(s, Path(a.keep), name)
                    s.stop()


if __name__ == "__main__":
    main()
