"""The probe's few streams: counts that move with every arrival, so a short probe can see its rate.

A test's StreamPool fills a 256 KB buffer before it counts (cheap at 1 Gbit/s for hours); at
4 Mbit/s that is a step every half second per stream, far too coarse for a probe of a few
seconds. A probe reads with `read1` (one system call, whatever has arrived) instead: a small
allocation per read, which a probe of a few seconds can afford. Requests go through
http_body.open_body, with the same headers, timeouts and TLS verification as a test.
"""
import threading
import urllib.request

from datacap.measure import http_body

READ_BYTES = 1 << 18  # an upper bound: read1 returns what has arrived
RETRY_S = 0.5


class ProbeStreams:
    """n streams from urls (rotating on errors), stopping at limit_bytes in total.

    Each read asks for at most its share of what is left, so the total stops within one read of
    another stream (READ_BYTES) past the limit.
    """

    def __init__(self, urls, n, limit_bytes):
        self.urls, self.n, self.limit_bytes = list(urls), n, limit_bytes
        self.counts = [0] * n  # slot i is written only by stream i
        self.last_error = None
        self._stop = threading.Event()
        self._opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=http_body.tls_context()))
        self.workers = [threading.Thread(target=self._run, args=(i,), daemon=True, name=f"probe-{i}")
                        for i in range(n)]

    def start(self):
        for w in self.workers:
            w.start()

    def stop(self):
        self._stop.set()

    def total_bytes(self):
        return sum(self.counts)

    def _run(self, i):
        url_i = i % len(self.urls)
        while not self._stop.is_set():
            url = self.urls[url_i]
            try:
                with http_body.open_body(self._opener, url) as resp:
                    self._drain(i, resp)
            except http_body.ERRORS + (http_body.StreamError,) as exc:
                if self._stop.is_set():
                    return
                self.last_error = {"url": url, "message": (str(exc) or type(exc).__name__)[:300]}
                url_i = (url_i + 1) % len(self.urls)
                self._stop.wait(RETRY_S)

    def _drain(self, i, resp):
        counts, n = self.counts, self.n
        while not self._stop.is_set():
            left = self.limit_bytes - sum(counts)
            if left <= 0:
                self._stop.set()
                return
            chunk = resp.read1(min(READ_BYTES, max(1024, left // n)))  # never far past the budget
            if not chunk:
                return
            counts[i] += len(chunk)
