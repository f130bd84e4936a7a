"""downloader.py against curl -o /dev/null as a user experiences them: whole process, same server, same bytes.

    python bench/throughput.py [--gb 5] [--pairs 5] [--quota-percent 30] [--quota-gb 5] [--root DIR]

The server is Debian's nginx (sendfile on) on a free loopback port, serving a sparse file from
tmpfs (its holes cost no memory and no disk), started by this script and stopped after. Each
client is timed from spawn to exit (wall) and charged its whole CPU time (user + system, from
wait4), start-up included. Runs alternate (curl first in even pairs, datacap first in odd ones);
the summary is the median over pairs. Then the same again with both clients in a cgroup whose
CPU quota is `--quota-percent` of one core (v2 `cpu.max`, or v1 `cpu.cfs_quota_us` where the cpu
controller is on the v1 hierarchy), a stand-in for a Pi-class core. The 1-minute load average
is printed beside every pair: other work on the machine spoils a figure, so rerun when it is high.
Needs root for the cgroup (the quota series is skipped without it) and `apt-get install nginx curl`.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from nginx import Nginx  # noqa: E402
CGROUP = Path("/sys/fs/cgroup")
PERIOD_US = 100_000

class CpuQuota:
    """A cgroup of our own with a CPU quota; `enter` (a preexec_fn) moves the new child into it."""

    def __init__(self, percent):
        self.quota_us = int(PERIOD_US * percent / 100)
        name = f"datacap-bench-{os.getpid()}"
        controllers = CGROUP / "cgroup.controllers"
        if controllers.exists() and "cpu" in controllers.read_text().split():
            self.kind, self.path = "cgroup v2 cpu.max", CGROUP / name
            if "cpu" not in (CGROUP / "cgroup.subtree_control").read_text().split():
                (CGROUP / "cgroup.subtree_control").write_text("+cpu")
            self.path.mkdir()
            (self.path / "cpu.max").write_text(f"{self.quota_us} {PERIOD_US}")
        elif (CGROUP / "cpu" / "cpu.cfs_quota_us").exists():
            self.kind, self.path = "cgroup v1 cpu.cfs_quota_us (the cpu controller is on v1 here)", CGROUP / "cpu" / name
            self.path.mkdir()
            (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (self.path / "cpu.cfs_quota_us").write_text(str(self.quota_us))
        else:
            raise OSError("no cgroup cpu controller (neither v2 cpu.max nor v1 cpu.cfs_quota_us)")

    def enter(self):
        with open(self.path / "cgroup.procs", "w") as f:
            f.write(str(os.getpid()))

    def remove(self):
        for _ in range(50):  # the last child may still be leaving
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)


def run_client(cmd, preexec=None):
    """Spawn, wait; return (wall seconds, user CPU, system CPU, exit code)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=preexec)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime, usage.ru_stime, proc.returncode


def clients(url, gb, streams, root, data_dir):
    return {
        "curl": ["curl", "-s", "-o", "/dev/null", url],
        "datacap": [sys.executable, str(Path(root) / "downloader.py"), "--data-dir", str(data_dir), "--url", url,
                    "--streams", str(streams), "--limit-gb", str(gb)],
    }


def check_datacap(data_dir, nbytes):
    d = json.loads((Path(data_dir) / "downloader.json").read_text())
    if d["status"] != "finished" or d["total_bytes"] < nbytes:
        sys.exit(f"datacap did not finish the transfer: {d['status']}, {d['total_bytes']} bytes, {d['reason']}")


def series(title, cmds, nbytes, pairs, data_dir, preexec=None):
    """Alternating runs; returns {name: [(gbps, cpu_s, user_s, sys_s, wall_s)]}."""
    print(f"\n{title}")
    out = {name: [] for name in cmds}
    for k in range(pairs):
        load = os.getloadavg()[0]
        order = list(cmds) if k % 2 == 0 else list(reversed(cmds))
        line = []
        for name in order:
            wall, user, system, code = run_client(cmds[name], preexec)
            if code != 0:
                sys.exit(f"{name} exited with {code}")
            if name == "datacap":
                check_datacap(data_dir, nbytes)
            gbps = nbytes * 8 / wall / 1e9
            out[name].append((gbps, user + system, user, system, wall))
            line.append(f"{name} {wall:5.2f} s {gbps:5.2f} Gbit/s CPU {user + system:4.2f} s "
                        f"(user {user:4.2f} sys {system:4.2f})")
        print(f"  pair {k + 1} (load {load:4.2f}): " + " | ".join(line), flush=True)
    return out


def summarize(out, target_rate, target_cpu=None):
    med = {name: [statistics.median(r[j] for r in rows) for j in range(5)] for name, rows in out.items()}
    d, c = med["datacap"], med["curl"]
    pair_rate = statistics.median(a[0] / b[0] for a, b in zip(out["datacap"], out["curl"]))
    pair_cpu = statistics.median(a[1] / b[1] for a, b in zip(out["datacap"], out["curl"]))
    print(f"  median throughput: datacap {d[0]:.2f} Gbit/s, curl {c[0]:.2f} Gbit/s -> {d[0] / c[0]:.2f}x curl "
          f"(median of pair ratios {pair_rate:.2f}x; target >= {target_rate}x)")
    cpu_line = f"  median CPU: datacap {d[1]:.2f} s (user {d[2]:.2f}, sys {d[3]:.2f}), curl {c[1]:.2f} s " \
               f"(user {c[2]:.2f}, sys {c[3]:.2f}) -> {d[1] / c[1]:.2f}x curl (median of pair ratios {pair_cpu:.2f}x"
    print(cpu_line + (f"; target <= {target_cpu}x)" if target_cpu else ")"))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gb", type=float, default=5)
    p.add_argument("--pairs", type=int, default=5)
    p.add_argument("--streams", type=int, default=1)
    p.add_argument("--quota-percent", type=float, default=30, help="0 skips the quota series")
    p.add_argument("--quota-gb", type=float, help="bytes for the quota series (default: --gb)")
    p.add_argument("--root", default=str(ROOT), help="the checkout whose downloader.py runs (default: this one)")
    args = p.parse_args()
    nbytes = int(args.gb * 1e9)
    server = Nginx(nbytes).start()
    print(f"nginx {server.url} ({nbytes / 1e9:g} GB sparse file on tmpfs, sendfile on); "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            cmds = clients(server.url, args.gb, args.streams, args.root, data_dir)
            summarize(series(f"{args.gb:g} GB, {args.streams} stream(s), loopback", cmds, nbytes, args.pairs,
                             data_dir), 1.0, 1.2)
            if args.quota_percent:
                quota_series(args, server, data_dir)
    finally:
        server.stop()


def quota_series(args, server, data_dir):
    gb = args.quota_gb or args.gb
    try:
        quota = CpuQuota(args.quota_percent)
    except OSError as exc:
        print(f"\nquota series skipped: {exc}")
        return
    try:
        cmds = clients(server.url, gb, args.streams, args.root, data_dir)
        if gb != args.gb:
            cmds["curl"][1:1] = ["-r", f"0-{int(gb * 1e9) - 1}"]
        out = series(f"{gb:g} GB, both clients under a CPU quota of {args.quota_percent:g} % of one core "
                     f"({quota.kind})", cmds, int(gb * 1e9), args.pairs, data_dir, quota.enter)
        summarize(out, 0.9)
    finally:
        quota.remove()


if __name__ == "__main__":
    main()
