"""JSON errors for every failure (never an HTML page), and the request-body rule."""
import json
import logging

from flask import jsonify, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger("server")


class BadRequest(Exception):
    def __init__(self, message, fields=None):
        super().__init__(message)
        self.fields = fields


JSON_KINDS = {list: "an array", str: "a string", bool: "true or false", type(None): "null"}


def json_body(required=False):
    """The request's JSON object ({} when there is no body, unless required); BadRequest for anything else."""
    data = request.get_data()
    if not data.strip():
        if required:
            raise BadRequest("request body is empty: send a JSON object")
        return {}
    try:
        body = json.loads(data)
    except RecursionError:  # JSON nested thousands deep: a 400, never a 500
        raise BadRequest("request body is nested too deeply") from None
    except ValueError as exc:
        raise BadRequest(f"request body is not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise BadRequest(f"request body must be a JSON object, not {JSON_KINDS.get(type(body), 'a number')}")
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
