"""A fake ISP: an HTTP server that streams bytes at a set link rate.

It can drop the rate after N bytes (counted across all connections, like a real cap), add
per-second jitter, answer with an error status, close early, or stall. Use it in-process
(FakeISP(...).start()) or as a script:

    python tests/fake_isp.py --port 9000 --rate-mbps 80 --throttle-after-mb 300 --throttled-mbps 16

GET /stream?bytes=N   N bytes (default: practically endless) at the link rate
POST /control         JSON with any of rate_mbps, throttle_after_bytes, throttled_mbps,
                      jitter, fail_status, close_after_bytes, stall  (null clears)
GET /status           bytes sent so far, first-to-last byte seconds, and the settings
POST /reset           zero the byte count and the timing
"""
import argparse
import json
import random
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

BLOCK = memoryview(b"\x00" * (1 << 20))
ENDLESS = 10 ** 13


class Link:
    """The shared link: paces every connection's bytes against one rate."""

    def __init__(self, rate_mbps=None, throttle_after_bytes=None, throttled_mbps=None, jitter=0.0, seed=1):
        self.lock = threading.Lock()
        self.sent = 0
        self.rate_mbps, self.throttle_after_bytes, self.throttled_mbps = rate_mbps, throttle_after_bytes, throttled_mbps
        self.jitter = jitter
        self.fail_status = self.close_after_bytes = None
        self.stall = False
        self.crossed_at = None  # monotonic time the throttle mark was crossed
        self.first_byte_t = self.last_byte_t = None  # server-side transfer timing, for benches
        self._next_t = 0.0
        self._rng = random.Random(seed)
        self._factor, self._factor_second = 1.0, None

    def settings(self):
        return {k: getattr(self, k) for k in ("rate_mbps", "throttle_after_bytes", "throttled_mbps", "jitter",
                                              "fail_status", "close_after_bytes", "stall")}

    def update(self, **kw):
        with self.lock:
            for k, v in kw.items():
                if k not in self.settings():
                    raise KeyError(k)
                setattr(self, k, v)

    def _rate_bps(self, now):
        throttled = self.throttle_after_bytes is not None and self.sent >= self.throttle_after_bytes
        mbit = self.throttled_mbps if throttled else self.rate_mbps
        if mbit is None:
            return None
        second = int(now)
        if self.jitter and second != self._factor_second:
            self._factor_second = second
            self._factor = 1 + self._rng.uniform(-self.jitter, self.jitter)
        return mbit * 1e6 / 8 * (self._factor if self.jitter else 1.0)

    def take(self, want):
        """Block until `n` bytes may go on the wire; return n (never crossing the mark mid-chunk)."""
        with self.lock:
            now = time.monotonic()
            rate = self._rate_bps(now)
            n = want if rate is None else max(1024, min(want, int(rate / 100)))
            mark = self.throttle_after_bytes
            if mark is not None and self.sent < mark < self.sent + n:
                n = mark - self.sent
            if rate is not None:
                start = max(now, self._next_t)
                self._next_t = start + n / rate
            else:
                start = now
            self.sent += n
            if self.first_byte_t is None:
                self.first_byte_t = now
            if mark is not None and self.crossed_at is None and self.sent >= mark:
                self.crossed_at = time.monotonic()
        if start > now:
            time.sleep(start - now)
        return n


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _json(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        link = self.server.link
        url = urlparse(self.path)
        if url.path == "/status":
            busy = (link.last_byte_t - link.first_byte_t) if link.first_byte_t and link.last_byte_t else None
            return self._json(200, {"sent_bytes": link.sent, "transfer_seconds": busy, **link.settings()})
        if link.fail_status:
            return self._json(link.fail_status, {"error": "fake failure"})
        total = int(parse_qs(url.query).get("bytes", [ENDLESS])[0])
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(total))
        self.end_headers()
        if link.stall:
            time.sleep(3600)
            return
        sent, limit = 0, link.close_after_bytes
        try:
            while sent < total:
                if limit is not None and sent >= limit:
                    self.close_connection = True
                    return
                n = link.take(min(len(BLOCK), total - sent))
                self.wfile.write(BLOCK[:n])
                sent += n
                link.last_byte_t = time.monotonic()
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True

    def do_POST(self):
        link = self.server.link
        if urlparse(self.path).path == "/reset":
            with link.lock:
                link.sent, link.first_byte_t, link.last_byte_t, link.crossed_at = 0, None, None, None
            return self._json(200, {"sent_bytes": 0})
        if urlparse(self.path).path != "/control":
            return self._json(404, {"error": "not found"})
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self.server.link.update(**body)
        return self._json(200, self.server.link.settings())


class FakeISP:
    """Run the fake ISP on a free loopback port in a background thread."""

    def __init__(self, host="127.0.0.1", port=0, **link):
        self.link = Link(**link)
        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.httpd.link = self.link
        self.port = self.httpd.server_address[1]
        self.host = host

    def url(self, nbytes=None):
        return f"http://{self.host}:{self.port}/stream" + (f"?bytes={nbytes}" if nbytes else "")

    def start(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True, name="fake-isp").start()
        return self

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--rate-mbps", type=float)
    p.add_argument("--throttle-after-mb", type=float)
    p.add_argument("--throttled-mbps", type=float)
    p.add_argument("--jitter", type=float, default=0.0)
    a = p.parse_args()
    isp = FakeISP(a.host, a.port, rate_mbps=a.rate_mbps, throttled_mbps=a.throttled_mbps, jitter=a.jitter,
                  throttle_after_bytes=int(a.throttle_after_mb * 1e6) if a.throttle_after_mb else None)
    print(isp.port, flush=True)  # the caller reads the port from the first line
    try:
        isp.httpd.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
