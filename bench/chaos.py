"""Fault-injection soak of the money paths: is the cycle figure right whatever happens to datacap?

    sudo python bench/chaos.py [--minutes 30] [--seed N] [--modes local snmp upnp] [--rate 150mbit] [--json]

Each mode is a household (tests/household.py): datacap runs on the second LAN machine (its own
network namespace, default route through the router), a fake ISP streams to it through the
router's WAN, continuously, shaped to --rate. What counts toward the cap:

    local  this machine's LAN interface (`interfaces: ["l2"]`); the truth is its kernel counters
    snmp   the router's WAN over SNMP (Debian's snmpd in the router); the truth is the WAN's counters
    upnp   "sources": "auto" (the default): miniupnpd in the router, found by SSDP and promoted

A seeded (printed) random schedule of faults runs meanwhile: SIGKILL of the collector, of the
downloader (tests run now and then), of the server with a restart 5 s later (systemd's
RestartSec), clean server restarts, SIGHUP, SIGSTOP of the collector for 35 s, settings saves
that change the update and source intervals and the sources, restarts of the router's daemon.
Every second the cycle figure (`/api/stats` cycle_used_bytes) is sampled and compared with the
kernel counters read right after it. Printed per mode: bytes moved, the final figure's error,
how often and by how much the sampled figure went down, and how far it ran ahead of the truth.
Targets (issue #24): final within 0.1 %, 0 decreases, never more than 0.5 % ahead.

Modes run side by side, one driver process each, inside the household's LAN namespace.
"""
import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
import household  # noqa: E402
import netns  # noqa: E402
from harness import Server, wait_for  # noqa: E402

import requests  # noqa: E402

MODES = ("local", "snmp", "upnp")
SETTLE_S = 20  # after the last fault and the traffic's end: readings, caches, one flush
SETTLE_MAX_S = 120  # then until the figure says it holds the traffic's end (update_interval_seconds may be 30)
AHEAD_FLOOR = 50_000_000  # "% ahead" is measured once the truth is past this many bytes
RESTART_SEC = 5  # deploy/datacap.service
TARGETS = {"final_percent": 0.1, "decreases": 0, "ahead_percent": 0.5}


# -- the driver: runs inside the household's LAN namespace ------------------------------------------

