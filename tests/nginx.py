"""Debian's nginx serving a sparse file (its holes cost no memory and no disk) from tmpfs, sendfile on.

Tests and benches start it on loopback or inside a network namespace (`prefix`: ["ip", "netns", "exec", ns])
and stop it after.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from harness import stop_process

NGINX_CONF = """daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
    uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
    server {{ {listen} root {tmp}; }}
}}
"""


class Nginx:
    """nginx serving `nbytes` of sparse file as /file.bin on host:port; `prefix` runs it elsewhere (ip netns exec)."""

    def __init__(self, nbytes, host="127.0.0.1", port=None, prefix=(), also=()):
        self.nbytes, self.host, self.port, self.prefix = nbytes, host, port or _free_port(), list(prefix)
        self.also = tuple(also)  # more addresses to listen on ("[2001:db8::1]")
        self.tmp = None
        self.proc = None

    @property
    def url(self):
        return f"http://{self.host}:{self.port}/file.bin"

    def start(self):
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.path.exists(binary):
            raise RuntimeError("nginx is not installed (apt-get install nginx)")
        self.tmp = tempfile.mkdtemp(prefix="datacap-bench-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        os.chmod(self.tmp, 0o755)  # nginx's worker runs as an unprivileged user
        with open(os.path.join(self.tmp, "file.bin"), "wb") as f:
            f.truncate(self.nbytes)
        conf = os.path.join(self.tmp, "nginx.conf")
        listen = " ".join(f"listen {h}:{self.port};" for h in (self.host, *self.also))
        Path(conf).write_text(NGINX_CONF.format(tmp=self.tmp, listen=listen))
        self.proc = subprocess.Popen(self.prefix + [binary, "-c", conf, "-p", self.tmp], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._answers():
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx did not start on {self.host}:{self.port}")

    def _answers(self):
        """Is it listening (seen from where it runs: its namespace may not be reachable from here)?"""
        if self.prefix:
            probe = ["curl", "-s", "-o", "/dev/null", "-m", "1", "-r", "0-0", self.url]
            return subprocess.run(self.prefix + probe).returncode == 0
        try:
            socket.create_connection((self.host, self.port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def stop(self):
        stop_process(self.proc)
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
