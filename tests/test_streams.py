"""The streams' read path against the real fake ISP: lengths, chunked bodies, TLS, pause, limits, stalls, errors."""
import re
import shutil
import socket
import ssl
import subprocess
import time
import tracemalloc
from urllib.parse import parse_qs, urlparse

import pytest

from conftest import need
from fake_isp import BLOCK, Handler
from harness import wait_for
from datacap.measure import http_body
from datacap.measure.streams import BUFFER_BYTES, StreamPool


class ChunkedHandler(Handler):
    """The fake ISP's link, but `/chunked?bytes=N` answers with Transfer-Encoding: chunked in odd-sized chunks."""

    def do_GET(self):
        url = urlparse(self.path)
        if url.path not in ("/chunked", "/silent-after"):
            return super().do_GET()
        query = parse_qs(url.query)
        if url.path == "/silent-after":  # a length it never reaches: some bytes, then silence
            self.send_response(200)
            self.send_header("Content-Length", str(10 ** 12))
            self.end_headers()
            self.wfile.write(BLOCK[:int(query["bytes"][0])])
            time.sleep(30)
            return
        total, cut = int(query["bytes"][0]), "cut" in query
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent, sizes = 0, (1, 4093, 65536, 300_001, 17)
        while sent < total:
            n = self.server.link.take(min(sizes[sent % len(sizes)], total - sent))
            self.wfile.write(b"%x\r\n" % n + BLOCK[:n] + b"\r\n")
            sent += n
            if cut and sent >= total // 2:
                self.close_connection = True
                return
        self.wfile.write(b"0\r\n\r\n")


@pytest.fixture
def isp(fake_isp):
    made = fake_isp()
    made.httpd.RequestHandlerClass = ChunkedHandler
    return made


@pytest.fixture
def pools():
    made = []

    def make(*args, **kw):
        pool = StreamPool(*args, **kw)
        made.append(pool)
        return pool
    yield make
    for pool in made:
        pool.stop()


def quiet(pool):
    before = pool.total_bytes()
    time.sleep(0.3)
    return pool.total_bytes() == before


def test_one_stream_stops_exactly_at_the_limit(isp, pools):
    pool = pools([isp.url()], 1, limit_bytes=30_000_017)
    pool.start()
    wait_for(lambda: pool._stop.is_set(), 20, "the limit to stop the pool")
    assert pool.total_bytes() == 30_000_017 and pool.error_count == 0


def test_n_streams_stop_within_one_read_each_of_the_limit(isp, pools):
    pool = pools([isp.url()], 4, limit_bytes=80_000_000)
    pool.start()
    wait_for(lambda: pool._stop.is_set(), 20, "the limit to stop the pool")
    time.sleep(0.2)  # reads already under way may finish
    assert 80_000_000 <= pool.total_bytes() <= 80_000_000 + 4 * BUFFER_BYTES
    assert all(c > 0 for c in pool.counts) and pool.error_count == 0


def test_content_length_bodies_are_read_to_the_end_and_fetched_again(isp, pools):
    pool = pools([isp.url(3_000_000)], 2, limit_bytes=20_000_000)
    pool.start()
    wait_for(lambda: pool._stop.is_set(), 20, "the limit to stop the pool")
    assert pool.total_bytes() >= 20_000_000 and pool.error_count == 0 and pool.last_error is None


def test_chunked_bodies_count_the_payload_not_the_framing(isp, pools):
    pool = pools([f"http://127.0.0.1:{isp.port}/chunked?bytes=7000001"], 1, limit_bytes=21_000_003)
    pool.start()
    wait_for(lambda: pool._stop.is_set(), 20, "the limit to stop the pool")
    assert pool.total_bytes() == 21_000_003 and pool.error_count == 0  # three whole bodies, each ended cleanly


def test_a_chunked_body_cut_short_is_an_error(isp, pools):
    pool = pools([f"http://127.0.0.1:{isp.port}/chunked?bytes=2000000&cut=1"], 1)
    pool.start()
    wait_for(lambda: pool.error_count >= 1, 10, "an error for the cut body")
    assert pool.failing[0] and pool.last_error["url"].endswith("cut=1")


