"""Device counting at household scale: 250 devices on a real gateway, the collector's footprint, the API's latency
with a year of history, and kill -9 at random moments.

    sudo python bench/devices.py [--devices 250] [--seconds 120] [--kills 15] [--conntrack]

A gateway namespace (tests/gateway.py) with one LAN namespace holding `--devices` macvlan interfaces, each its own
MAC, IPv4 and IPv6 address (a device), named in a dnsmasq-format leases file. Every device sends a UDP datagram over
IPv4 and one over IPv6 to an echo server on the internet side every second, and gets it back: 4 set elements per
device change every second (the worst case for the reader). Then:

1. devices.db gets a simulated year (every device, every day, 400 days) and usage.json the line's 400 days;
2. collector.py is started and killed with SIGKILL --kills times at random moments while the traffic goes on, then
   run once more with the traffic stopped, and stopped: devices.db must hold exactly what the kernel's counters hold;
3. server.py starts in the gateway's namespace (its collector at a 1-s interval), the traffic again: the collector's
   CPU share, peak RSS and disk writes (/proc/PID/io write_bytes; the data folder on the real disk, the live files
   in tmpfs) over --seconds;
4. GET /api/usage, /api/devices and /api/devices/<mac> (400 days of history) timed from inside the namespace.
--conntrack: also the cost of reading the same traffic from conntrack's accounting (`conntrack -L`), for the README.
"""
import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
import gateway  # noqa: E402
from harness import exit_cleanly_on_sigterm, free_port, write_config  # noqa: E402

CROWD = """
import socket, sys, time
n, prefix6 = int(sys.argv[1]), sys.argv[2]
socks = []
for i in range(n):
    for family, addr, dst in ((socket.AF_INET, f"172.29.{i // 250}.{i % 250 + 2}", ("198.51.100.1", 7)),
                              (socket.AF_INET6, f"{prefix6}{i + 0x1000:x}", ("2001:db8:dc::1", 7))):
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, f"m{i}".encode())
        s.bind((addr, 0))
        s.setblocking(False)
        socks.append((s, dst))
while True:
    for s, dst in socks:
        try:
            s.sendto(b"x" * 100, dst)
            while s.recv(2048):
                pass
        except OSError:
            pass
    time.sleep(1)
"""
ECHO = """
import socket, selectors
sel = selectors.DefaultSelector()
for family, addr in ((socket.AF_INET, "198.51.100.1"), (socket.AF_INET6, "2001:db8:dc::1")):
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((addr, 7))
    sel.register(s, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        data, peer = key.fileobj.recvfrom(2048)
        key.fileobj.sendto(data, peer)
"""
TIMING = """
import json, statistics, sys, time, requests
url, n = sys.argv[1], int(sys.argv[2])
s = requests.Session()
out = {}
for path in sys.argv[3:]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        r = s.get(url + path, timeout=10)
        times.append((time.perf_counter() - t) * 1000)
        assert r.ok, r.text
    times.sort()
    out[path] = (statistics.median(times), times[int(0.99 * len(times)) - 1], len(r.content))
print(json.dumps(out))
"""


def mac(i):
    return f"02:cd:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}:01"


def send(h, n):
    """The crowd's traffic: every device, a datagram each way over IPv4 and IPv6 every second (the last of h.procs)."""
    h.procs.append(subprocess.Popen(h.ns(h.clients[0]) + [sys.executable, "-c", CROWD, str(n), f"fd00:239:{h.o}::"]))


