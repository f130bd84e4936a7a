"""The dashboard page and the sign-in form."""
from flask import Blueprint, redirect, request, send_file

from datacap.config import ROOT
from datacap.web import security
from datacap.web.views import views

bp = Blueprint("pages", __name__)


@bp.get("/")
def dashboard():
    return send_file(ROOT / "dashboard.html", max_age=0)


@bp.post("/login")
def login():
    """The right token buys a signed session cookie (never the token itself); guesses are rate-limited."""
    cfg = views().cfg
    token = cfg.get("auth_token")
    resp = redirect("/", 303)
    if token and security.check_token(request.form.get("token", ""), token, cfg):
        security.set_session_cookie(resp, token, cfg)
    return resp