class Driver:
    """One mode: the real server, continuous traffic, the fault schedule, the sampler."""

    def __init__(self, spec):
        self.spec = spec
        self.mode = spec["mode"]
        self.house = household.House(**{**spec["house"], "folder": Path(spec["house"]["folder"])})
        self.rng = random.Random(spec["seed"])
        self.samples = []  # (t, figure, truth)
        self.faults = []  # (t, name)
        self.daemon = spec.get("daemon_pid")
        self._stop = threading.Event()
        self.server = None

    # the truth
    def counters(self):
        if self.mode == "local":
            return netns.kernel_counters("l2")
        return self.house.wan_counters()

    def truth(self):
        rx, tx = self.counters()
        return rx + tx - self.base

    # datacap
    def config(self):
        base = {"test_urls": [self.spec["isp"] + "/stream"], "update_interval_seconds": 1,
                "probe_interval_minutes": None, "stop_at_cap": False, "data_cap_gb": 1000,
                "alert_thresholds_percent": []}
        if self.mode == "local":
            return {**base, "interfaces": ["l2"], "sources": [{"type": "local"}]}
        if self.mode == "snmp":
            return {**base, "interfaces": ["l2"], "sources": self.snmp_sources(5)}
        return {**base, "sources": "auto"}

    def snmp_sources(self, interval, with_local=True):
        snmp = {"type": "snmp", "host": self.house.lan_ip, "community": "public", "interface": "wan",
                "interval_seconds": interval}
        return [snmp, {"type": "local", "counts": False}] if with_local else [snmp]

    def counted_through(self):
        """Epoch seconds up to which the cycle figure holds every byte (cycle.as_of), 0 when it says none."""
        as_of = self.server.get("/api/usage").json()["cycle"].get("as_of")
        return datetime.fromisoformat(as_of).timestamp() if as_of else 0.0

    def figure(self):
        return self.server.get("/api/stats").json()["cycle_used_bytes"]

    def children(self):
        try:
            return self.server.children()
        except Exception:  # noqa: BLE001 - the server is between lives
            return {}

    # the faults
    def kill_collector(self):
        c = self.children().get("collector")
        if c:
            os.kill(c.pid, signal.SIGKILL)

    def kill_downloader(self):
        d = self.children().get("downloader")
        if d:
            os.kill(d.pid, signal.SIGKILL)

    def start_test(self):
        self.server.post("/api/start", json={"limit_gb": round(self.rng.uniform(0.05, 0.5), 3), "streams": 2})

    def kill_server(self):
        self.server.stop(signal.SIGKILL)
        time.sleep(RESTART_SEC)
        self.server.start()

    def restart_server(self):
        self.server.stop()
        time.sleep(RESTART_SEC)
        self.server.start()

    def hup_server(self):
        self.server.proc.send_signal(signal.SIGHUP)

    def stop_collector(self):
        c = self.children().get("collector")
        if not c:
            return
        os.kill(c.pid, signal.SIGSTOP)
        time.sleep(35)
        try:
            os.kill(c.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass  # the supervisor killed it for its silent heartbeat: as it should

    def save_settings(self):
        body = {"update_interval_seconds": self.rng.choice([0.5, 1, 1, 2, 5, 30])}
        if self.mode == "snmp":
            body["sources"] = self.snmp_sources(self.rng.choice([1, 2, 5, 10]), self.rng.random() < 0.7)
        elif self.mode == "local":
            body["interfaces"] = self.rng.choice([["l2"], "auto"])
        else:
            body["sources"] = self.rng.choice(["auto", [{"type": "upnp", "url": self.spec["upnp_url"],
                                                          "interval_seconds": self.rng.choice([1, 5])},
                                                         {"type": "local", "counts": False}]])
        r = self.server.session.put(self.server.url + "/api/config", json=body, timeout=10)
        r.raise_for_status()

    def restart_daemon(self):
        if self.mode == "local":
            return
        household.stop_pid(self.daemon)
        time.sleep(self.rng.uniform(0.5, 5))
        proc = self.house.snmpd() if self.mode == "snmp" else self.house.miniupnpd()
        self.daemon = (proc if self.mode == "snmp" else proc[0]).pid

    FAULTS = {"kill_collector": 4, "kill_server": 2, "restart_server": 2, "hup_server": 2, "stop_collector": 1,
              "save_settings": 3, "restart_daemon": 2, "start_test": 3, "kill_downloader": 2}

    def schedule(self, seconds):
        """(at seconds, fault) for the whole run: the same list for the same seed."""
        names = [n for n, w in self.FAULTS.items() for _ in range(w)]
        out, t = [], 10.0
        while True:
            t += self.rng.uniform(4, 20)
            if t > seconds:
                return out
            out.append((round(t, 1), self.rng.choice(names)))

    # the threads
    def traffic(self):
        """Continuous downloads through the router (curl, restarted whenever it ends)."""
        while not self._stop.is_set():
            p = subprocess.Popen(["curl", "-s", "-o", "/dev/null", "-m", "60", self.spec["isp"] + "/stream"])
            while p.poll() is None and not self._stop.is_set():
                time.sleep(0.2)
            if p.poll() is None:
                p.kill()
            p.wait()

    def sample(self):
        t0 = time.monotonic()
        while not self._stop.is_set():
            try:
                f = self.figure()
                self.samples.append((round(time.monotonic() - t0, 2), f, self.truth()))
            except (requests.RequestException, ValueError, KeyError):
                pass  # between two lives of the server
            self._stop.wait(1.0)

    def run(self):
        seconds = self.spec["minutes"] * 60
        plan = self.schedule(seconds)
        self.server = Server(Path(self.spec["folder"]) / self.mode, **self.config())
        self.server.session = requests.Session()
        self.server.start()
        wait_for(lambda: self.figure() is not None and self.children().get("collector"), 20, "the collector")
        time.sleep(3)  # its first count taken: the link is idle, so the truth starts here
        rx, tx = self.counters()
        self.base = rx + tx
        threads = [threading.Thread(target=f, daemon=True) for f in (self.traffic, self.sample)]
        for th in threads:
            th.start()
        t0 = time.monotonic()
        try:
            for at, name in plan:
                time.sleep(max(0.0, at - (time.monotonic() - t0)))
                self.faults.append((round(time.monotonic() - t0, 1), name))
                try:
                    getattr(self, name)()
                except (requests.RequestException, OSError) as exc:
                    self.faults[-1] += (f"failed: {exc}",)
                if self.server.proc.poll() is not None:  # a fault left it down: systemd starts it
                    self.server.start()
            time.sleep(max(0.0, seconds - (time.monotonic() - t0)))
            return self.finish(threads)
        finally:
            self._stop.set()
            self.server.stop()

    def finish(self, threads):
        """Stop the traffic, let the figure settle, compare."""
        if not self.children().get("collector"):
            wait_for(lambda: self.children().get("collector"), 60, "the collector back")
        self.server.post("/api/stop")
        self._stop.set()
        for th in threads:
            th.join(70)
        ended = time.time()
        time.sleep(SETTLE_S)
        # the figure datacap says holds every byte up to the traffic's end (a 30-s interval, a router's cache)
        wait_for(lambda: self.counted_through() >= ended, SETTLE_MAX_S, "a count holding every byte of the traffic",
                 interval=0.5)
        final, truth = self.figure(), self.truth()
        return summarize(self.mode, self.spec["seed"], self.samples, final, truth, self.faults)


def summarize(mode, seed, samples, final, truth, faults):
    decreases = [a[1] - b[1] for a, b in zip(samples, samples[1:]) if b[1] < a[1]]
    ahead = [(f - k) / k * 100 for _, f, k in samples if k >= AHEAD_FLOOR]
    ahead_bytes = [f - k for _, f, k in samples]
    counts = {}
    for f in faults:
        counts[f[1]] = counts.get(f[1], 0) + 1
    return {"mode": mode, "seed": seed, "moved_bytes": truth, "final_bytes": final,
            "final_percent": round((final - truth) / truth * 100, 4) if truth else None,
            "decreases": len(decreases), "largest_decrease_bytes": max(decreases, default=0),
            "max_ahead_percent": round(max(ahead, default=0.0), 4), "max_ahead_bytes": max(ahead_bytes, default=0),
            "samples": len(samples), "faults": counts, "failed_faults": [f for f in faults if len(f) > 2]}


def drive(spec_json):
    result = Driver(json.loads(spec_json)).run()
    print("RESULT " + json.dumps(result), flush=True)


# -- the outer part: households, daemons, one driver per mode ---------------------------------------

def run_mode(mode, seed, minutes, rate, folder):
    """Build the household, start its daemon and the fake ISP, run the driver in its LAN namespace."""
    folder = Path(folder) / mode
    with household.household(folder / "house", wan_rate=rate) as h:
        (folder / "house").mkdir(parents=True, exist_ok=True)
        daemon, url = None, None
        if mode == "snmp":
            daemon = h.snmpd()
        elif mode == "upnp":
            daemon, _ = h.miniupnpd()
            # the address "auto" finds it at: the machine's default gateway (the router's side of its LAN)
            url = f"http://{h.lan2_ip.rsplit('.', 1)[0]}.9:5555/rootDesc.xml"
        isp, base = netns.start_fake_isp(h.ns_link(h.internet, h.internet_ip))
        try:
            spec = {"mode": mode, "seed": seed, "minutes": minutes, "folder": str(folder), "isp": base,
                    "upnp_url": url, "daemon_pid": daemon.pid if daemon else None,
                    "house": {**h.__dict__, "folder": str(h.folder)}}
            out = subprocess.run(["ip", "netns", "exec", h.lan2, sys.executable, __file__, "--drive", json.dumps(spec)],
                                 capture_output=True, text=True)
            line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
            if not line:
                raise RuntimeError(f"{mode}: the driver failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
            return json.loads(line[-1][len("RESULT "):])
        finally:
            isp.terminate()
            for p in household.pids_in(h.router):
                household.stop_pid(p)


def soak(modes, seed, minutes, rate, folder):
    """Every mode side by side; ({mode: result}, {mode: the exception of a mode that failed})."""
    results, errors = {}, {}

    def one(mode):
        try:
            results[mode] = run_mode(mode, seed, minutes, rate, folder)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors[mode] = exc
    threads = [threading.Thread(target=one, args=(m,)) for m in modes]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return results, errors


def verdict(r):
    return (r["final_percent"] is not None and abs(r["final_percent"]) <= TARGETS["final_percent"]
            and r["decreases"] <= TARGETS["decreases"] and r["max_ahead_percent"] <= TARGETS["ahead_percent"])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=30)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--rate", default="150mbit", help="the ISP link's tc rate")
    p.add_argument("--json", action="store_true")
    p.add_argument("--keep", help="keep each mode's server log and data folder here")
    p.add_argument("--drive", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.drive:
        return drive(args.drive)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"chaos: seed {seed}, {args.minutes:g} min, modes {' '.join(args.modes)}, ISP link {args.rate}, "
          f"load {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="datacap-chaos-") as tmp:
        results, errors = soak(args.modes, seed, args.minutes, args.rate, args.keep or tmp)
    for mode, exc in errors.items():
        print(f"{mode:5}  FAIL  {exc}", flush=True)
    for mode in [m for m in args.modes if m in results]:
        r = results[mode]
        print(f"{mode:5}  moved {r['moved_bytes'] / 1e9:7.3f} GB  final {r['final_percent']:+.4f} %  "
              f"decreases {r['decreases']} (largest {r['largest_decrease_bytes'] / 1e6:.1f} MB)  "
              f"ahead at most {r['max_ahead_percent']:+.4f} % ({r['max_ahead_bytes'] / 1e6:+.1f} MB)  "
              f"{'ok' if verdict(r) else 'FAIL'}  faults {sum(r['faults'].values())}: "
              + ", ".join(f"{k} {v}" for k, v in sorted(r["faults"].items())), flush=True)
        for f in r["failed_faults"]:
            print(f"       fault at {f[0]} s {f[1]}: {f[2]}")
    print(f"load {os.getloadavg()[0]:.1f}; targets: final within {TARGETS['final_percent']} %, "
          f"{TARGETS['decreases']} decreases, ahead at most {TARGETS['ahead_percent']} %")
    if args.json:
        print(json.dumps(results))
    return 0 if not errors and all(verdict(r) for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
