"""Finished tests: GET /api/history, GET /api/history/<id>, and the confirmed DELETE /api/history.

history.json's format and readers are in measure/history.py, next to its writers: the downloader
appends each ended test; this blueprint empties the file when the user confirms (the one move
the server makes on it, under the same lock as the downloader's append).
"""
from flask import Blueprint, abort, jsonify, request

from datacap.measure import history
from datacap.web import report
from datacap.web.errors import BadRequest, json_body
from datacap.web.views import views

bp = Blueprint("history", __name__)

LIST_LIMIT = history.KEPT


def brief(test):
    """A test without its speed points (the list stays small; /api/history/<id> has them)."""
    return {k: v for k, v in test.items() if k != "points"}


@bp.get("/api/history")
def tests():
    """Newest first; ?limit=N for the newest N."""
    limit = request.args.get("limit", LIST_LIMIT, type=int)
    if not 1 <= limit <= LIST_LIMIT:
        raise BadRequest(f"limit must be 1 to {LIST_LIMIT}")
    found = views().history.tests()
    return jsonify(tests=[brief(t) for t in found[:limit]], count=len(found), kept=history.KEPT)


@bp.get("/api/history/<test_id>")
def one(test_id):
    found = views().history.get(test_id)
    if found is None:
        abort(404, description=f"no kept test with id {test_id!r}")
    return jsonify({**found, "method": report.method(found)})


@bp.delete("/api/history")
def forget():
    """Forget every kept test; only with {"confirm": true} (or ?confirm=yes): it cannot be undone."""
    body = json_body()
    if body.get("confirm") is not True and request.args.get("confirm") != "yes":
        raise BadRequest('deleting the history cannot be undone: send {"confirm": true} to confirm')
    n = history.clear(views().data_dir)
    return jsonify(deleted=n, message=f"Deleted {n} kept test{'s' if n != 1 else ''}.")