def crowd(h, n):
    """n devices (macvlans) in client 1's namespace, their addresses, routes, and the leases naming them."""
    ns, run = h.clients[0], lambda *a: h.sh(h.clients[0], *a)
    h.sh(h.gateway, "ip", "addr", "add", "172.29.0.1/22", "dev", "lan")
    for key in ("all", "default"):
        for k, v in (("arp_ignore", 1), ("arp_announce", 2)):
            run("sysctl", "-qw", f"net.ipv4.conf.{key}.{k}={v}")
    script = []
    prefix6 = f"fd00:239:{h.o}::"
    for i in range(n):
        v4 = f"172.29.{i // 250}.{i % 250 + 2}"
        script += [f"link add link eth0 name m{i} address {mac(i)} type macvlan mode bridge",
                   f"addr add {v4}/22 dev m{i}", f"addr add {prefix6}{i + 0x1000:x}/64 dev m{i} nodad",
                   f"link set m{i} up", f"route add default via 172.29.0.1 dev m{i} metric {100 + i}",
                   f"route add ::/0 via {prefix6}1 dev m{i} metric {100 + i}"]
    subprocess.run(h.ns(ns) + ["ip", "-batch", "-"], input="\n".join(script) + "\n", text=True, check=True)
    h.leases.write_text("".join(f"1900000000 {mac(i)} 172.29.{i // 250}.{i % 250 + 2} device-{i:03d} *\n"
                                for i in range(n)))
    h.procs.append(subprocess.Popen(h.ns(h.internet) + [sys.executable, "-c", ECHO]))
    time.sleep(0.3)


def simulate_year(data_dir, n, days=400):
    """devices.db with every device's every day (one line), and usage.json with the line's days, as the collector
    writes them (the WAN and one more interface a day)."""
    from datacap import store
    from datacap.devices import device_db
    from datacap.usage import ledger_file
    db = device_db.DeviceDb(device_db.path(data_dir))
    today = date.today()
    for d in range(days, 0, -1):
        day = (today - timedelta(days=d)).isoformat()
        rows = {(day, mac(i), "Internet"): (random.randrange(10 ** 9), random.randrange(10 ** 8)) for i in range(n)}
        db.flush(rows, {}, set(), {}, {}, {})
    db.close()
    now = datetime.now().astimezone()
    doc, line = ledger_file.empty(now), ledger_file.empty_line(now - timedelta(days=days))
    for d in range(days, 0, -1):
        line["days"][(today - timedelta(days=d)).isoformat()] = {
            "wan": [random.randrange(10 ** 11), random.randrange(10 ** 10)], "eth1": [random.randrange(10 ** 9), 0]}
    doc["lines"] = {"Internet": line}
    store.write_json_atomic(data_dir / ledger_file.NAME, doc)


def write_bytes(pid):
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def footprint(proc, seconds):
    ps = psutil.Process(proc.pid)
    cpu0, io0, t0 = sum(ps.cpu_times()[:2]), write_bytes(proc.pid), time.monotonic()
    peak, loads = 0, []
    while time.monotonic() - t0 < seconds:
        peak = max(peak, ps.memory_info().rss)
        loads.append(os.getloadavg()[0])
        time.sleep(1)
    cpu1, io1, t1 = sum(ps.cpu_times()[:2]), write_bytes(proc.pid), time.monotonic()
    hwm = int(next(x.split()[1] for x in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                   if x.startswith("VmHWM"))) * 1024
    return (100 * (cpu1 - cpu0) / (t1 - t0), max(peak, hwm) / 1e6, (io1 - io0) / 1e3 / ((t1 - t0) / 60),
            (min(loads), max(loads)))


def kernel_total(h):
    """Every byte datacap's sets have counted, as the line's counter sees them (14-byte link header per packet)."""
    doc = json.loads(h.sh(h.gateway, "nft", "-j", "list", "table", "inet", "datacap").stdout)
    total = 0
    for item in doc["nftables"]:
        for e in (item.get("set") or {}).get("elem", []):
            c = e["elem"]["counter"]
            total += c["bytes"] + 14 * c["packets"]
    return total


def db_total(data_dir):
    """Bytes devices.db holds for today (the simulated year ends yesterday)."""
    from datacap.devices import device_db
    return sum(rx + tx for _, _, _, rx, tx in device_db.Reader(data_dir).days(date.today().isoformat()))


def chaos(h, config, data_dir, kills):
    """collector.py killed with SIGKILL at random moments during the traffic, then run once more with the traffic
    stopped and stopped cleanly: (the kernel's total, devices.db's total for today)."""
    argv = h.ns(h.gateway) + [sys.executable, str(ROOT / "collector.py"), "--config", str(config), "--data-dir",
                              str(data_dir), "--interval", "1"]
    rnd = random.Random(26)
    for _ in range(kills):
        proc = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0.8, 4.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    h.procs.pop().kill()  # the crowd stops sending: the counters stand still
    time.sleep(1)
    proc = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
    time.sleep(4)
    proc.send_signal(signal.SIGTERM)
    proc.wait(15)
    return kernel_total(h), db_total(data_dir)


