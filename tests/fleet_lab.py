"""A fleet for tests and benches: sites behind their own WAN veths, each with the real datacap and
Debian's Prometheus in agent mode, sending to a central Prometheus (remote-write receiver, TLS, a
password per site) in a namespace of its own.

    host (dfm…) ── mgmt │ central ns, 10.238.o.250 on lo │ s0 ── wan │ site 0 ns: server.py + collector, agent ── lan ── a device (dfd…0)
                        │  prometheus :9090, rules.yml    │ s1 ── wan │ site 1 ns: …

Each site's only way out is its `wan` veth: the bytes its telemetry costs are that veth's counters. Each site
is the gateway of one LAN device (NAT out of `wan`), which datacap counts: one datagram to the central as the fleet
starts, so the dashboard's top devices have a device per site before any cost is measured.
The agents' configs come from datacap.fleet.agent_config (deploy/fleet/agent.yml), the central's from
deploy/fleet/central.yml and rules.yml. Addresses from 10.238.0.0/16; everything made is removed
afterwards, also on failure. Needs root.
"""
import contextlib
import itertools
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import requests
import yaml

import netns
from harness import stop_process
from datacap import config as configmod
from datacap.fleet import agent_config
from datacap.store import runtime_dir
from datacap.usage import cycles

ROOT = Path(__file__).resolve().parent.parent
FLEET = ROOT / "deploy" / "fleet"
DATACAP_PORT, AGENT_PORT, CENTRAL_PORT = 8127, 9090, 9090  # each in its own namespace: nothing to collide with
LAN_SITE, LAN_DEVICE = "192.168.77.1", "192.168.77.2"  # each site's LAN, in its own namespaces
PASSWORD = "fleet-lab-password"
PASSWORD_HASH = "$2b$04$lLkRXDGegeA8elPkAtUWKOLuaaWuycQJsLXz82l.PwFgox70rYxXK"  # bcrypt of PASSWORD, cost 4
_serial = itertools.count()


@dataclass
class Site:
    name: str
    ns: str
    ip: str
    folder: Path
    device_ns: str = ""
    device_mac: str = ""
    server: subprocess.Popen = None
    agent: subprocess.Popen = None
    logs: list = field(default_factory=list)

    def run(self, *argv, timeout=15):
        return subprocess.run(["ip", "netns", "exec", self.ns, *argv], capture_output=True, text=True,
                              timeout=timeout, cwd=ROOT)

    def api(self, path, body=None):
        """datacap's API on the site's loopback (GET, or POST with a JSON body)."""
        argv = ["curl", "-sS", "-m", "5", f"http://127.0.0.1:{DATACAP_PORT}{path}"]
        if body is not None:
            argv += ["-X", "POST", "-H", "Content-Type: application/json", "--data", json.dumps(body)]
        r = self.run(*argv)
        if r.returncode:
            raise OSError(f"{self.name} {path}: {r.stderr.strip()}")
        return json.loads(r.stdout)

    def wan_bytes(self):
        """Bytes through the site's WAN veth so far, both directions (its kernel counters)."""
        link = json.loads(netns.sh("ip", "-n", self.ns, "-s", "-j", "link", "show", "dev", "wan").stdout)[0]
        return link["stats64"]["rx"]["bytes"] + link["stats64"]["tx"]["bytes"]

    def telemetry(self):
        """datacap.fleet.telemetry's reading of the site's agent, run on the site."""
        r = self.run(sys.executable, "-m", "datacap.fleet.telemetry", "--agent", f"http://127.0.0.1:{AGENT_PORT}")
        if r.returncode:
            raise OSError(f"{self.name} telemetry: {r.stderr.strip()}")
        return json.loads(r.stdout)

    def reading(self):
        """(telemetry(), wan_bytes()) at one moment: taken again if a packet crossed the WAN meanwhile."""
        while True:
            before = self.wan_bytes()
            counters = self.telemetry()
            if self.wan_bytes() == before:
                return counters, before
            time.sleep(0.3)

    def log_tail(self, lines=20):
        return "\n".join(f"--- {p.name}\n" + "\n".join(p.read_text(errors="replace").splitlines()[-lines:])
                         for p in self.logs if p.exists())


