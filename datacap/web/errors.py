"""JSON errors for every failure (never an HTML page), and the request-body rule."""
import logging

from flask import jsonify, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger("server")


class BadRequest(Exception):
    def __init__(self, message, fields=None):
        super().__init__(message)
        self.fields = fields


def json_body():
    """The request's JSON object ({} when there is no body); BadRequest for anything else."""
    if not request.get_data():
        return {}
    try:
        body = request.get_json(force=True, silent=True)
    except RecursionError:  # JSON nested thousands deep
        body = None
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object")
    return body


def register(app):
    @app.errorhandler(HTTPException)
    def http_error(exc):
        return jsonify(error=exc.description), exc.code

    @app.errorhandler(BadRequest)
    def bad_request(exc):
        return jsonify(error=str(exc), **({"fields": exc.fields} if exc.fields else {})), 400

    @app.errorhandler(OSError)
    def disk_error(exc):  # a save that the disk refused (full, read-only): say so, nothing half-written
        log.error("cannot save on %s %s: %s", request.method, request.path, exc)
        return jsonify(error=f"cannot save: {exc.strerror or exc}; nothing was changed"), 503

    @app.errorhandler(Exception)
    def unexpected(exc):
        log.exception("unexpected error on %s %s", request.method, request.path)
        return jsonify(error=f"internal error: {type(exc).__name__}"), 500
