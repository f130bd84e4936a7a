"""Slow clients can't take the dashboard away (real server.py, real sockets; the timing figure is bench/slowloris.py)."""
import socket
import time

import requests

from datacap import slow_clients
from harness import wait_for


def slow_connection(port, n):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(f"GET /?slow={n} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())  # and never the blank line
    return s


def closed_by_server(s):
    s.settimeout(0)
    try:
        s.recv(4096)  # EOF, or the server's answer before it closes
        return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_dashboard_answers_while_more_slow_connections_than_the_limit_are_held(server):
    s = server()
    held = [slow_connection(s.port, i) for i in range(slow_clients.MAX_CONNECTIONS + 50)]
    try:
        r = requests.get(s.url + "/", timeout=5)
        assert r.status_code == 200 and "<title>datacap</title>" in r.text
        assert s.get("/api/stats").json()["status"] == "idle"
        evicted = wait_for(lambda: [c for c in held if closed_by_server(c)] or None, 5, "the surplus slow connections closed")
        assert len(evicted) >= 50 and all(c in held[:100] for c in evicted)  # the longest waiting went first
    finally:
        for c in held:
            c.close()


def test_a_request_that_dribbles_in_is_dropped_at_the_deadline(server):
    s = server()
    c = slow_connection(s.port, 0)
    start = time.monotonic()
    try:
        while not closed_by_server(c):
            assert time.monotonic() - start < slow_clients.REQUEST_DEADLINE_S + 5, "still open after the deadline"
            try:
                c.sendall(b"X-Slow: 1\r\n")  # activity every half second: waitress's idle timeout never fires
            except OSError:
                break
            time.sleep(0.5)
        assert time.monotonic() - start >= slow_clients.REQUEST_DEADLINE_S - 1
    finally:
        c.close()
    wait_for(lambda: "slow clients: closed 1 from 127.0.0.1 (request not complete within" in s.log(), 5, "the log line")
    assert s.get("/healthz").status_code in (200, 503)


def test_headers_over_32_kb_are_refused_before_they_are_read_whole(server):
    s = server()
    r = requests.get(s.url + "/api/stats", headers={"X-Big": "x" * 40_000}, timeout=5)
    assert r.status_code == 431
    assert s.get("/api/stats").status_code == 200