@dataclass
class Fleet:
    tag: str
    central_ns: str
    central_ip: str
    folder: Path
    sites: list = field(default_factory=list)
    central: subprocess.Popen = None
    namespaces: list = field(default_factory=list)  # each named here before it is made: removed even half-built

    @property
    def url(self):
        return f"https://{self.central_ip}:{CENTRAL_PORT}"

    def get(self, path, **params):
        r = requests.get(self.url + path, params=params, timeout=10, verify=str(self.folder / "central.crt"),
                         auth=("grafana", PASSWORD))
        r.raise_for_status()
        return r.json()["data"]

    def query(self, q, at=None):
        """The central's instant query: [(labels, value)]."""
        data = self.get("/api/v1/query", query=q, **({"time": at} if at is not None else {}))
        return [(r["metric"], float(r["value"][1])) for r in data["result"]]

    def samples(self, selector, start, end):
        """Every raw sample of the selector's series between start and end: {site: [(t, v)]}."""
        data = self.get("/api/v1/query", query=f"{selector}[{int(end - start) + 1}s]", time=end)
        return {r["metric"].get("site"): [(float(t), float(v)) for t, v in r["values"]] for r in data["result"]}

    def cut(self, on=True):
        """The central unreachable from every site, or back: its namespace drops all it gets from them and
        all it would send them (nftables), like a path broken beyond the sites' WANs. What a site sends
        still crosses its WAN veth and is counted there, as its ISP would count it."""
        if on:
            rules = ('table inet fleetcut {\n chain in { type filter hook input priority 0; iifname "s*" drop; }\n'
                     ' chain out { type filter hook output priority 0; oifname "s*" drop; }\n}\n')
            subprocess.run(["ip", "netns", "exec", self.central_ns, "nft", "-f", "-"], input=rules, text=True,
                           check=True, capture_output=True)
        else:
            netns.sh("ip", "netns", "exec", self.central_ns, "nft", "delete", "table", "inet", "fleetcut")


def _build(fl, octet, count):
    """The namespaces, links, addresses and routes of the picture above; [(site namespace, its address)]."""
    sh, out = netns.sh, []
    fl.namespaces.append(fl.central_ns)
    sh("ip", "netns", "add", fl.central_ns)
    mgmt = f"dfm{fl.tag}"
    sh("ip", "link", "add", mgmt, "type", "veth", "peer", "name", f"dfn{fl.tag}")
    sh("ip", "link", "set", f"dfn{fl.tag}", "netns", fl.central_ns, "name", "mgmt")
    sh("ip", "addr", "add", f"10.238.{octet}.1/30", "dev", mgmt)
    sh("ip", "link", "set", mgmt, "up")
    for cmd in (f"ip addr add 10.238.{octet}.2/30 dev mgmt", "ip link set mgmt up", "ip link set lo up",
                f"ip addr add {fl.central_ip}/32 dev lo"):
        sh("ip", "netns", "exec", fl.central_ns, *cmd.split())
    sh("ip", "route", "add", f"{fl.central_ip}/32", "via", f"10.238.{octet}.2", "dev", mgmt)
    for i in range(count):
        ns, gw, ip = f"dfs{fl.tag}{i}", f"10.238.{octet}.{4 * i + 5}", f"10.238.{octet}.{4 * i + 6}"
        fl.namespaces.append(ns)
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", f"dfa{fl.tag}{i}", "type", "veth", "peer", "name", f"dfb{fl.tag}{i}")
        sh("ip", "link", "set", f"dfa{fl.tag}{i}", "netns", ns, "name", "wan")
        sh("ip", "link", "set", f"dfb{fl.tag}{i}", "netns", fl.central_ns, "name", f"s{i}")
        for cmd in (f"sysctl -qw net.ipv6.conf.s{i}.disable_ipv6=1", f"ip addr add {gw}/30 dev s{i}",
                    f"ip link set s{i} up"):
            sh("ip", "netns", "exec", fl.central_ns, *cmd.split())
        for cmd in ("sysctl -qw net.ipv6.conf.wan.disable_ipv6=1", f"ip addr add {ip}/30 dev wan",
                    "ip link set wan up", "ip link set lo up",
                    f"ip route add default via {gw}"):
            sh("ip", "netns", "exec", ns, *cmd.split())
        out.append((ns, ip, _lan(fl, ns, i)))
    return out


