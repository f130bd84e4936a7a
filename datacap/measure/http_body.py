"""One HTTP GET as the streams use it: the request (headers, timeouts, verified TLS; redirects and
proxies from the environment through urllib.request) and its body, read into the caller's buffer."""
import functools
import http.client
import os
import socket
import ssl
import struct
import time
import urllib.error
import urllib.parse
import urllib.request

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 10.0
# A fast plain-HTTP stream's read returns when WAKE_BYTES have come (SO_RCVLOWAT) or WAKE_S has
# passed with something (SO_RCVTIMEO): few wake-ups at 1 Gbit/s, counts never late. Only once its
# receive buffer holds 4 x WAKE_BYTES (a smaller one would make the kernel clamp the window to the
# mark). Slower streams wake for every arrival, as TCP on a slow or policed link likes best.
WAKE_BYTES = 1 << 17
WAKE_S = 0.05
FAST_BPS = 12.5e6  # 100 Mbit/s on one stream: from here on a stream is woken in batches ...
SLOW_BPS = FAST_BPS / 2  # ... and below this again for every arrival
RATE_READS, RATE_S = 8, 0.25  # the clock is read every 8 reads; the rate judged over 0.25 s or more
USER_AGENT = "datacap (ISP data-cap tester)"
HEADERS = {"Accept-Encoding": "identity", "User-Agent": USER_AGENT, "Cache-Control": "no-cache"}
ERRORS = (OSError, http.client.HTTPException, ValueError)  # URLError and timeouts are OSErrors


class StreamError(Exception):
    pass


@functools.lru_cache(maxsize=None)
def tls_context():
    """Verify against the same CA bundle requests uses (certifi), else the system's; built on first use."""
    try:
        import certifi
        return ssl.create_default_context(cafile=certifi.where())
    except ImportError:
        return ssl.create_default_context()


def bound_connection(device):
    """socket.create_connection whose socket leaves by interface `device` (SO_BINDTODEVICE, root), or from its
    address where binding to it is not allowed: a test over one line of a machine with several."""
    def connect(address, timeout, source_address=None):
        host, port = address
        error = OSError(f"cannot resolve {host}")
        for family, kind, proto, _, addr in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
            sock = socket.socket(family, kind, proto)
            try:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device.encode())
                except PermissionError:
                    sock.bind((interface_address(device, family), 0))
                sock.settimeout(timeout)
                sock.connect(addr)
                return sock
            except OSError as exc:
                error = exc
                sock.close()
        raise error
    return connect


def interface_address(device, family):
    """The interface's first address of that family (where binding to the device is not allowed)."""
    import psutil
    for a in psutil.net_if_addrs().get(device, []):
        if a.family == family:
            return a.address.split("%")[0]
    raise OSError(f"interface {device} has no {'IPv6' if family == socket.AF_INET6 else 'IPv4'} address")


class _Connection(http.client.HTTPConnection):
    """Connect within CONNECT_TIMEOUT_S, then allow READ_TIMEOUT_S of silence per read."""
    device = None  # an interface to leave by (a test over one line), None to follow routing

    def connect(self):
        if self.device:
            self._create_connection = bound_connection(self.device)
        super().connect()
        self.sock.settimeout(READ_TIMEOUT_S)


class _TLSConnection(http.client.HTTPSConnection):
    device = None

    def connect(self):
        if self.device:
            self._create_connection = bound_connection(self.device)
        super().connect()  # the TLS handshake is part of connecting
        self.sock.settimeout(READ_TIMEOUT_S)


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, connection=_Connection):
        super().__init__()
        self.connection = connection

    def http_open(self, req):
        return self.do_open(self.connection, req)


class _TLSHandler(urllib.request.HTTPSHandler):
    def __init__(self, context=None, connection=_TLSConnection):
        super().__init__()
        self.tls, self.connection = context, connection

    def https_open(self, req):  # loading the CA bundle costs ~30 ms: only for https
        return self.do_open(self.connection, req, context=self.tls or tls_context())


