"""Is there an Internet Gateway Device on this LAN? One SSDP search, with the standard library only.

"sources": "auto" asks this every few minutes on every machine, most of which have no UPnP router;
async-upnp-client (aiohttp, asyncio, ssl: some 15 MB of the collector's memory) is loaded only once
a gateway has answered (sources/upnp.py). The search is the protocol's smallest part: a multicast
M-SEARCH for the IGD device types, and the LOCATION header of each answer.
"""
import email.parser
import socket
import time
from urllib.parse import urlparse

ADDRESS = ("239.255.255.250", 1900)
DEVICE_TYPES = ("urn:schemas-upnp-org:device:InternetGatewayDevice:1",
                "urn:schemas-upnp-org:device:InternetGatewayDevice:2")


def _request(st, mx):
    return (f'M-SEARCH * HTTP/1.1\r\nHOST: {ADDRESS[0]}:{ADDRESS[1]}\r\nMAN: "ssdp:discover"\r\n'
            f"MX: {mx}\r\nST: {st}\r\n\r\n").encode()


def _location(packet):
    """The LOCATION of an SSDP answer for an IGD, or None."""
    head, _, rest = packet.decode("utf-8", "replace").partition("\r\n")
    if not head.startswith("HTTP/1.1 200"):
        return None
    headers = email.parser.Parser().parsestr(rest, headersonly=True)
    if headers.get("ST") not in DEVICE_TYPES:
        return None
    loc = headers.get("LOCATION")
    return loc if loc and urlparse(loc).scheme == "http" and urlparse(loc).hostname else None


def search(timeout=3.0):
    """Description URLs of the gateways that answered within `timeout` seconds, sorted."""
    found = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP) as s:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 2)
        for st in DEVICE_TYPES:
            s.sendto(_request(st, max(1, int(timeout) - 1)), ADDRESS)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            s.settimeout(left)
            try:
                packet, _ = s.recvfrom(4096)
            except (socket.timeout, OSError):
                break
            loc = _location(packet)
            if loc:
                found.add(loc)
    return sorted(found)