def _lan(fl, ns, i):
    """The site's LAN with one device behind NAT; (the device's namespace, its MAC)."""
    sh, dev, mac = netns.sh, f"dfd{fl.tag}{i}", f"02:dc:f1:00:00:{i:02x}"
    fl.namespaces.append(dev)
    sh("ip", "netns", "add", dev)
    sh("ip", "link", "add", f"dfe{fl.tag}{i}", "type", "veth", "peer", "name", f"dfg{fl.tag}{i}")
    sh("ip", "link", "set", f"dfe{fl.tag}{i}", "netns", ns, "name", "lan")
    sh("ip", "link", "set", f"dfg{fl.tag}{i}", "netns", dev, "name", "eth0")
    for cmd in ("sysctl -qw net.ipv6.conf.lan.disable_ipv6=1", "sysctl -qw net.ipv4.ip_forward=1",
                f"ip addr add {LAN_SITE}/24 dev lan", "ip link set lan up"):
        sh("ip", "netns", "exec", ns, *cmd.split())
    subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], check=True, capture_output=True, text=True,
                   input='table ip labnat {\n chain post { type nat hook postrouting priority 100; oifname "wan" masquerade; }\n}\n')
    for cmd in ("sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1", f"ip link set eth0 address {mac}",
                f"ip addr add {LAN_DEVICE}/24 dev eth0", "ip link set eth0 up", "ip link set lo up",
                f"ip route add default via {LAN_SITE}"):
        sh("ip", "netns", "exec", dev, *cmd.split())
    return dev, mac


