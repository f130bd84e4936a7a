"""Property-based: no request shape yields a 5xx (or an HTML error page)."""
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datacap import store as jsonstore
from datacap.web import create_app
from datacap.supervise.supervisor import Supervisor
from test_supervisor import World

PATHS = ["/", "/api/stats", "/api/start", "/api/stop", "/api/pause", "/api/resume", "/api/reset", "/api/usage",
         "/api/usage/adjust", "/api/usage/adjust/abc", "/api/interfaces", "/api/system", "/api/config",
         "/api/export", "/metrics", "/healthz", "/login", "/static/dashboard.js", "/api/stats?since=5",
         "/api/export?format=csv&what=daily", "/api/export?format=json&what=events", "/nope", "/api/meta",
         "/api/sources", "/api/usage/topup", "/api/usage/topup/abc", "/api/probes"]
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                           max_leaves=12)
config_keys = st.sampled_from(["data_cap_gb", "billing_day", "streams", "test_urls", "interfaces", "port",
                               "alert_thresholds_percent", "session_limit_gb", "auth_token", "used_gb", "limit_gb",
                               "urls", "used_bytes", "note", "webhook_url", "sources", "plan", "gb", "expires"])
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(config_keys, json_values, max_size=5).map(lambda d: json.dumps(d).encode()),
)
queries = st.sampled_from(["", "?since=abc", "?since=1e309", "?format=csv&what=samples", "?format=x", "?what=daily"])


def make_client(tmp_path):
    world = World()
    cfg_path = tmp_path / "config.json"
    cfg_path.write_text("{}")
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    jsonstore.write_json_atomic(data / "downloader.json", {"status": "finished", "data_points": [
        {"t": 1, "time": "2026-11-23T10:00:00+00:00", "mbps": 10.0, "bytes": 5}], "throttle_events": []})
    (data / "usage.json").write_text('{"days": {"2026-11-20": {"eth0": [1, 2]}}, "version": 1')  # torn
    app = create_app({}, data, cfg_path, Supervisor(cfg_path, data, clock=world.clock, popen=world.popen))
    return app.test_client()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
       # "//x" would be read by the test client as a host name, not sent as a path
       path=st.sampled_from(PATHS) | st.text(alphabet="/abcz%.?=&-_0123456789", max_size=30).map(lambda p: "/" + p.lstrip("/")),
       query=queries, body=bodies,
       content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", ""]),
       origin=st.sampled_from([None, "null", "http://127.0.0.1:8000", "http://evil.example"]),
       host=st.sampled_from(["127.0.0.1:8000", "localhost", "[::1]:8000", "evil.example", "", "a:b:c"]))
def test_no_request_shape_yields_a_5xx(tmp_path_factory, method, path, query, body, content_type, origin, host):
    client = make_client(tmp_path_factory.mktemp("fuzz"))
    headers = {"Host": host, **({"Origin": origin} if origin else {}), **({"Content-Type": content_type} if content_type else {})}
    r = client.open(path + query, method=method, data=body, headers=headers)
    designed = path == "/healthz" and r.status_code == 503  # "no collector here" is its answer
    assert r.status_code < 500 or designed, (method, path, query, body, r.status_code, r.get_data()[:300])
    if r.status_code >= 400 and method != "HEAD":
        assert r.is_json, r.get_data()[:200]
