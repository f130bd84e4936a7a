"""Stream failures in a user's words, per test URL, from real sockets (no internet needed)."""
import socket

from harness import free_port, wait_for

from datacap.measure import errors, http_body
from datacap.measure.streams import StreamPool


def failures_of(urls, timeout=15):
    """Run a real pool against urls until every one has failed; its UrlErrors, by URL."""
    pool = StreamPool(urls, len(urls))
    pool.start()
    try:
        wait_for(lambda: {e["url"] for e in pool.url_errors.recent()} >= set(urls), timeout, "every URL to fail")
    finally:
        pool.stop()
    return {e["url"]: e for e in pool.url_errors.recent()}


def test_each_url_says_what_failed_in_words(fake_isp):
    missing = fake_isp()
    missing.link.update(fail_status=404)
    plain = fake_isp(rate_mbps=10)
    urls = [f"http://127.0.0.1:{free_port()}/closed", "http://nonexistent.invalid/file",
            missing.url(), f"https://127.0.0.1:{plain.port}/stream"]
    found = failures_of(urls)
    assert found[urls[0]]["what"] == "connection refused"
    assert found[urls[1]]["what"] == "DNS lookup failed: nonexistent.invalid not found"
    assert found[urls[2]]["what"].startswith("HTTP 404")
    assert found[urls[3]]["what"].startswith("TLS")
    for e in found.values():
        assert "Errno" not in e["what"] and "(" not in e["what"] and e["count"] >= 1
    assert errors.problem(list(found.values()), urls, receiving=False) == errors.ALL_DOWN
    assert errors.problem(list(found.values())[:2], urls, receiving=False) is None


def test_a_server_that_never_answers_is_timed_out(monkeypatch):
    monkeypatch.setattr(http_body, "CONNECT_TIMEOUT_S", 0.5)
    monkeypatch.setattr(http_body, "READ_TIMEOUT_S", 0.5)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts (the kernel does), never answers
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/slow"
    try:
        assert failures_of([url])[url]["what"] == "timed out"
    finally:
        listener.close()


def test_errors_older_than_a_minute_are_not_a_problem_now():
    t = [0.0]
    errs = errors.UrlErrors(clock=lambda: t[0])
    errs.record("http://a/", ConnectionRefusedError(111, "Connection refused"))
    assert errs.recent()[0]["what"] == "connection refused"
    t[0] = errors.RECENT_S + 1
    assert errs.recent() == [] and errs.all()[0]["count"] == 1