def test_a_body_cut_short_is_an_error_and_the_stream_comes_back(isp, pools):
    isp.link.update(close_after_bytes=1_000_000)
    pool = pools([isp.url(5_000_000)], 1)
    pool.start()
    wait_for(lambda: pool.error_count >= 1, 10, "an error for the short body")
    assert re.fullmatch(r"connection closed after \d+ of 5000000 bytes", pool.last_error["message"]) and pool.failing[0]
    isp.link.update(close_after_bytes=None)
    errors = pool.error_count
    wait_for(lambda: not pool.failing[0] and pool.total_bytes() > 6_000_000, 10, "the stream to recover")
    assert pool.error_count == errors


def test_a_stream_reading_an_endless_body_again_after_errors_is_not_waiting_to_retry(isp, pools):
    isp.link.update(close_after_bytes=500_000)  # every body is cut short: both streams fail and retry
    pool = pools([isp.url()], 2)
    pool.start()
    wait_for(lambda: pool.error_count >= 2 and pool.in_backoff(), 10, "both streams failing")
    isp.link.update(close_after_bytes=None)  # the next bodies never end (a test's streams)
    errors, before = pool.error_count, pool.total_bytes()
    wait_for(lambda: pool.total_bytes() > before + 5_000_000, 10, "both streams reading again")
    # before: a stream stayed "failing" until a body ended, so a test's seconds were never measured again
    assert pool.failing == [False, False] and not pool.in_backoff() and pool.error_count == errors


def test_a_body_gone_silent_is_an_error_after_the_read_timeout(isp, pools, monkeypatch):
    monkeypatch.setattr(http_body, "READ_TIMEOUT_S", 0.5)
    pool = pools([f"http://127.0.0.1:{isp.port}/silent-after?bytes=300000"], 1)
    pool.start()
    wait_for(lambda: pool.error_count >= 1, 10, "an error for the silent body")
    assert pool.last_error["message"] == "no data for 0.5 s" and pool.failing[0]
    assert pool.total_bytes() == 300_000


def test_an_error_status_is_recorded_with_its_reason_and_the_next_url_is_tried(isp, fake_isp, pools):
    good = fake_isp()
    isp.link.update(fail_status=503)
    pool = pools([isp.url(), good.url()], 1, limit_bytes=10_000_000)
    pool.start()
    wait_for(lambda: pool._stop.is_set(), 10, "the good URL to reach the limit")
    assert pool.last_error["message"] == "HTTP 503 Service Unavailable" and pool.last_error["url"] == isp.url()
    assert pool.total_bytes() == 10_000_000


def test_a_refused_connection_is_an_error_not_a_crash(pools):
    pool = pools(["http://127.0.0.1:9/refused"], 1)
    pool.start()
    wait_for(lambda: pool.error_count >= 1, 10, "an error")
    assert "refused" in pool.last_error["message"].lower() and pool.failing_since() is not None


def test_pause_stops_reading_and_resume_reads_again(fake_isp, pools):
    isp = fake_isp(rate_mbps=200)
    pool = pools([isp.url()], 2)
    pool.start()
    wait_for(lambda: pool.total_bytes() > 2_000_000, 10, "bytes flowing")
    pool.pause()
    wait_for(lambda: quiet(pool), 5, "the read under way to end")  # the fake ISP sends in 10-ms slices
    paused_at = pool.total_bytes()
    time.sleep(0.7)
    assert pool.total_bytes() == paused_at
    pool.resume()
    wait_for(lambda: pool.total_bytes() > paused_at + 2_000_000, 10, "bytes flowing again")
    assert pool.error_count == 0


