"""The REST API of ODK Central, the subset that pyodk, ruODK and OData clients use.

Everything lives under /v1 beside the OpenRosa API (which keeps the paths Collect follows).
Callers authenticate with a bearer token from `POST /v1/sessions`; errors are JSON bodies
`{"code": 404.1, "message": "…"}` with Central's codes, which pyodk reads. The role model is
the server's own: admins everything, supervisors read and review their project (their tổ when
they have one), volunteers never (they use their Collect token).
"""

from __future__ import annotations

from flask import Blueprint, Flask, g, jsonify, request
from werkzeug.exceptions import HTTPException

from server.errors import DomainError, Unauthorized

bp = Blueprint("central", __name__)

# Endpoints that need no bearer token.
PUBLIC_ENDPOINTS = frozenset({"central.create_session"})


def wants_json() -> bool:
    """An error raised outside a matched route answers in JSON for API callers."""
    if request.blueprint == "central":
        return True
    return request.headers.get("Authorization", "").startswith("Bearer ")


def error_body(exc: Exception):
    if isinstance(exc, DomainError):
        status, code, message = exc.status, exc.code, exc.message
    else:
        assert isinstance(exc, HTTPException)
        status = exc.code or 500
        code = float(status) + 0.1 if status == 404 else float(status)
        message = exc.description or exc.name
    response = jsonify(code=code, message=message)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
        if request.is_secure:  # Excel and Power BI log in to an OData feed with Basic
            response.headers.add("WWW-Authenticate", 'Basic realm="api"')
    return response


@bp.errorhandler(DomainError)
@bp.errorhandler(HTTPException)
def api_error(exc):
    return error_body(exc)


@bp.before_request
def authenticate():
    from server.central.common import authenticate_caller

    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    g.api_user = authenticate_caller()
    if g.api_user is None:
        raise Unauthorized()
    return None


@bp.after_request
def commit(response):
    """The one commit point for API writes, as for the web pages."""
    db = g.get("db_session")
    if (db is not None and response.status_code < 400
            and request.method not in ("GET", "HEAD", "OPTIONS")):
        db.commit()
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


from server.central import (  # noqa: E402,F401  (registers the routes)
    app_users,
    datasets,
    forms,
    odata,
    sessions,
    submissions,
)
