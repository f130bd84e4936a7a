"""datacap's own nftables table on a gateway: per-address counters of LAN devices, the gateway's own traffic, and
the drop rules of paused devices. Nothing here reads or changes any other table.

    forward, priority -300 (before any firewall):  to a LAN device        -> @down4 / @down6 {address . from-if}
    forward, priority +300 (after every firewall): paused device          -> drop
                                                   from a LAN device      -> @up4 / @up6 {address . to-if}
    input -300 / output +300, and forwarded between two non-LAN interfaces -> @own_in / @own_out {interface}

Arriving traffic is counted before anything may drop it (the ISP counted it), leaving traffic after (what a
firewall or a pause drops never reaches the internet). The sets are dynamic, with a counter per element, read
over netlink (netlink.py); elements unseen for a week expire (IPv6 privacy addresses come and go). Rules are
replaced in one `nft -f` transaction that never touches the sets, so counters survive a rule change and a
datacap restart; the table goes only when device counting is turned off.
"""
import ipaddress
import logging
import os
import socket
import subprocess

log = logging.getLogger("collector")

TABLE = "datacap"
DEVICE_SETS = {"up4": ("ipv4_addr", "tx"), "down4": ("ipv4_addr", "rx"),
               "up6": ("ipv6_addr", "tx"), "down6": ("ipv6_addr", "rx")}  # set -> (address type, the device's direction)
OWN_SETS = {"own_in": "rx", "own_out": "tx"}
IFNAMSIZ = 16
ELEMENT_TIMEOUT = "7d"
NFT_TIMEOUT_S = 10


class NftError(RuntimeError):
    pass


def _names(ifnames):
    return "{ " + ", ".join(f'"{n}"' for n in ifnames) + " }"


def script(lan):
    """The whole table as one nft transaction: sets added if missing (their counters kept), chains' rules replaced."""
    lan = _names(lan)
    t = f"inet {TABLE}"
    out = [f"add table {t}"]
    for name, (kind, _) in DEVICE_SETS.items():
        out.append(f"add set {t} {name} {{ type {kind} . ifname; size 65535; flags dynamic, timeout; "
                   f"timeout {ELEMENT_TIMEOUT}; counter; }}")
    for name in OWN_SETS:
        out.append(f"add set {t} {name} {{ type ifname; size 1024; flags dynamic, timeout; timeout {ELEMENT_TIMEOUT}; counter; }}")
    out += [f"add set {t} paused_mac {{ type ether_addr; }}", f"add set {t} paused4 {{ type ipv4_addr; }}",
            f"add set {t} paused6 {{ type ipv6_addr; }}"]
    for chain, hook, prio in (("arrive", "forward", -300), ("leave", "forward", 300),
                              ("own_arrive", "input", -300), ("own_leave", "output", 300)):
        out += [f"add chain {t} {chain} {{ type filter hook {hook} priority {prio}; policy accept; }}",
                f"flush chain {t} {chain}"]
    to_lan, from_lan = f"oifname {lan} iifname != {lan}", f"iifname {lan} oifname != {lan}"
    out += [f"add rule {t} arrive {to_lan} update @down4 {{ ip daddr . iifname }}",
            f"add rule {t} arrive {to_lan} update @down6 {{ ip6 daddr . iifname }}",
            f"add rule {t} arrive iifname != {lan} oifname != {lan} update @own_in {{ iifname }}",
            f"add rule {t} leave {from_lan} ether saddr @paused_mac drop",
            f"add rule {t} leave {from_lan} ip saddr @paused4 drop",
            f"add rule {t} leave {from_lan} ip6 saddr @paused6 drop",
            f"add rule {t} leave {to_lan} ip daddr @paused4 drop",
            f"add rule {t} leave {to_lan} ip6 daddr @paused6 drop",
            f"add rule {t} leave {from_lan} update @up4 {{ ip saddr . oifname }}",
            f"add rule {t} leave {from_lan} update @up6 {{ ip6 saddr . oifname }}",
            f"add rule {t} leave iifname != {lan} oifname != {lan} update @own_out {{ oifname }}",
            f'add rule {t} own_arrive iifname != {lan} iifname != "lo" update @own_in {{ iifname }}',
            f'add rule {t} own_leave oifname != {lan} oifname != "lo" update @own_out {{ oifname }}']
    return "\n".join(out) + "\n"


def pause_script(macs, v4, v6):
    """Who is paused, replaced in one transaction."""
    t = f"inet {TABLE}"
    out = []
    for name, items in (("paused_mac", sorted(macs)), ("paused4", sorted(v4)), ("paused6", sorted(v6))):
        out.append(f"flush set {t} {name}")
        if items:
            out.append(f"add element {t} {name} {{ {', '.join(items)} }}")
    return "\n".join(out) + "\n"