def conntrack_cost(h):
    t = time.process_time()
    r0 = os.times()
    out = h.sh(h.gateway, "conntrack", "-L", "-o", "extended", check=False)
    r1 = os.times()
    flows = out.stdout.count("\n")
    return flows, 1000 * ((r1.children_user + r1.children_system) - (r0.children_user + r0.children_system)), t


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, default=250)
    p.add_argument("--seconds", type=float, default=330, help="the footprint's window (one devices.db flush: 300 s)")
    p.add_argument("--kills", type=int, default=15)
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--conntrack", action="store_true")
    args = p.parse_args()
    exit_cleanly_on_sigterm()
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp, gateway.home(Path(tmp) / "home", n_clients=1) as h:
        h.dnsmasq()
        gateway.up(h)
        crowd(h, args.devices)
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        t0 = time.monotonic()
        simulate_year(data_dir, args.devices)
        print(f"simulated year: devices.db {(data_dir / 'devices.db').stat().st_size / 1e6:.1f} MB "
              f"({args.devices} devices x 400 days), usage.json {(data_dir / 'usage.json').stat().st_size / 1e3:.0f} KB, "
              f"built in {time.monotonic() - t0:.0f} s")
        port = free_port()
        config = write_config(Path(tmp), port=port, interfaces="auto", update_interval_seconds=1,
                              devices={"lan": ["lan"], "leases": [str(h.leases)]})
        send(h, args.devices)
        # kill -9 first: the devices' counters are in devices.db afterwards, so the footprint below is the steady
        # state (a device's first flush also writes its counters', addresses' and name's rows: 190 KB once at 250)
        kernel, stored = chaos(h, config, data_dir, args.kills)
        print(f"kill -9 x {args.kills} at random moments during traffic, then a clean stop: devices.db holds {stored:,} B "
              f"counted today, datacap's kernel counters {kernel:,} B: difference {stored - kernel:+,} B (target 0)")
        send(h, args.devices)
        server = subprocess.Popen(h.ns(h.gateway) + [sys.executable, str(ROOT / "server.py"), "--config", str(config),
                                                     "--data-dir", str(data_dir), "--no-browser"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            collector = None
            while time.monotonic() < deadline and collector is None:
                kids = [c for c in psutil.Process(server.pid).children(recursive=True) if "collector.py" in " ".join(c.cmdline())]
                collector = kids[0] if kids else None
                time.sleep(0.5)
            time.sleep(8)  # start-up is not the steady state
            counted = json.loads(h.sh(h.gateway, "curl", "-s", f"http://127.0.0.1:{port}/api/devices").stdout)
            print(f"{len(counted['devices'])} devices counted, e.g. {counted['devices'][0]['name']}")
            cpu, rss, disk, loads = footprint(collector, args.seconds)
            print(f"collector, {args.devices} devices ({4 * args.devices} counters changing every second), 1-s interval, "
                  f"{args.seconds:.0f} s (a devices.db flush every 300 s, the ledger's every 60 s): CPU {cpu:.2f} % of one "
                  f"core, peak RSS {rss:.1f} MB, disk writes {disk:.1f} KB/min (targets <= 1 %, <= 40 MB, <= 60 KB/min; "
                  f"load {loads[0]:.1f}-{loads[1]:.1f})")
            paths = ["/api/usage", "/api/devices", f"/api/devices/{mac(7)}"]
            out = h.sh(h.gateway, sys.executable, "-c", TIMING, f"http://127.0.0.1:{port}", str(args.requests), *paths)
            for path, (median, p99, size) in json.loads(out.stdout).items():
                target = "; target p99 <= 20 ms" if path in paths[:2] else ", 400 days of history"
                print(f"GET {path}: median {median:.1f} ms, p99 {p99:.1f} ms ({size / 1e3:.0f} KB{target}; "
                      f"load {os.getloadavg()[0]:.1f})")
            if args.conntrack:
                flows, ms, _ = conntrack_cost(h)
                print(f"conntrack -L -o extended: {flows} flows, {ms:.1f} ms of CPU per read (and flows that end between "
                      f"two reads are gone with their bytes)")
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(20)


if __name__ == "__main__":
    main()
