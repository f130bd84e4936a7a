"""The request guard: Host allowlist, cross-origin refusal, token auth with rate-limited guesses and
signed sessions, and the headers that keep the pages out of frames and sniffers."""
import collections
import hashlib
import hmac
import ipaddress
import logging
import secrets
import socket
import threading
import time

from flask import current_app, jsonify, request

log = logging.getLogger("server")

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
COOKIE = "datacap_session"
SESSION_S = 30 * 86400
OPEN_PATHS = {"/healthz", "/login", "/static/login.css", "/static/favicon.svg"}  # the sign-in page needs its style
FREE_FAILURES = 5  # wrong tokens a client may send before it must wait
LOCK_S = 10  # the first wait; it doubles with each wrong token after it, up to MAX_LOCK_S
MAX_LOCK_S = 15 * 60
FORGET_S = 3600  # a client that sent no wrong token for this long starts afresh
MAX_CLIENTS = 10_000  # bounded memory even for an attacker with many addresses
# No inline script or style anywhere (dashboard.css, login.css), no frames, no plug-ins, forms post only here.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def _hostname(host_header):
    host = (host_header or "").strip().lower()
    if host.startswith("["):  # [::1]:8000
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _is_ip(name):
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def local_names(cfg_host):
    """Names a browser may legitimately use for this server."""
    names = {"localhost", "127.0.0.1", "::1", cfg_host.lower()}
    for name in (socket.gethostname(), socket.getfqdn()):
        if name:
            names |= {name.lower(), name.lower().split(".")[0] + ".local"}
    return names


def host_allowed(host_header, names):
    """IP literals are safe from DNS rebinding; a name must be one of ours."""
    name = _hostname(host_header)
    return bool(name) and (_is_ip(name) or name in names or name.endswith(".localhost"))


def cross_origin_reason(method, headers, own_origin):
    """Why a state-changing request must be refused as cross-origin, or None."""
    if method in SAFE_METHODS:
        return None
    site = headers.get("Sec-Fetch-Site")
    if site and site not in ("same-origin", "none"):
        return f"cross-site request refused (Sec-Fetch-Site: {site})"
    origin = headers.get("Origin")
    if origin is not None and (origin == "null" or origin.rstrip("/") != own_origin):
        return "cross-origin request refused"
    return None


def _from_proxy(cfg):
    return request.remote_addr in cfg.get("trusted_proxies", ())


def scheme(cfg):
    """https when the request came over HTTPS: our own, or as a configured trusted proxy says."""
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return forwarded if _from_proxy(cfg) and forwarded in ("http", "https") else request.scheme


def client(cfg):
    """Who is asking: the peer address, or the address a trusted proxy forwarded for."""
    forwarded = request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
    return forwarded if _from_proxy(cfg) and _is_ip(forwarded) else request.remote_addr or "?"


class TooManyAttempts(Exception):
    def __init__(self, retry_after_s):
        super().__init__(f"too many wrong tokens from this address: try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class LoginLimiter:
    """Per-client wrong-token count: FREE_FAILURES tries, then a wait that doubles with each further failure."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.lock = threading.Lock()
        self.clients = collections.OrderedDict()  # address -> (failures, last failure, locked until)

    def check(self, who):
        """Raise TooManyAttempts while `who` must wait; the token is not even looked at then."""
        with self.lock:
            failures, last, until = self.clients.get(who, (0, 0.0, 0.0))
            now = self.clock()
            if now < until:
                raise TooManyAttempts(max(1, round(until - now + 0.5)))
            if failures and now - last > FORGET_S:
                self.clients.pop(who)

    def failed(self, who):
        with self.lock:
            failures = self.clients.pop(who, (0, 0.0, 0.0))[0] + 1
            now = self.clock()
            extra = failures - FREE_FAILURES
            wait = 0 if extra < 0 else min(MAX_LOCK_S, LOCK_S * 2 ** min(extra, 20))
            self.clients[who] = (failures, now, now + wait)
            while len(self.clients) > MAX_CLIENTS:
                self.clients.popitem(last=False)
        log.warning("auth: wrong token from %s (%d in a row)%s", who, failures,
                    f"; it must wait {wait} s" if wait else "")

    def succeeded(self, who):
        with self.lock:
            self.clients.pop(who, None)


def same_token(supplied, token):
    """Constant-time comparison, so the token cannot be guessed byte by byte from timings."""
    return hmac.compare_digest(supplied.encode(), token.encode())


def check_token(supplied, token, cfg):
    """True for the right token; every comparison passes the rate limit first (TooManyAttempts)."""
    limiter, who = current_app.extensions["login_limiter"], client(cfg)
    limiter.check(who)
    if same_token(supplied, token):
        limiter.succeeded(who)
        return True
    limiter.failed(who)
    return False


def _signature(token, payload):
    key = hashlib.sha256(b"datacap session key\0" + token.encode()).digest()  # a new token signs everyone out
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def new_session(token, now=None):
    """Cookie value: a random session id and its expiry, signed; the token itself never leaves the server."""
    payload = f"{secrets.token_urlsafe(18)}.{int((now or time.time()) + SESSION_S)}"
    return f"{payload}.{_signature(token, payload)}"


def session_ok(value, token, now=None):
    sid, _, rest = (value or "").partition(".")
    expires, _, sig = rest.partition(".")
    if not (sid and expires.isdigit() and sig) or int(expires) < (now or time.time()):
        return False
    return hmac.compare_digest(sig, _signature(token, f"{sid}.{expires}"))


def set_session_cookie(resp, token, cfg):
    resp.set_cookie(COOKIE, new_session(token), max_age=SESSION_S, httponly=True, samesite="Strict",
                    secure=scheme(cfg) == "https")


def authenticated(token, cfg):
    """A valid session cookie, or the right bearer token (rate-limited like the sign-in form)."""
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return check_token(auth[7:], token, cfg)
    return session_ok(request.cookies.get(COOKIE), token)


def add_headers(resp):
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    if resp.mimetype == "text/html":
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Referrer-Policy"] = "same-origin"  # no-referrer would make the sign-in form's Origin null
    return resp


def install(app, get_config, clock=time.monotonic):
    names_cache = {}
    app.extensions["login_limiter"] = LoginLimiter(clock)
    app.after_request(add_headers)

    @app.errorhandler(TooManyAttempts)
    def too_many(exc):
        return jsonify(error=str(exc)), 429, {"Retry-After": str(exc.retry_after_s)}

    @app.before_request
    def guard():
        cfg = get_config()
        names = names_cache.get(cfg["host"]) or names_cache.setdefault(cfg["host"], local_names(cfg["host"]))
        if not host_allowed(request.host, names):
            return jsonify(error="unknown Host header: this server answers only to its own names "
                                 "(DNS rebinding protection)"), 403
        reason = cross_origin_reason(request.method, request.headers, f"{scheme(cfg)}://{request.host}")
        if reason:
            return jsonify(error=reason), 403
        token = cfg.get("auth_token")
        if token and request.path not in OPEN_PATHS and not authenticated(token, cfg):
            if request.method == "GET" and request.path == "/":
                return app.send_static_file("login.html")
            return jsonify(error="authentication required: send 'Authorization: Bearer <auth_token>'"), 401
        return None