def run(text, nft="nft"):
    """Apply an nft script atomically; NftError with nft's own words when it is refused."""
    try:
        r = subprocess.run([nft, "-f", "-"], input=text, capture_output=True, text=True, timeout=NFT_TIMEOUT_S)
    except FileNotFoundError:
        raise NftError("nft is not installed (apt-get install nftables)") from None
    except subprocess.TimeoutExpired:
        raise NftError("nft did not answer in time") from None
    if r.returncode != 0:
        raise NftError((r.stderr or r.stdout).strip().splitlines()[0] if (r.stderr or r.stdout).strip()
                       else f"nft exited with {r.returncode}")


def install(lan, nft="nft"):
    run(script(lan), nft)


def remove(nft="nft"):
    """Our table and nothing else; absent already is fine."""
    try:
        run(f"destroy table inet {TABLE}\n", nft)
    except NftError:
        try:
            run(f"delete table inet {TABLE}\n", nft)  # nft before 1.0.8 has no destroy
        except NftError as exc:
            if "No such file" not in str(exc):
                raise


def decode(set_name, key):
    """(address or None, interface name) from an element key as the kernel stores it."""
    if set_name in OWN_SETS:
        return None, key[:IFNAMSIZ].split(b"\0", 1)[0].decode(errors="replace")
    width = 4 if set_name.endswith("4") else 16
    addr = ipaddress.ip_address(key[:width])
    return str(addr), key[width:width + IFNAMSIZ].split(b"\0", 1)[0].decode(errors="replace")


ARPHRD_ETHER = 1
ETH_HLEN = 14


def header_bytes(ifname):
    """The link header the interface's own counters add to each packet nftables counts (14 on Ethernet, VLANs and
    veths; 0 on PPP, WireGuard and other tunnels), so a device's bytes add up with the line's counter."""
    try:
        with open(f"/sys/class/net/{ifname}/type") as f:
            return ETH_HLEN if int(f.read()) == ARPHRD_ETHER else 0
    except (OSError, ValueError):
        return None


class Kernel:
    """The gateway's kernel as the device counter uses it: our table, its counters, the neighbour table."""

    def __init__(self, nft="nft"):
        from datacap.devices import netlink
        self.nft, self._netlink = nft, netlink
        self._reader = None
        self._headers = {}  # interface -> link header bytes, remembered after the interface is gone
        self._names = {}  # set -> {key bytes: (element name, interface)}
        self.address_of = {}  # element name -> its address (None for the gateway's own)

    def install(self, lan):
        install(lan, self.nft)
        self._lan = tuple(lan)

    def _lan_indexes(self):
        out = set()
        for name in getattr(self, "_lan", ()):
            try:
                out.add(socket.if_nametoindex(name))
            except OSError:
                pass  # not there (yet)
        return out

    def remove(self):
        remove(self.nft)

    def pause(self, macs, v4, v6):
        run(pause_script(macs, v4, v6), self.nft)

    def neighbours(self):
        """{address: MAC} of the devices on the LAN interfaces (not the ISP's router on the WAN)."""
        return self._netlink.neighbours(self._lan_indexes())

    def netns(self):
        try:
            return os.stat("/proc/self/ns/net").st_ino
        except OSError:
            return None

    def read(self):
        """({element: bytes as the line's counter sees them}, table handle or None when the table is gone). An
        element is named "<set> <address> <interface>" ("own_in <interface>" for the gateway's own traffic); the
        names are made once per element (formatting 1000 addresses every second was half the collector's CPU)."""
        if self._reader is None:
            self._reader = self._netlink.Reader()
        try:
            handle = self._reader.table_handle(TABLE)
            if handle is None:
                return {}, None
            out, headers = {}, self._headers
            for set_name in (*DEVICE_SETS, *OWN_SETS):
                names = self._names.setdefault(set_name, {})
                for key, (nbytes, packets) in self._reader.set_counters(TABLE, set_name).items():
                    known = names.get(key)
                    if known is None:
                        known = names[key] = self._name(set_name, key)
                    hdr = headers.get(known[1])
                    out[known[0]] = nbytes + (self._header(known[1]) if hdr is None else hdr) * packets
        except OSError:
            self._reader.close()
            self._reader = None
            raise
        if sum(map(len, self._names.values())) > 4 * len(out) + 1024:  # elements come and go: forget the gone
            self._names = {s: {k: v for k, v in d.items() if v[0] in out} for s, d in self._names.items()}
            self.address_of = {e: a for e, a in self.address_of.items() if e in out}
        return out, handle

    def _name(self, set_name, key):
        addr, ifname = decode(set_name, key)
        element = f"{set_name} {addr} {ifname}" if addr else f"{set_name} {ifname}"
        self.address_of[element] = addr
        return element, ifname

    def _header(self, ifname):
        hdr = header_bytes(ifname)
        if hdr is None:
            return ETH_HLEN  # no such interface (yet): the usual, until it shows itself
        self._headers[ifname] = hdr
        return hdr
