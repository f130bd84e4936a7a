"""The dashboard page and the login form."""
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
    token = views().cfg.get("auth_token")
    supplied = request.form.get("token", "")
    resp = redirect("/", 303)
    if token and security.same_token(supplied, token):
        resp.set_cookie(security.COOKIE, token, httponly=True, samesite="Strict", max_age=30 * 86400)
    return resp
