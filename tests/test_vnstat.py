"""Coming from vnStat: Debian's vnstatd counts a veth, its JSON goes into datacap, the days agree (root)."""
import json
import shutil
import signal
import subprocess
import time

import pytest

import netns
from conftest import have_root_networking, need
from harness import wait_for


@pytest.fixture
def vnstatd(tmp_path):
    """vnstatd with a database of its own; yields (start(interface), export(interface))."""
    need(shutil.which("vnstatd") and shutil.which("vnstat"), "needs Debian's vnstat (vnstatd and vnstat)")
    folder = tmp_path / "vnstat"
    (folder / "db").mkdir(parents=True)
    conf = folder / "vnstat.conf"
    conf.write_text(f'DatabaseDir "{folder / "db"}"\nUpdateInterval 2\nPollInterval 2\nSaveInterval 1\n'
                    f'UseLogging 0\nTimeSyncWait 0\nPidFile "{folder / "vnstatd.pid"}"\n')
    procs = []

    def start(interface):
        subprocess.run(["vnstatd", "--config", str(conf), "--initdb"], check=True, capture_output=True)
        subprocess.run(["vnstat", "--config", str(conf), "--add", "-i", interface], check=True, capture_output=True)
        procs.append(subprocess.Popen(["vnstatd", "--config", str(conf), "-n"], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))

    def export(interface):
        for p in procs:  # SIGTERM: vnstatd writes what it counted to its database
            p.send_signal(signal.SIGTERM)
            p.wait(10)
        out = subprocess.run(["vnstat", "--config", str(conf), "-i", interface, "--json", "d"], check=True,
                             capture_output=True, text=True).stdout
        return json.loads(out)
    yield start, export
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_vnstat_history_imported_makes_the_days_equal(server, vnstatd):
    need(have_root_networking(), "needs root and iproute2 for a veth")
    start, export = vnstatd
    with netns.veth_link(rate="200mbit") as link:
        isp, base = netns.start_fake_isp(link)
        try:
            start(link.host_if)
            time.sleep(4)  # vnstatd has read the counters
            subprocess.run(["curl", "-s", "-o", "/dev/null", base + "/stream?bytes=150000000"], check=True)
            s = server(interfaces=[link.host_if], test_urls=[base + "/stream"], update_interval_seconds=0.5)
            wait_for(lambda: s.get("/healthz").status_code == 200, 10, "datacap counting")
            subprocess.run(["curl", "-s", "-o", "/dev/null", base + "/stream?bytes=100000000"], check=True)
            time.sleep(60)  # vnstatd counts on for a while; every SaveInterval it writes its database
            subprocess.run(["curl", "-s", "-o", "/dev/null", base + "/stream?bytes=50000000"], check=True)
            time.sleep(3)
            doc = export(link.host_if)
            vn = {f"{d['date']['year']:04d}-{d['date']['month']:02d}-{d['date']['day']:02d}": d["rx"] + d["tx"]
                  for d in doc["interfaces"][0]["traffic"]["day"]}
            r = s.post("/api/usage/import", data=json.dumps(doc), headers={"Content-Type": "application/json"})
            assert r.status_code == 201, r.text

            def days():
                return {d["date"]: d["used_bytes"] for d in s.get("/api/usage").json()["daily"]}
            got = wait_for(lambda: days() if all(days().get(k) == v for k, v in vn.items()) else None, 10,
                           f"datacap's days equal to vnStat's {vn}")
            print(f"vnStat {vn}; datacap after the import {got}")
            assert sum(vn.values()) >= 300_000_000
        finally:
            isp.terminate()
