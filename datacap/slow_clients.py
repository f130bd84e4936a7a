"""Slow clients can't take the dashboard away: a waitress channel with a request deadline and eviction.

waitress reads requests on one asyncore loop and hands only complete ones to its threads, so a
client that sends its headers a line every 15 s costs no thread, only a connection slot. Its own
`channel_timeout` counts from the last byte, so such a client is never idle long enough to be
dropped, and once `connection_limit` slots are held waitress stops accepting: the dashboard's
connection waits in the kernel's backlog until a slot frees. Two rules close that:

- a request must arrive whole (headers and body) within REQUEST_DEADLINE_S of its first byte;
- a new connection beyond MAX_CONNECTIONS closes one that holds a slot without a request being
  served: from the address holding the most connections, a half-sent request before an idle
  keep-alive, the one waiting longest. A client that sends its request at once is never the one
  chosen, so a browser always gets in.
"""
import collections
import logging
import time

import waitress.server
from waitress.channel import HTTPChannel

log = logging.getLogger("server")

MAX_CONNECTIONS = 200
REQUEST_DEADLINE_S = 10
REPORT_EVERY_S = 60


class GuardedChannel(HTTPChannel):
    """An HTTPChannel that knows since when its unfinished request has been arriving."""

    _timed = None  # the request receiving_since belongs to
    receiving_since = 0.0

    def __init__(self, server, sock, addr, adj, map=None):
        super().__init__(server, sock, addr, adj, map)
        if len(server.active_channels) > MAX_CONNECTIONS:
            _evict_one(server, newcomer=self)

    def handle_read(self):
        super().handle_read()
        if self.request is not self._timed:  # a new request began in this read
            self._timed, self.receiving_since = self.request, time.monotonic()

    def too_slow(self, now):
        return self.request is not None and not self.requests and now - self.receiving_since > REQUEST_DEADLINE_S

    def writable(self):  # asked of every channel on each turn of the loop (at least once a second)
        if not self.will_close and self.too_slow(time.monotonic()):
            self.server.slow_client_drops.note(self.addr, f"request not complete within {REQUEST_DEADLINE_S} s")
            self.will_close = True  # handle_write closes it
        return super().writable()

    def waiting_s(self):
        """How long this channel has held its slot without a request being served."""
        if self.request is not None:
            return time.monotonic() - self.receiving_since
        return time.time() - self.last_activity  # waitress keeps wall time here


def _evict_one(server, newcomer):
    idle = [ch for ch in server.active_channels.values()
            if ch is not newcomer and isinstance(ch, GuardedChannel) and not ch.requests
            and not ch.total_outbufs_len and not ch.will_close]
    if not idle:
        return  # every slot is serving a request: waitress's own connection_limit holds the rest back
    per_address = collections.Counter(ch.addr[0] for ch in server.active_channels.values())
    # the busiest address first, a half-sent request before an idle keep-alive, then the longest waiting
    victim = max(idle, key=lambda ch: (per_address[ch.addr[0]], ch.request is not None, ch.waiting_s()))
    server.slow_client_drops.note(victim.addr, f"over {MAX_CONNECTIONS} connections")
    victim.handle_close()


class DropLog:
    """Counts the connections closed and logs them at most once a minute: an attack must not flood the journal."""

    def __init__(self, clock=time.monotonic):
        self.clock, self.counts, self.reported = clock, collections.Counter(), None

    def note(self, addr, why):
        self.counts[(addr[0], why)] += 1
        now = self.clock()
        if self.reported is None or now - self.reported >= REPORT_EVERY_S:
            self.reported = now
            log.warning("slow clients: closed %s", ", ".join(f"{n} from {a} ({w})" for (a, w), n in self.counts.items()))
            self.counts.clear()


def guard(server):
    """Give every listener of a waitress server (one per address) the guarded channel."""
    listeners = [server] if isinstance(server, waitress.server.BaseWSGIServer) else [
        obj for obj in server.map.values() if isinstance(obj, waitress.server.BaseWSGIServer)]
    for listener in listeners:
        listener.channel_class = GuardedChannel
        listener.slow_client_drops = DropLog()
    return server
