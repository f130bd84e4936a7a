"""JS heap of the dashboard over a long session of 1-s polling (target: <= 10 % growth after minute 1).

    python bench/heap.py [--minutes 60]

Runs the real server and a fake ISP at 20 Mbit/s, opens the dashboard in headless Chromium,
presses Start, and every minute forces a GC and reads Chromium's JSHeapUsedSize.

It speaks the DevTools protocol itself, over --remote-debugging-pipe, instead of through
Playwright: Playwright keeps the Network domain enabled, and DevTools' record of every request
(blink::NetworkResourcesData) then grows inside the page's heap. A user's browser without
DevTools open keeps no such record, so this bench does not create one either.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from browser import ARGS, CHROMIUM  # noqa: E402
from fake_isp import FakeISP  # noqa: E402
from harness import Server, exit_cleanly_on_sigterm  # noqa: E402


class DevTools:
    """A minimal CDP client over Chromium's pipe (fd 3 in, fd 4 out, NUL-separated JSON)."""

    def __init__(self, profile):
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def wire_fds():
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)
        self.proc = subprocess.Popen([CHROMIUM, "--headless", "--remote-debugging-pipe", f"--user-data-dir={profile}",
                                      *ARGS, "about:blank"], preexec_fn=wire_fds, pass_fds=(3, 4),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf, self._id, self.session = b"", 0, None

    def send(self, method, params=None, session=True):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in self._buf:
                chunk = os.read(self._from_chrome, 1 << 16)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                self._buf += chunk
            raw, self._buf = self._buf.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def open(self, url):
        target = self.send("Target.createTarget", {"url": url}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)["sessionId"]
        self.send("Performance.enable")

    def evaluate(self, expression):
        return self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})["result"].get("value")

    def heap_bytes(self):
        self.send("HeapProfiler.collectGarbage")
        metrics = {m["name"]: m["value"] for m in self.send("Performance.getMetrics")["metrics"]}
        return metrics["JSHeapUsedSize"]

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)


def wait_until(devtools, expression, timeout=15):
    deadline = time.monotonic() + timeout
    while not devtools.evaluate(expression):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {expression}")
        time.sleep(0.1)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=60)
    args = p.parse_args()
    exit_cleanly_on_sigterm()
    isp = FakeISP(rate_mbps=20, jitter=0.1).start()
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "s", test_urls=[isp.url()], update_interval_seconds=1, stop_at_cap=False).start()
        devtools = DevTools(Path(tmp) / "profile")
        try:
            devtools.open(server.url + "/")
            wait_until(devtools, "!document.getElementById('b-start').disabled")
            devtools.evaluate("document.getElementById('b-start').click()")
            wait_until(devtools, "document.querySelector('[data-testid=status]').textContent === 'running'")
            t0 = time.monotonic()
            samples = []
            while (elapsed := time.monotonic() - t0) < args.minutes * 60:
                time.sleep(min(60, args.minutes * 60 - elapsed))
                minute = (time.monotonic() - t0) / 60
                samples.append((minute, devtools.heap_bytes()))
                print(f"minute {minute:5.1f}: JS heap {samples[-1][1] / 1e6:.3f} MB, chart points "
                      f"{devtools.evaluate('n')}, status {devtools.evaluate('stats.status')}", flush=True)
            first, last = samples[0][1], samples[-1][1]
            peak = max(s[1] for s in samples[1:]) if len(samples) > 1 else last
            print(f"heap after minute 1: {first / 1e6:.3f} MB; after {samples[-1][0]:.0f} min: {last / 1e6:.3f} MB "
                  f"({100 * (last - first) / first:+.1f} %), highest since {peak / 1e6:.3f} MB "
                  f"({100 * (peak - first) / first:+.1f} %) (target <= +10 %)")
            warm = [h for m, h in samples if m >= 10]
            if len(warm) > 1:  # V8 compiles the page's per-second code during the first minutes
                print(f"after warm-up: minute 10 {warm[0] / 1e6:.3f} MB -> end {last / 1e6:.3f} MB "
                      f"({100 * (last - warm[0]) / warm[0]:+.1f} %)")
        finally:
            devtools.close()
            server.stop()
            isp.close()


if __name__ == "__main__":
    main()
