"""One before_request guard: Host allowlist, cross-origin refusal, optional token auth."""
import hmac
import ipaddress
import socket

from flask import jsonify, request

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
COOKIE = "datacap_token"
OPEN_PATHS = {"/healthz", "/login"}


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


def same_token(supplied, token):
    """Constant-time comparison, so the token cannot be guessed byte by byte from timings."""
    return hmac.compare_digest(supplied.encode(), token.encode())


def token_ok(token):
    supplied = request.cookies.get(COOKIE, "")
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        supplied = auth[7:]
    return same_token(supplied, token)


def install(app, get_config):
    names_cache = {}

    @app.before_request
    def guard():
        cfg = get_config()
        names = names_cache.get(cfg["host"]) or names_cache.setdefault(cfg["host"], local_names(cfg["host"]))
        if not host_allowed(request.host, names):
            return jsonify(error="unknown Host header: this server answers only to its own names "
                                 "(DNS rebinding protection)"), 403
        reason = cross_origin_reason(request.method, request.headers, f"{request.scheme}://{request.host}")
        if reason:
            return jsonify(error=reason), 403
        token = cfg.get("auth_token")
        if token and request.path not in OPEN_PATHS and not token_ok(token):
            if request.method == "GET" and request.path == "/":
                return app.send_static_file("login.html")
            return jsonify(error="authentication required: send 'Authorization: Bearer <auth_token>'"), 401
        return None
