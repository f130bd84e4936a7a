"""/metrics: valid exposition (promtool) and scraped by a real Prometheus server."""
import shutil
import subprocess

import requests

from conftest import need
from harness import free_port, wait_for


def test_metrics_pass_promtool_check(server, fake_isp):
    need(shutil.which("promtool"), "promtool is not installed (apt-get install prometheus)")
    isp = fake_isp(rate_mbps=100)
    s = server(test_urls=[isp.url()])
    s.post("/api/start")
    wait_for(lambda: s.stats()["speed_mbps"] > 0, 5, "running")
    text = s.get("/metrics").text
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'datacap_downloader_status{status="running"} 1.0' in text
    assert "datacap_cycle_used_bytes" in text and "# TYPE datacap_interface_receive_bytes_total counter" in text


def test_a_real_prometheus_scrapes_cycle_usage_and_speed(server, fake_isp, tmp_path):
    need(shutil.which("prometheus"), "prometheus is not installed (apt-get install prometheus)")
    isp = fake_isp(rate_mbps=100)
    s = server(test_urls=[isp.url()])
    s.post("/api/usage/adjust", json={"used_gb": 42})
    s.post("/api/start")
    wait_for(lambda: s.stats()["speed_mbps"] > 50, 8, "running")
    port = free_port()
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s}\n"
        f"scrape_configs: [{{job_name: datacap, static_configs: [{{targets: ['127.0.0.1:{s.port}']}}]}}]\n")
    prom = subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def query(q):
            r = requests.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": q}, timeout=2).json()
            return float(r["data"]["result"][0]["value"][1]) if r["data"]["result"] else None
        used = wait_for(lambda: query("datacap_cycle_used_bytes"), 30, "Prometheus to scrape datacap")
        assert used >= 42e9
        speed = wait_for(lambda: query("datacap_download_speed_bytes_per_second"), 10, "speed scraped")
        assert speed > 50e6 / 8 * 0.5
        assert query('up{job="datacap"}') == 1.0
    finally:
        prom.terminate()
        prom.wait(10)

