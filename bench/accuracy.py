"""How truthful the downloader's numbers are, against a fake ISP whose truth we know.

    python bench/accuracy.py

1. steady link: a real veth shaped by `tc tbf rate 80mbit` in a network namespace (root), and
   the fake ISP pacing at 80 Mbit/s on loopback: each reported speed_mbps against the goodput
   the server actually delivered over the same time;
2. a drop from 80 to 16 Mbit/s at a byte mark: detection delay, onset-mark error, rate error;
3. false alarms over 10 simulated minutes of a steady link with +-15 % noise and 2-s dips;
4. --limit-gb 5: where the session ends.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from fake_isp import FakeISP  # noqa: E402
import netns  # noqa: E402
from test_throttle import noisy, run  # noqa: E402


def start_downloader(data_dir, url, *extra):
    """The downloader with its live file (rewritten every second) in data_dir/run."""
    (Path(data_dir) / "run").mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "RUNTIME_DIRECTORY": str(Path(data_dir) / "run")}
    return subprocess.Popen([sys.executable, str(ROOT / "downloader.py"), "--data-dir", str(data_dir), "--url", url,
                             "--streams", "4", *extra], stderr=subprocess.DEVNULL, env=env)


def live(data_dir):
    return read(Path(data_dir) / "run" / "downloader.json")


def read(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def sent_bytes(status_url):
    with urllib.request.urlopen(status_url, timeout=5) as r:
        return json.loads(r.read())["sent_bytes"]


def goodput_between(history, t0, t1):
    """Server goodput (Mbit/s) over wall-clock [t0, t1], interpolating the sampled byte counts."""
    def at(t):
        for (ta, ba), (tb, bb) in zip(history, history[1:]):
            if ta <= t <= tb:
                return ba + (bb - ba) * (t - ta) / (tb - ta)
        return None
    b0, b1 = at(t0), at(t1)
    return None if b0 is None or b1 is None else (b1 - b0) * 8 / (t1 - t0) / 1e6


def steady(url, status_url, label, seconds=40):
    """Each report after warm-up: speed_mbps vs what the server delivered in that report's own window."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_downloader(tmp, url)
        time.sleep(8)
        history, seen, reports = [], set(), []
        t_end = time.time() + seconds
        while time.time() < t_end:
            history.append((time.time(), sent_bytes(status_url)))
            d = live(tmp)
            if d and d["updated_at"] not in seen:
                seen.add(d["updated_at"])
                reports.append((datetime.fromisoformat(d["updated_at"]).timestamp(), d["speed_mbps"]))
            time.sleep(0.1)
        proc.terminate()
        proc.wait()
    # The link is steady, so its true goodput is one number: what the server delivered over the
    # whole period. (Per-window server counts run ahead of delivery by what sits in socket buffers.)
    truth = goodput_between(history, history[0][0], history[-1][0])
    errors = [100 * (reported - truth) / truth for _, reported in reports]
    worst = max(errors, key=abs)
    print(f"{label}: true goodput {truth:.2f} Mbit/s; {len(errors)} reports, mean error "
          f"{statistics.mean(errors):+.2f} %, worst {worst:+.2f} % (target within +-3 %)")


def drop():
    isp = FakeISP(rate_mbps=80, throttle_after_bytes=400_000_000, throttled_mbps=16).start()
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_downloader(tmp, isp.url())
        try:
            while True:
                d = live(tmp)
                if d and d["throttle_events"]:
                    detected = time.monotonic()
                    break
                time.sleep(0.05)
            time.sleep(20)
            d = live(tmp)
        finally:
            proc.terminate()
            proc.wait()
            isp.close()
    ev = d["throttle_events"][0]
    delay = detected - isp.link.crossed_at
    mark_err = 100 * (ev["at_bytes"] - 400_000_000) / 400_000_000
    rate_err = 100 * (ev["throttled_mbps"] - 16) / 16
    print(f"drop 80 -> 16 Mbit/s at 400 MB: event in the file {delay:.1f} s after the drop (target <= 15 s), "
          f"at_bytes {ev['at_bytes']:,} ({mark_err:+.2f} %, target +-2 %), throttled {ev['throttled_mbps']:.2f} Mbit/s "
          f"({rate_err:+.1f} %, target +-10 %), baseline {ev['baseline_mbps']:.2f}, events {len(d['throttle_events'])}")


def false_alarms():
    base = noisy(80, 0.15, seed=11)
    total = 0
    for seed in range(5):
        base = noisy(80, 0.15, seed=seed)
        _, det = run(lambda t: base(t) * (0.1 if int(t) % 37 in (20, 21) else 1.0), 600)
        total += len(det.events)
    print(f"false alarms: {total} events over 5 x 10 simulated minutes, +-15 % noise, a 2-s dip every 37 s (target 0)")


def limit():
    isp = FakeISP().start()
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_downloader(tmp, isp.url(), "--limit-gb", "5")
        code = proc.wait()
        d = read(Path(tmp) / "downloader.json")
    isp.close()
    print(f"--limit-gb 5: status {d['status']}, exit {code}, {d['total_bytes'] / 1e9:.4f} GB "
          f"({100 * (d['total_bytes'] - 5e9) / 5e9:+.3f} %, target +-1 %)")


def main():
    if os.geteuid() == 0:
        with netns.veth_link(rate="80mbit") as link:
            proc, base = netns.start_fake_isp(link)
            try:
                steady(base + "/stream", base + "/status", "tc tbf 80mbit veth")
            finally:
                proc.terminate()
    else:
        print("tc-shaped link: skipped (needs root for a network namespace)")
    isp = FakeISP(rate_mbps=80).start()
    steady(isp.url(), f"http://127.0.0.1:{isp.port}/status", "fake ISP paced at 80 Mbit/s")
    isp.close()
    drop()
    false_alarms()
    limit()


if __name__ == "__main__":
    main()
