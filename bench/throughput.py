"""downloader.py against curl -o /dev/null: same loopback server, same bytes, alternating runs.

    python bench/throughput.py [--gb 5] [--runs 3] [--streams 1]

Throughput is timed on the server (first byte to last byte), so neither client's start-up
counts against its speed; CPU is the client process's whole user+system time (start-up
included), from rusage. Prints each run and the ratios the issue asks for.
"""
import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cpu_of(cmd):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def isp_call(port, path, method="GET"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gb", type=float, default=5)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--streams", type=int, default=1)
    args = p.parse_args()
    nbytes = int(args.gb * 1e9)
    isp = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fake_isp.py")], stdout=subprocess.PIPE, text=True)
    port = int(isp.stdout.readline())
    url = f"http://127.0.0.1:{port}/stream?bytes={nbytes}"
    results = {"curl": [], "datacap": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            clients = {
                "curl": ["curl", "-s", "-o", "/dev/null", url],
                "datacap": [sys.executable, str(ROOT / "downloader.py"), "--data-dir", tmp, "--url", url,
                            "--streams", str(args.streams), "--limit-gb", str(args.gb)],
            }
            for run in range(args.runs):
                for name, cmd in clients.items():
                    isp_call(port, "/reset", "POST")
                    cpu, wall = cpu_of(cmd)
                    st = isp_call(port, "/status")
                    moved = st["sent_bytes"]
                    gbps = moved * 8 / st["transfer_seconds"] / 1e9
                    results[name].append((gbps, cpu / (moved / 1e9)))
                    print(f"run {run + 1} {name:8s}: {moved / 1e9:.2f} GB, {gbps:6.2f} Gbit/s (server-timed), "
                          f"{cpu:.2f} CPU-s ({cpu / (moved / 1e9):.3f} CPU-s/GB), wall {wall:.2f} s", flush=True)
    finally:
        isp.terminate()
    c_rate = statistics.median(r[0] for r in results["curl"])
    d_rate = statistics.median(r[0] for r in results["datacap"])
    c_cpu = statistics.median(r[1] for r in results["curl"])
    d_cpu = statistics.median(r[1] for r in results["datacap"])
    print(f"median throughput: datacap {d_rate:.2f} Gbit/s, curl {c_rate:.2f} Gbit/s -> ratio {d_rate / c_rate:.2f} (target >= 0.9)")
    print(f"median CPU per GB: datacap {d_cpu:.3f} s, curl {c_cpu:.3f} s -> ratio {d_cpu / c_cpu:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