def tls(folder, ip):
    """A self-signed certificate for the central's address, as the README makes one."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=datacap-central", "-addext", f"subjectAltName=IP:{ip}",
                    "-keyout", str(folder / "central.key"), "-out", str(folder / "central.crt")],
                   check=True, capture_output=True)


def shipped_args(default_file, own):
    """The flags a deploy/fleet/*.default file gives prometheus, with this lab's {flag: value} in place of its own."""
    text = (FLEET / default_file).read_text()
    argv = shlex.split(text.split('ARGS="', 1)[1].split('"', 1)[0])
    return [a for a in argv if a.split("=", 1)[0] not in own] + [f"{k}={v}" for k, v in own.items()]


def _start_central(fl, evaluation_interval):
    folder = fl.folder
    tls(folder, fl.central_ip)
    central = yaml.safe_load((FLEET / "central.yml").read_text())
    if evaluation_interval:  # else central.yml's own
        central["global"]["evaluation_interval"] = evaluation_interval
    central["rule_files"] = [str(FLEET / "rules.yml")]
    (folder / "central.yml").write_text(yaml.safe_dump(central))
    web = yaml.safe_load((FLEET / "central-web.yml").read_text())
    web["tls_server_config"] = {"cert_file": str(folder / "central.crt"), "key_file": str(folder / "central.key")}
    web["basic_auth_users"] = {name: PASSWORD_HASH for name in ["grafana", *(s.name for s in fl.sites)]}
    (folder / "central-web.yml").write_text(yaml.safe_dump(web))
    log = open(folder / "central.log", "ab")
    args = shipped_args("prometheus-central.default", {
        "--config.file": folder / "central.yml", "--web.config.file": folder / "central-web.yml",
        "--storage.tsdb.path": folder / "central-tsdb", "--web.listen-address": f"0.0.0.0:{CENTRAL_PORT}"})
    fl.central = subprocess.Popen(["ip", "netns", "exec", fl.central_ns, "prometheus", *args],
                                  stdout=log, stderr=subprocess.STDOUT)
    _wait(lambda: fl.get("/api/v1/status/buildinfo"), 30, "the central Prometheus", fl.central)


def _start_site(fl, site, scrape_interval, extra_cfg, probe_mbps):
    folder = site.folder
    folder.mkdir(parents=True)
    cfg_raw = {"site": site.name, "port": DATACAP_PORT, "interfaces": ["wan"], "sources": [{"type": "local"}],
               "test_urls": ["http://127.0.0.1:9/none"], "probe_interval_minutes": None, "stop_at_cap": False,
               "update_interval_seconds": 1, "fleet_agent_url": f"http://127.0.0.1:{AGENT_PORT}",
               "devices": {"lan": ["lan"], "names": {site.device_mac: f"laptop at {site.name}"}}, **extra_cfg}
    (folder / "config.json").write_text(json.dumps(cfg_raw, indent=2))
    if probe_mbps:  # a probe of this cycle, so the probe-speed panel has a figure per site
        (folder / "data").mkdir()
        start = cycles.cycle_start(cfg_raw.get("billing_day", 1), date.today()).isoformat()
        (folder / "data" / "probes.json").write_text(json.dumps({"probes": [{
            "id": f"seed-{site.name}", "time": datetime.now(timezone.utc).isoformat(), "cycle_start": start,
            "cycle_used_bytes": 0, "bytes": 10 ** 7, "mbps": probe_mbps, "quiet": True}]}))
    site.logs = [folder / "server.log", folder / "agent.log"]
    site.server = subprocess.Popen(
        ["ip", "netns", "exec", site.ns, sys.executable, str(ROOT / "server.py"), "--config",
         str(folder / "config.json"), "--data-dir", str(folder / "data"), "--no-browser"],
        stdout=open(site.logs[0], "ab"), stderr=subprocess.STDOUT, cwd=folder)
    (folder / "central.password").write_text(PASSWORD)
    cfg = configmod.load(folder / "config.json")
    (folder / "agent.yml").write_text(agent_config.render(
        cfg, fl.url, password_file=str(folder / "central.password"), ca_file=str(fl.folder / "central.crt"),
        scrape_interval=scrape_interval))
    args = shipped_args("prometheus-agent.default", {
        "--config.file": folder / "agent.yml", "--storage.agent.path": folder / "agent-wal",
        "--web.listen-address": f"127.0.0.1:{AGENT_PORT}"})
    site.agent = subprocess.Popen(["ip", "netns", "exec", site.ns, "prometheus", *args],
                                  stdout=open(site.logs[1], "ab"), stderr=subprocess.STDOUT)


def _wait(probe, timeout, what, proc=None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            if probe():
                return
        except (OSError, ValueError, requests.RequestException) as exc:
            last = exc
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer in {timeout} s (last: {last!r})")


@contextlib.contextmanager
def fleet(folder, names, scrape_interval="5s", evaluation_interval="2s", site_cfg=None, probe_mbps=None):
    """Yield a started Fleet of one site per name; site_cfg[name] adds to that site's config.json.

    The intervals default to short ones for tests; None keeps the shipped agent.yml's and central.yml's.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid() % 100000:05d}{next(_serial) % 100:02d}"
    fl = Fleet(tag, f"dfc{tag}", "", folder)
    try:
        with netns.claim_subnet("10.238") as octet:
            fl.central_ip = f"10.238.{octet}.250"
            links = _build(fl, octet, len(names))
        fl.sites = [Site(name, ns, ip, folder / f"site-{i}", dev, mac)
                    for i, (name, (ns, ip, (dev, mac))) in enumerate(zip(names, links))]
        _start_central(fl, evaluation_interval)
        for s in fl.sites:
            _start_site(fl, s, scrape_interval, (site_cfg or {}).get(s.name, {}), (probe_mbps or {}).get(s.name))
        for s in fl.sites:
            try:
                _wait(lambda: s.api("/healthz") is not None, 20, f"datacap at {s.name}", s.server)
                _wait(lambda: s.run("curl", "-sf", f"http://127.0.0.1:{AGENT_PORT}/-/ready").returncode == 0, 20,
                      f"the agent at {s.name}", s.agent)
                _wait(lambda: s.api("/api/devices").get("live"), 20, f"device counting at {s.name}", s.server)
                netns.sh("ip", "netns", "exec", s.device_ns, sys.executable, "-c", "import socket; socket.socket("
                         f"socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x' * 100, ('{fl.central_ip}', 9))")
                _wait(lambda: any(d["cycle_bytes"] for d in s.api("/api/devices")["devices"]), 20,
                      f"the LAN device counted at {s.name}", s.server)
            except RuntimeError as exc:
                raise RuntimeError(f"{exc}\n{s.log_tail()}") from None
        yield fl
    finally:
        _remove(fl)


def _stop(proc):
    stop_process(proc, 15)


def _remove(fl):
    """Stop what runs (each server stops its own children), then delete the namespaces and links."""
    for s in fl.sites:
        _stop(s.agent)
        _stop(s.server)
    _stop(fl.central)
    for ns in fl.namespaces:
        for pid in netns.sh("ip", "netns", "pids", ns, check=False).stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        netns.sh("ip", "netns", "del", ns, check=False)
    netns.sh("ip", "link", "del", f"dfm{fl.tag}", check=False)
    for s in fl.sites:
        shutil.rmtree(runtime_dir(s.folder / "data"), ignore_errors=True)