def test_bytes_count_as_they_arrive_on_a_slow_link_not_when_the_buffer_fills(fake_isp, pools):
    isp = fake_isp(rate_mbps=2)  # 250 kB/s: one buffer's worth takes about a second
    pool = pools([isp.url()], 1)
    pool.start()
    wait_for(lambda: pool.total_bytes() > 0, 5, "the first bytes")
    seen = []
    for _ in range(20):
        time.sleep(0.1)
        seen.append(pool.total_bytes())
    assert len(set(seen)) >= 8, f"the count moved only {len(set(seen))} times in two seconds: {seen}"


def test_reading_allocates_no_buffer_per_read(isp, pools):
    pool = pools([isp.url()], 1, limit_bytes=400_000_000)
    pool.start()
    wait_for(lambda: pool.total_bytes() > 20_000_000, 10, "bytes flowing")
    tracemalloc.start()
    try:
        start = pool.total_bytes()
        wait_for(lambda: pool.total_bytes() > start + 100_000_000 or pool._stop.is_set(), 20, "100 MB more")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024, f"{peak} bytes allocated at once while reading: a new buffer per read"


@pytest.fixture
def tls_isp(isp, tmp_path):
    need(shutil.which("openssl"), "openssl is not installed (apt-get install openssl)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    isp.httpd.socket = server_side.wrap_socket(isp.httpd.socket, server_side=True)
    return isp, ssl.create_default_context(cafile=str(cert))


def test_tls_bodies_of_both_kinds_are_read_in_place(tls_isp, pools):
    isp, trust = tls_isp
    for url in (f"https://127.0.0.1:{isp.port}/stream?bytes=4000000", f"https://127.0.0.1:{isp.port}/chunked?bytes=4000000"):
        pool = pools([url], 1, limit_bytes=10_000_000)
        pool._tls = trust
        pool.start()
        wait_for(lambda: pool._stop.is_set(), 20, f"the limit over TLS from {url}")
        assert pool.total_bytes() == 10_000_000 and pool.error_count == 0


def test_an_untrusted_certificate_is_an_error(tls_isp, pools):
    isp, _ = tls_isp
    pool = pools([f"https://127.0.0.1:{isp.port}/stream"], 1)
    pool.start()
    wait_for(lambda: pool.error_count >= 1, 10, "a certificate error")
    assert "certificate" in pool.last_error["message"].lower() and pool.total_bytes() == 0


def test_stop_ends_every_worker(isp, pools):
    pool = pools([isp.url()], 3)
    pool.start()
    wait_for(lambda: pool.total_bytes() > 1_000_000, 10, "bytes flowing")
    pool.stop()
    wait_for(lambda: not any(w.is_alive() for w in pool.workers), 5, "the workers to end")


def read_through(url, nbytes):
    """Read nbytes of url's body through Body; return the body and its socket's low-water mark."""
    buf = memoryview(bytearray(BUFFER_BYTES))
    with http_body.open_body(http_body.build_opener(), url) as resp, http_body.Body(resp) as body:
        got, read = 0, body.first
        while got < nbytes:
            n = read(buf)
            assert n, "the body ended early"
            got += n
            if n < len(buf):
                read = body.then
        return body, body.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT)


@pytest.fixture
def fast_is_40_mbit(monkeypatch):  # what a loaded test machine's fake ISP surely beats
    monkeypatch.setattr(http_body, "FAST_BPS", 5e6)
    monkeypatch.setattr(http_body, "SLOW_BPS", 2.5e6)


def test_a_fast_stream_is_woken_in_batches_and_a_slow_one_for_every_arrival(fake_isp, fast_is_40_mbit):
    fast, lowat = read_through(fake_isp(rate_mbps=400).url(), 30_000_000)
    assert fast._batched and lowat == http_body.WAKE_BYTES
    slow, lowat = read_through(fake_isp(rate_mbps=8).url(), 2_000_000)
    assert slow._batched is False and lowat == 1


def test_a_stream_that_slows_down_is_woken_for_every_arrival_again(fake_isp, fast_is_40_mbit):
    isp = fake_isp(throttle_after_bytes=100_000_000, throttled_mbps=16)
    body, lowat = read_through(isp.url(), 100_000_000 + 4_000_000)  # 2 s after it
    assert body._batched is False and lowat == 1
