"""N parallel HTTP streams that read, count and discard bytes as fast as the link allows.

Each stream reads into one buffer allocated when it starts, one recv per read (see Body): no
bytes object per read and no Python work per read beyond counting. The limit is looked at only
when a stream has used up its share of what is left. urllib3's readinto is read() plus a copy, so
the streams use the standard library's client (measure/http_body.py).
"""
import logging
import threading
import time
from datetime import datetime, timezone

from datacap.measure import http_body
from datacap.measure.errors import UrlErrors
from datacap.measure.http_body import ERRORS, Body, StreamError, open_body

log = logging.getLogger("downloader")

BUFFER_BYTES = 1 << 18  # one read's room: large enough for few syscalls, small enough to stay in cache
BACKOFF_MIN_S, BACKOFF_MAX_S = 0.5, 5.0  # short: measuring resumes within seconds of an outage
UNLIMITED = 1 << 62


class StreamPool:
    """Worker threads, each with its own buffer and opener, rotating URLs on failure."""

    def __init__(self, urls, n, limit_bytes=None, clock=time.monotonic, device=None):
        self.urls = list(urls)
        self.device = device  # the interface of the line the test runs over, when it must be chosen
        self.n = n
        self.limit_bytes = limit_bytes
        self.clock = clock
        self.counts = [0] * n  # slot i is written only by worker i
        self.failing = [False] * n
        self.last_error = None
        self.error_count = 0
        self.url_errors = UrlErrors(clock)  # each URL's latest failure in words (measure/errors.py)
        self._check_at = [0 if limit_bytes else UNLIMITED] * n  # stream i looks at the limit on reaching this
        self._go = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._progress = (0, clock())  # (total bytes, when it last grew)
        self._first_error_t = None
        self._tls = None  # tls_context() unless a test trusts its own certificate
        self.workers = []

    def start(self):
        self._go.set()
        self.workers = [threading.Thread(target=self._run, args=(i,), name=f"stream-{i}", daemon=True)
                        for i in range(self.n)]
        for worker in self.workers:
            worker.start()

    def pause(self):
        self._go.clear()

    def resume(self):
        self._progress = (self.total_bytes(), self.clock())
        self._go.set()

    def stop(self):
        self._stop.set()
        self._go.set()  # wake waiting workers so they see the stop

    def total_bytes(self):
        return sum(self.counts)

    def in_backoff(self):
        """Half the streams or more wait to retry after an error: the rest cannot speak for the link.

        Fewer do not matter: on a slow or policed link a starved stream times out now and then
        while the others fill the link, and a short dip never makes a throttle."""
        return 2 * sum(self.failing) >= self.n

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

    def _share_out_limit(self):
        """Give each stream an equal share of what is left: until one has read its share the total
        cannot reach the limit, so no stream needs to add up the counts after every read."""
        with self._lock:
            left = self.limit_bytes - self.total_bytes()
            if left <= 0:
                self._stop.set()
                return
            share = -(-left // self.n)
            for i, count in enumerate(self.counts):  # never raise a share a stream still holds
                if self._check_at[i] <= count or count + share < self._check_at[i]:
                    self._check_at[i] = count + share

    def _record_error(self, i, url, exc):
        message = str(exc) or type(exc).__name__
        with self._lock:
            self.error_count += 1
            self.url_errors.record(url, exc)
            self.last_error = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                               "url": url, "message": message[:300]}
            if self._first_error_t is None or self._first_error_t < self._progress[1]:
                self._first_error_t = self.clock()
        log.warning("stream %d: %s: %s", i, url, message[:300])

    def _run(self, i):
        opener = http_body.build_opener(self._tls, self.device)
        buf = memoryview(bytearray(BUFFER_BYTES))
        url_i, failures = i % len(self.urls), 0
        while not self._stop.is_set():
            if not self._go.wait(0.5) or self._stop.is_set():
                continue
            url = self.urls[url_i]
            try:
                got = self._transfer(i, opener, url, buf)
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

    def _transfer(self, i, opener, url, buf):
        """Read one response body to the end (or until pause/stop/limit); return bytes read."""
        try:
            with open_body(opener, url) as resp, Body(resp) as body:
                self.failing[i] = False  # the server answers: reading again, not waiting to retry
                got, ended = self._drain(i, body, buf)
        except BlockingIOError:  # SO_RCVTIMEO ran out
            raise StreamError(f"no data for {http_body.READ_TIMEOUT_S:g} s") from None
        if ended and body.length is not None and got < body.length:  # http.client reports this as a plain end
            raise StreamError(f"connection closed after {got} of {body.length} bytes")
        return got

    def _drain(self, i, body, buf):
        """The hot loop: read into buf, count. Returns (bytes read, whether the body ended)."""
        counts, check_at, size = self.counts, self._check_at, len(buf)
        go, stopped = self._go.is_set, self._stop.is_set
        read, got, left = body.first, 0, UNLIMITED if body.length is None else body.length
        while go() and not stopped():
            room = check_at[i] - counts[i]
            if room <= 0:
                self._share_out_limit()
                continue
            if left < room:
                room = left
                if not room:
                    return got, True
            want = room if room < size else size
            n = read(buf if want == size else buf[:want])
            if not n:
                if n is None:  # the buffered file's way of saying the read timed out
                    raise StreamError(f"no data for {http_body.READ_TIMEOUT_S:g} s")
                return got, True
            counts[i] += n
            got += n
            left -= n
            if n < want:  # nothing left in http.client's buffer: the steady reader from here on
                read = body.then
        return got, False
