"""The collector's footprint at a 1-s interval: CPU share, peak RSS, bytes written to disk.

    python bench/collector_footprint.py [--seconds 60] [--snmp | --local]

Runs the real collector.py by hand and reads /proc/PID for it. By default with the default config
("sources": "auto": this machine's interfaces, and a search for a UPnP gateway, which finds none here).
--local: this machine only. --snmp (root) also counts a router: Debian's snmpd in a router namespace
(tests/household.py), polled every 5 s, counting toward the cap, with this machine's interfaces beside it.
Disk bytes are /proc/PID/io write_bytes (what reached the block layer); the live file goes to
tmpfs and does not count, the ledger flush does.
"""
import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def write_bytes(pid):
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


@contextlib.contextmanager
def sources(tmp, snmp, local):
    """The `sources` setting to measure: the default, this machine only, or a router over SNMP."""
    if not snmp:
        yield [{"type": "local"}] if local else "auto"
        return
    import household
    with household.household(Path(tmp) / "house") as h:
        (Path(tmp) / "house").mkdir()
        snmpd = h.snmpd()
        try:
            yield [{"type": "snmp", "host": h.lan_ip, "community": "public", "interface": "wan", "interval_seconds": 5},
                   {"type": "local", "counts": False}]
        finally:
            household.stop(snmpd)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--snmp", action="store_true", help="also count a router over SNMP every 5 s (root)")
    p.add_argument("--local", action="store_true", help='"sources": [{"type": "local"}] instead of the default')
    args = p.parse_args()
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp, sources(tmp, args.snmp, args.local) as setting:  # the real disk
        config = Path(tmp) / "config.json"
        config.write_text(json.dumps({"sources": setting, "probe_interval_minutes": None}))
        proc = subprocess.Popen([sys.executable, str(ROOT / "collector.py"), "--config", str(config), "--data-dir",
                                 tmp, "--interval", "1"], stderr=subprocess.DEVNULL)
        ps = psutil.Process(proc.pid)
        time.sleep(3)  # start-up (imports, first flush) is not the steady state
        cpu0, io0, t0 = sum(ps.cpu_times()[:2]), write_bytes(proc.pid), time.monotonic()
        peak = 0
        while time.monotonic() - t0 < args.seconds:
            peak = max(peak, ps.memory_info().rss)
            time.sleep(1)
        cpu1, io1, t1 = sum(ps.cpu_times()[:2]), write_bytes(proc.pid), time.monotonic()
        hwm = int(next(line.split()[1] for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                       if line.startswith("VmHWM"))) * 1024
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        minutes = (t1 - t0) / 60
        what = ("with an SNMP router source every 5 s" if args.snmp else "on this machine's interfaces only"
                if args.local else "with the default config (sources auto)")
        print(f"collector at 1-s interval {what} for {t1 - t0:.0f} s: CPU {100 * (cpu1 - cpu0) / (t1 - t0):.2f} % "
              f"of one core, peak RSS {max(peak, hwm) / 1e6:.1f} MB, disk writes {(io1 - io0) / 1e3 / minutes:.1f} "
              f"KB/min, ledger {Path(tmp, 'usage.json').stat().st_size / 1e3:.1f} KB "
              f"(targets: CPU <= {0.5 if args.snmp else 1} %, RSS <= {40 if args.snmp else 30} MB, "
              f"disk <= 60 KB/min; load {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
