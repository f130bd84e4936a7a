"""N parallel HTTP streams that read, count and discard bytes as fast as the link allows."""
import logging
import threading
import time
from datetime import datetime, timezone

import requests
import urllib3

log = logging.getLogger("downloader")

CHUNK = 1 << 20  # one recv of up to 1 MiB per read: no per-byte Python work
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 10.0
STALL_S = 2.0  # a stream silent this long makes its bins unusable for detection
BACKOFF_MIN_S, BACKOFF_MAX_S = 0.5, 15.0
USER_AGENT = "datacap (ISP data-cap tester)"
ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError)


class StreamError(Exception):
    pass


class StreamPool:
    """Worker threads, each with its own keep-alive session, rotating URLs on failure."""

    def __init__(self, urls, n, limit_bytes=None, clock=time.monotonic):
        self.urls = list(urls)
        self.n = n
        self.limit_bytes = limit_bytes
        self.clock = clock
        self.counts = [0] * n  # slot i is written only by worker i
        self.last_data = [0.0] * n
        self.failing = [False] * n
        self.last_error = None
        self.error_count = 0
        self._go = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._progress = (0, clock())  # (total bytes, when it last grew)
        self._first_error_t = None

    def start(self):
        self._go.set()
        now = self.clock()
        self.last_data = [now] * self.n
        for i in range(self.n):
            threading.Thread(target=self._run, args=(i,), name=f"stream-{i}", daemon=True).start()

    def pause(self):
        self._go.clear()

    def resume(self):
        now = self.clock()
        self.last_data = [now] * self.n
        self._progress = (self.total_bytes(), now)
        self._go.set()

    def stop(self):
        self._stop.set()
        self._go.set()  # wake waiting workers so they see the stop

    def total_bytes(self):
        return sum(self.counts)

    def any_failing(self):
        """A stream is in back-off, or silent for STALL_S: its bins say nothing about the ISP."""
        now = self.clock()
        return any(self.failing) or any(now - t > STALL_S for t in self.last_data)

    def failing_since(self):
        """When the current all-failing streak began (no bytes since an error), else None."""
        total, since = self._progress
        now_total = self.total_bytes()
        if now_total != total:
            self._progress = (now_total, self.clock())
            return None
        if self._first_error_t is not None and self._first_error_t >= since:
            return self._first_error_t
        return None

    def _record_error(self, i, url, exc):
        message = str(exc) or type(exc).__name__
        with self._lock:
            self.error_count += 1
            self.last_error = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                               "url": url, "message": message[:300]}
            if self._first_error_t is None or self._first_error_t < self._progress[1]:
                self._first_error_t = self.clock()
        log.warning("stream %d: %s: %s", i, url, message[:300])

    def _run(self, i):
        session = requests.Session()
        session.headers.update({"Accept-Encoding": "identity", "User-Agent": USER_AGENT,
                                "Cache-Control": "no-cache"})
        url_i, failures = i % len(self.urls), 0
        while not self._stop.is_set():
            if not self._go.wait(0.5) or self._stop.is_set():
                continue
            url = self.urls[url_i]
            try:
                got = self._transfer(i, session, url)
                if got == 0 and self._go.is_set() and not self._stop.is_set():
                    raise StreamError("empty response")
                self.failing[i], failures = False, 0
            except ERRORS + (StreamError,) as exc:
                if self._stop.is_set():
                    break
                self.failing[i] = True
                self._record_error(i, url, exc)
                url_i = (url_i + 1) % len(self.urls)
                self._stop.wait(min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2 ** failures))
                failures += 1
                session.close()
        session.close()

    def _transfer(self, i, session, url):
        """Read one response body to the end (or until pause/stop/limit); return bytes read."""
        got = 0
        counts, last_data, clock = self.counts, self.last_data, self.clock
        with session.get(url, stream=True, timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S)) as resp:
            if resp.status_code >= 400:
                raise StreamError(f"HTTP {resp.status_code} {resp.reason}")
            read1 = resp.raw.read1
            while self._go.is_set() and not self._stop.is_set():
                chunk = read1(CHUNK)
                if not chunk:
                    break
                counts[i] += len(chunk)
                got += len(chunk)
                last_data[i] = clock()
                if self.limit_bytes and sum(counts) >= self.limit_bytes:
                    self._stop.set()
        return got
