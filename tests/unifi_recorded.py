"""A recorded-response UniFi controller: it replays the answers in tests/unifi/ the way a UniFi Network controller
gives them (a controller cannot run here). UniFi OS console or classic controller, session cookie and CSRF token
after a login (or an API key), `stat/sta` answers one after the other, a session that expires on demand."""
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RECORDED = Path(__file__).resolve().parent / "unifi"


def recorded(name):
    return (RECORDED / name).read_bytes()


class RecordedController:
    def __init__(self, unifi_os=True, username="datacap", password="s3cret-pass", api_key=None, site="default"):
        self.unifi_os, self.site = unifi_os, site
        self.username, self.password, self.api_key = username, password, api_key
        self.polls = [recorded(f"stat_sta_{i}.json") for i in (1, 2, 3)]
        self.next_poll = 0
        self.sessions = set()
        self.logins, self.requests = 0, []
        outer = self

        class H(BaseHTTPRequestHandler):
            def _send(self, code, body=b"", headers=()):
                self.send_response(code)
                self.send_header("Content-Type", "application/json" if body else "text/html")
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                outer.requests.append(("GET", self.path))
                if self.path == "/":  # a console serves its app; a classic controller redirects to /manage
                    return self._send(200, b"") if outer.unifi_os else self._send(302, b"", [("Location", "/manage")])
                prefix = "/proxy/network" if outer.unifi_os else ""
                if self.path != f"{prefix}/api/s/{outer.site}/stat/sta":
                    return self._send(404, b'{"meta": {"rc": "error", "msg": "api.err.NotFound"}, "data": []}')
                if not outer.authorized(self.headers):
                    return self._send(401, recorded("login_required.json"))
                body = outer.polls[min(outer.next_poll, len(outer.polls) - 1)]
                outer.next_poll += 1
                self._send(200, body)

            def do_POST(self):
                outer.requests.append(("POST", self.path))
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                path = "/api/auth/login" if outer.unifi_os else "/api/login"
                if self.path != path:
                    return self._send(404, b"")
                if body.get("username") != outer.username or body.get("password") != outer.password:
                    return self._send(401 if outer.unifi_os else 400, recorded("login_refused.json"))
                outer.logins += 1
                token = secrets.token_hex(8)
                outer.sessions.add(token)
                cookie = ("TOKEN" if outer.unifi_os else "unifises") + f"={token}; Path=/; HttpOnly"
                self._send(200, recorded("login_unifi_os.json" if outer.unifi_os else "login_classic.json"),
                           [("Set-Cookie", cookie), ("X-CSRF-Token", secrets.token_hex(8))])

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def authorized(self, headers):
        if self.api_key is not None:
            return headers.get("X-API-KEY") == self.api_key
        cookies = dict(c.strip().split("=", 1) for c in (headers.get("Cookie") or "").split(";") if "=" in c)
        return cookies.get("TOKEN" if self.unifi_os else "unifises") in self.sessions

    def expire_sessions(self):
        self.sessions.clear()

    def close(self):
        self.httpd.shutdown()
