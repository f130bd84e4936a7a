"""DHCP lease files: who has which address and what it calls itself (dnsmasq's format, and odhcpd's on OpenWrt).

dnsmasq (Debian /var/lib/misc/dnsmasq.leases, OpenWrt /tmp/dhcp.leases), one lease a line:
    1717171717 02:dc:00:00:00:01 192.168.1.23 laptop 01:02:dc:00:00:00:01      (DHCPv4: expiry MAC address name id)
    duid 00:01:00:01:2c:...                                                   (the server's DUID, then DHCPv6 leases)
    1717171717 3523481617 fd00::23 phone 00:01:00:01:2c:4f:1e:9a:02:dc:00:00:00:02   (expiry IAID address name DUID)
odhcpd (OpenWrt's `leasefile`, /tmp/hosts/odhcpd), one client a comment line:
    # br-lan 000100012c4f1e9a02dc00000002 3523481617 phone 1717171717 1 128 fd00::23/128 fd00::c0a8/128
A name of "*" or "-" is no name. A DHCPv6 client is known by its DUID: a DUID-LL or DUID-LLT carries the MAC.
Files are read again only when they change (stat each call).
"""
import ipaddress
import os

from datacap.devices.settings import mac as as_mac


def mac_of_duid(duid):
    """The MAC inside a DUID-LLT (type 1) or DUID-LL (type 3) of an Ethernet link, else None."""
    raw = duid.replace(":", "").replace("-", "").lower()
    try:
        data = bytes.fromhex(raw)
    except ValueError:
        return None
    if len(data) == 14 and data[:4] == b"\x00\x01\x00\x01":
        return as_mac(data[8:].hex(":"))
    if len(data) == 10 and data[:4] == b"\x00\x03\x00\x01":
        return as_mac(data[4:].hex(":"))
    return None


def _address(text):
    try:
        return str(ipaddress.ip_address(text.split("/", 1)[0]))
    except ValueError:
        return None


def _name(text):
    return None if text in ("*", "-", "") else text


def parse_dnsmasq(text):
    """[(MAC, address, name)] of a dnsmasq lease file (a DHCPv6 lease whose DUID names no MAC is left out)."""
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) < 4 or f[0] == "duid":
            continue
        addr = _address(f[2])
        mac = as_mac(f[1]) if ":" not in f[2] else (mac_of_duid(f[4]) if len(f) > 4 else None)
        if addr and mac:
            out.append((mac, addr, _name(f[3])))
    return out


def parse_odhcpd(text):
    """[(MAC, address, name)] of odhcpd's lease file."""
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) < 9 or f[0] != "#":
            continue
        duid = f[2]
        mac = as_mac(":".join(duid[i:i + 2] for i in range(0, 12, 2))) if f[3] == "ipv4" and len(duid) == 12 \
            else mac_of_duid(duid)
        if mac is None:
            continue
        for text_addr in f[8:]:
            addr = _address(text_addr)
            if addr:
                out.append((mac, addr, _name(f[4])))
    return out


def parse(text):
    """Either format, told apart by odhcpd's comment lines."""
    return parse_odhcpd(text) if any(x.startswith("# ") for x in text.splitlines()) else parse_dnsmasq(text)


class Leases:
    """The lease files of a gateway, read again when one changes: addresses and names by MAC."""

    def __init__(self, paths):
        self.paths = tuple(paths)
        self._seen = None  # the files' (path, mtime, size) at the last read
        self.by_address, self.names = {}, {}
        self.changed = False  # since the last read; the caller clears it

    def refresh(self):
        """Read the files again if any changed; True when it did."""
        seen = []
        for p in self.paths:
            try:
                st = os.stat(p)
                seen.append((p, st.st_mtime_ns, st.st_size))
            except OSError:
                continue
        if seen == self._seen:
            return False
        self._seen = seen
        by_address, names = {}, {}
        for p, _, _ in seen:
            try:
                with open(p, encoding="utf-8", errors="replace") as f:
                    entries = parse(f.read())
            except OSError:
                continue
            for mac, addr, name in entries:
                by_address[addr] = mac
                if name:
                    names[mac] = name
        self.by_address, self.names, self.changed = by_address, names, True
        return True
