"""Which interfaces exist, which carry the default route, and which count toward the cap."""
import socket
import struct
import time

import psutil

# Never counted under "auto": loopback, containers, bridges, VMs and tunnels (a tunnel's
# bytes are already counted on its carrier, so counting both counts twice).
EXCLUDED_PREFIXES = (
    "lo", "docker", "veth", "br-", "virbr", "vnet", "tun", "tap", "wg", "tailscale", "zt", "utun",
    "vboxnet", "vmnet", "cni", "flannel", "cali", "kube", "lxc", "lxd", "ipsec", "gre", "sit",
    "dummy", "ifb", "nlmon", "ip6tnl", "awdl", "llw", "bridge", "anpi", "gif", "stf",
)


def excluded(name):
    return name.startswith(EXCLUDED_PREFIXES)


def read_counters():
    """{name: (rx_bytes, tx_bytes)} straight from the kernel, no wrap handling."""
    return {name: (c.bytes_recv, c.bytes_sent)
            for name, c in psutil.net_io_counters(pernic=True, nowrap=False).items()}


def _ipv4_default_routes():
    """[(interface, gateway hex)] of the IPv4 default routes in /proc/net/route."""
    try:
        with open("/proc/net/route") as f:
            rows = [line.split() for line in f.readlines()[1:]]
    except OSError:
        return []
    return [(p[0], p[2]) for p in rows if len(p) > 7 and p[1] == "00000000" and p[7] == "00000000"]


def _proc_default_routes():
    names = {name for name, _ in _ipv4_default_routes()}
    try:
        with open("/proc/net/ipv6_route") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 10 and parts[0] == "0" * 32 and parts[1] == "00":
                    names.add(parts[9])
    except OSError:
        pass
    return names


def default_gateways():
    """The IPv4 addresses the default routes go through (the household's router, usually one)."""
    out = set()
    for _, gateway in _ipv4_default_routes():
        try:
            if int(gateway, 16):
                out.add(socket.inet_ntoa(struct.pack("<I", int(gateway, 16))))
        except ValueError:
            pass
    return out


def default_route_interfaces():
    """Interfaces that carry a default route (IPv4 or IPv6), minus tunnels and loopback."""
    return {n for n in _proc_default_routes() if not excluded(n)}


def counted_interfaces(setting, present, default_routes=default_route_interfaces):
    """The names to count: an explicit list as given, or "auto"."""
    if setting != "auto":
        return [n for n in setting]
    names = default_routes()
    if not names:  # no routing table we can read (macOS) or only tunnels: every real interface that is up
        stats = psutil.net_if_stats()
        names = {n for n in present if not excluded(n) and n in stats and stats[n].isup}
    return sorted(names)


def read_boot_id():
    """The kernel's id of this boot (changes on every reboot, unlike btime, which NTP moves); None elsewhere."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip() or None
    except OSError:
        return None


def link_bps(name):
    """Upper bound on bytes/s an interface can carry, for the plausibility checks; None when unknown."""
    try:
        speed = psutil.net_if_stats()[name].speed  # Mbit/s, 0 when unknown (ppp, wwan, many Wi-Fi drivers)
    except (KeyError, OSError):
        speed = 0
    return speed * 1e6 / 8 * 1.5 if speed and speed > 0 else None


def boot_clock():
    """Seconds since boot, suspend included, comparable across our restarts."""
    if hasattr(time, "CLOCK_BOOTTIME"):
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    return time.monotonic()