def build_opener(tls=None, device=None):
    """An opener whose connections keep our timeouts; tls: a context of the caller's (a test's CA); device:
    the interface every connection leaves by."""
    plain = type("_Bound", (_Connection,), {"device": device}) if device else _Connection
    secure = type("_BoundTLS", (_TLSConnection,), {"device": device}) if device else _TLSConnection
    return urllib.request.build_opener(_HTTPHandler(plain), _TLSHandler(tls, secure))


def open_body(opener, url):
    """GET url and return the http.client response, whose readinto fills our buffer in place."""
    try:
        return opener.open(urllib.request.Request(url, headers=HEADERS), timeout=CONNECT_TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise StreamError(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise StreamError(str(exc.reason)) from None


def content_length(headers):
    """The body's announced length, or None (absent or unreadable)."""
    try:
        return int(headers.get("Content-Length"))
    except (TypeError, ValueError):
        return None


class Body:
    """One response body, read into the caller's buffer: what has arrived, one recv per read.

    http.client's own readinto waits until the buffer is full, which on a slow link keeps bytes
    out of the count for seconds. Here: its buffered socket file's readinto1 first, for what came
    with the headers; once a read returns less than asked that file holds nothing more, and a
    plain-HTTP body is read from a duplicate of the socket, blocking: one recv per read, no poll
    before it; a fast stream is woken only when WAKE_BYTES have come or WAKE_S has passed
    (SO_RCVLOWAT, SO_RCVTIMEO), not for every few packets: a fifth less CPU at 1 Gbit/s. TLS bodies
    stay on readinto1 (the socket carries records); chunked ones go through http.client's read1,
    which undoes the framing.
    """

    def __init__(self, resp):
        self.sock = None
        if "chunked" in resp.headers.get("Transfer-Encoding", "").lower():
            self.length, self.first = None, self._copying(resp.read1)
            self.then = self.first
            return
        self.length, self.first = content_length(resp.headers), resp.fp.readinto1
        self.then = self.first
        if urllib.parse.urlsplit(resp.url).scheme == "http":
            self.sock = socket.socket(fileno=os.dup(resp.fileno()))
            self.sock.settimeout(None)
            self._batched = None
            try:
                self._wake(batched=False)
            except OSError:  # an option this kernel refuses: keep the buffered file
                return
            self.then = self._reader()

    def _wake(self, batched):
        """Wake this stream's reads for every arrival (timing out after READ_TIMEOUT_S), or in batches."""
        if batched == self._batched:
            return
        if batched and self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) < 4 * WAKE_BYTES:
            return  # a tiny receive buffer: a low-water mark would shrink the window
        wait = WAKE_S if batched else READ_TIMEOUT_S
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                             struct.pack("ll", int(wait), int(wait % 1 * 1e6)))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, WAKE_BYTES if batched else 1)
        self._batched = batched

    def _reader(self):
        """recv_into plus, every RATE_S or so, a look at the rate to wake in batches or not."""
        recv_into, clock = self.sock.recv_into, time.monotonic
        left, got, since = RATE_READS, 0, clock()

        def wait_on(b):  # WAKE_S passed without a byte: the link is slow, silent or gone
            for _ in range(int(READ_TIMEOUT_S / WAKE_S)):
                try:
                    return recv_into(b)
                except BlockingIOError:
                    pass
            raise BlockingIOError  # _transfer: "no data for READ_TIMEOUT_S"

        def read(b):
            nonlocal left, got, since
            try:
                n = recv_into(b)
            except BlockingIOError:
                if not self._batched:
                    raise  # READ_TIMEOUT_S of silence
                n = wait_on(b)
            got += n
            left -= 1
            if not left:
                left, now = RATE_READS, clock()
                if now - since >= RATE_S:
                    rate = got / (now - since)
                    self._wake(rate >= FAST_BPS if not self._batched else rate >= SLOW_BPS)
                    got, since = 0, now
            return n
        return read

    @staticmethod
    def _copying(read1):
        def read(b):
            data = read1(len(b))
            b[:len(data)] = data
            return len(data)
        return read

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.sock is not None:
            self.sock.close()
