"""The collector's footprint at a 1-s interval: CPU share, peak RSS, bytes written to disk.

    python bench/collector_footprint.py [--seconds 60]

Runs the real collector.py by hand on this machine's interfaces and reads /proc/PID for it.
Disk bytes are /proc/PID/io write_bytes (what reached the block layer); the live file goes to
tmpfs and does not count, the ledger flush does.
"""
import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent


def write_bytes(pid):
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:  # on the real disk, not /tmp (may be tmpfs)
        proc = subprocess.Popen([sys.executable, str(ROOT / "collector.py"), "--data-dir", tmp, "--interval", "1"],
                                stderr=subprocess.DEVNULL)
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
        print(f"collector at 1-s interval for {t1 - t0:.0f} s: CPU {100 * (cpu1 - cpu0) / (t1 - t0):.2f} % of one core "
              f"(target <= 1 %), peak RSS {max(peak, hwm) / 1e6:.1f} MB (target <= 40 MB), "
              f"disk writes {(io1 - io0) / 1e3 / minutes:.1f} KB/min (target <= 60 KB/min), "
              f"ledger {Path(tmp, 'usage.json').stat().st_size / 1e3:.1f} KB")


if __name__ == "__main__":
    main()
